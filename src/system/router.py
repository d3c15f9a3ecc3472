"""Health, readiness and version. Public: orchestrators call them without credentials."""

from fastapi import APIRouter

from src.config import get_settings
from src.database import SessionDep
from src.system import service
from src.system.dependencies import ReadinessChecks
from src.system.exceptions import NotReady
from src.system.schemas import Liveness, Readiness, VersionRead

router = APIRouter(prefix="/system", tags=["system"])


@router.get("/health/live", response_model=Liveness)
async def get_liveness() -> Liveness:
    """The process is up and serving (public)."""
    return Liveness()


@router.get(
    "/health/ready",
    response_model=Readiness,
    responses={503: {"description": "A dependency is failing; the body names it"}},
)
async def get_readiness(checks: ReadinessChecks) -> Readiness:
    """Database reachable with pgvector and migrations at head (public)."""
    result = await service.readiness(checks=checks)
    if result.status != "ok":
        failing = ", ".join(name for name, c in result.checks.items() if c.status != "ok")
        raise NotReady(
            f"failing checks: {failing}",
            extra={"checks": {k: v.model_dump() for k, v in result.checks.items()}},
        )
    return result


@router.get("/version", response_model=VersionRead)
async def get_version(session: SessionDep) -> VersionRead:
    """Application, git commit, PostgreSQL and pgvector versions (public)."""
    settings = get_settings()
    versions = await service.database_versions(session=session)
    return VersionRead(
        name=settings.APP_NAME,
        version=service.app_version(),
        commit=service.git_commit(settings.GIT_COMMIT),
        **versions,
    )
