"""Health, readiness and version. Public: orchestrators call them without credentials."""

from typing import Annotated

from fastapi import APIRouter, Header, Response

from src.config import get_settings
from src.database import EngineDep, SessionDep
from src.exceptions import NotAuthenticated
from src.log import get_logger
from src.system import metrics, service
from src.system.dependencies import ReadinessChecks
from src.system.exceptions import NotReady
from src.system.schemas import Liveness, Readiness, VersionRead

log = get_logger(__name__)
router = APIRouter(prefix="/system", tags=["system"])
MetricsAuth = Annotated[str | None, Header(alias="Authorization")]


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


metrics_router = APIRouter(tags=["system"])


@metrics_router.get("/metrics", include_in_schema=False)
async def get_metrics(engine: EngineDep, authorization: MetricsAuth = None) -> Response:
    """Prometheus text format (public unless METRICS_TOKEN is set)."""
    token = get_settings().METRICS_TOKEN
    if token is not None and authorization != f"Bearer {token.get_secret_value()}":
        raise NotAuthenticated("metrics need the METRICS_TOKEN bearer token")
    try:
        await metrics.refresh_database_gauges(engine)
    except Exception as exc:  # scrapes still answer with the process metrics
        log.warning("metrics.database_gauges_failed", error=type(exc).__name__)
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
