from functools import partial
from typing import Annotated

from fastapi import Depends

from src.database import EngineDep
from src.system import service
from src.system.service import Check


def readiness_checks(engine: EngineDep) -> dict[str, Check]:
    """Every dependency a request may need, each checked with its own timeout."""
    return {
        "database": partial(service.database_check, engine),
        "storage": service.storage_check,
        "queue": partial(service.queue_check, engine),
    }


ReadinessChecks = Annotated[dict[str, Check], Depends(readiness_checks)]
