"""Health, readiness and version: what an orchestrator and an on-call engineer ask first."""

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable
from functools import lru_cache
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from src.database import head_revision
from src.system.constants import CHECK_TIMEOUT_SECONDS
from src.system.schemas import CheckResult, Readiness

Check = Callable[[], Awaitable[None]]


class CheckFailed(Exception):
    """A readiness check ran and found the dependency unhealthy."""


@lru_cache
def app_version() -> str:
    try:
        return package_version("projex")
    except PackageNotFoundError:
        return "0.0.0+unknown"


@lru_cache
def git_commit(configured: str | None) -> str | None:
    if configured:
        return configured
    repo = Path(__file__).resolve().parents[2]
    if not (repo / ".git").exists():
        return None
    try:
        out = subprocess.run(  # noqa: S603 (fixed argv)
            ["git", "-C", str(repo), "rev-parse", "HEAD"],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=2,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


async def database_check(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        pgvector = await conn.scalar(
            text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        )
        if pgvector is None:
            raise CheckFailed("pgvector extension is not installed")
        current = await conn.scalar(text("SELECT version_num FROM alembic_version LIMIT 1"))
    head = head_revision()
    if current != head:
        raise CheckFailed(f"migrations not at head (database {current}, code {head})")


async def storage_check() -> None:
    from src.aws import service as storage

    await storage.get_store().check()


async def queue_check(engine: AsyncEngine) -> None:
    """The queue's schema is present (its tables live in the same database)."""
    async with engine.connect() as conn:
        present = await conn.scalar(text("SELECT to_regclass('procrastinate_jobs') IS NOT NULL"))
    if not present:
        raise CheckFailed("the job queue schema is missing (run projex migrate)")


async def run_check(check: Check, limit_seconds: float = CHECK_TIMEOUT_SECONDS) -> CheckResult:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), limit_seconds)
    except TimeoutError:
        status, detail = "failed", f"timed out after {limit_seconds:.0f}s"
    except CheckFailed as exc:
        status, detail = "failed", str(exc)
    except Exception as exc:  # a readiness probe reports every failure, it never raises
        status, detail = "failed", f"{type(exc).__name__}: {exc}"[:300]
    else:
        status, detail = "ok", None
    return CheckResult(
        status=status, latency_ms=round((time.perf_counter() - started) * 1000, 2), detail=detail
    )


async def readiness(*, checks: dict[str, Check]) -> Readiness:
    names = list(checks)
    results = await asyncio.gather(*(run_check(checks[name]) for name in names))
    by_name = dict(zip(names, results, strict=True))
    ok = all(result.status == "ok" for result in results)
    return Readiness(status="ok" if ok else "failed", checks=by_name)


async def database_versions(*, session: AsyncSession) -> dict[str, str | None]:
    row = (
        await session.execute(
            text(
                "SELECT current_setting('server_version') AS database,"
                " (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS pgvector,"
                " (SELECT version_num FROM alembic_version LIMIT 1) AS migration"
            )
        )
    ).one()
    return {
        "database": f"PostgreSQL {row.database}",
        "pgvector": row.pgvector,
        "migration": row.migration,
    }
