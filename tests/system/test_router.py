from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from src.config import Settings
from src.database import get_engine, get_session, make_engine, transaction

DEAD_URL = "postgresql+asyncpg://postgres@127.0.0.1:9/postgres"  # discard port: refused


@pytest.fixture
async def dead_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(
        DEAD_URL, settings.model_copy(update={"DATABASE_CONNECT_TIMEOUT_SECONDS": 1})
    )
    yield engine
    await engine.dispose()


@pytest.fixture
async def client_without_db(app, dead_engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    maker = async_sessionmaker(dead_engine, expire_on_commit=False)

    async def dead_session() -> AsyncIterator[AsyncSession]:
        async with transaction(maker) as session:
            yield session

    app.dependency_overrides[get_engine] = lambda: dead_engine
    app.dependency_overrides[get_session] = dead_session
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
    app.dependency_overrides.clear()


async def test_liveness(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/system/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readiness_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/system/health/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok"


async def test_readiness_503_names_the_database_when_it_is_down(
    client_without_db: httpx.AsyncClient,
) -> None:
    response = await client_without_db.get("/api/v1/system/health/ready")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "not_ready"
    assert "database" in body["detail"]
    assert body["checks"]["database"]["status"] == "failed"


async def test_request_needing_database_answers_503_problem_when_it_is_down(
    client_without_db: httpx.AsyncClient,
) -> None:
    response = await client_without_db.get("/api/v1/system/version")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "database_unavailable"


async def test_version_reports_database_and_pgvector(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/system/version")
    assert response.status_code == 200
    body = response.json()
    assert body["version"]
    assert body["database"].startswith("PostgreSQL ")
    major = int(body["database"].split()[1].split(".")[0])
    assert major >= 15
    assert tuple(int(p) for p in body["pgvector"].split(".")[:2]) >= (0, 8)
    assert body["migration"]


async def test_readiness_fails_when_migrations_are_behind(
    client: httpx.AsyncClient, app, monkeypatch: pytest.MonkeyPatch
) -> None:
    from src.system import service

    monkeypatch.setattr(service, "head_revision", lambda: "9999_not_applied")
    response = await client.get("/api/v1/system/health/ready")
    assert response.status_code == 503
    assert "migrations not at head" in response.json()["checks"]["database"]["detail"]


def test_engine_dependency_is_initialised(engine: AsyncEngine) -> None:
    assert get_engine() is engine
