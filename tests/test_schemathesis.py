"""Property-based API fuzzing over the OpenAPI schema, in-process against the ASGI app.

Every operation is generated from the schema, called as an authenticated user (and, by
the `ignored_auth` check, without and with invalid credentials) and its answers checked:
no 5xx, documented status codes, content types and bodies. Runs against its own
database so its committed rows never meet the rest of the suite.
"""

import asyncio
import concurrent.futures
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool
from starlette.testclient import TestClient

from src.config import Settings
from src.database import get_engine, get_session, transaction, upgrade_database
from src.main import create_app

pytestmark = pytest.mark.slow

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    ignored_auth,
]


def run_async(coro):
    """Run a coroutine on a fresh loop in a worker thread (the suite's loop stays untouched)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _fresh_database(url: str) -> str:
    name = f"projex_fuzz_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    fuzz_url = make_url(url).set(database=name).render_as_string(hide_password=False)
    engine = create_async_engine(fuzz_url, poolclass=NullPool)
    await upgrade_database(engine)
    await engine.dispose()
    return fuzz_url


# The schema is read at import (no database needed for /openapi.json); the database is bound
# by the `fuzz_app` fixture before any case runs. (schemathesis' from_fixture loader relies on
# a pytest private attribute that pytest 9.2 removed.)
app = create_app(Settings(ENVIRONMENT="test"), manage_database=False)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module")
def fuzz_app(database_url: str, engine) -> Iterator:
    fuzz_url = run_async(_fresh_database(database_url))
    # NullPool: every request opens its connection in the loop that serves it.
    fuzz_engine = create_async_engine(fuzz_url, poolclass=NullPool)
    maker = async_sessionmaker(fuzz_engine, expire_on_commit=False)

    async def session_dep() -> AsyncIterator[AsyncSession]:
        async with transaction(maker) as session:
            yield session

    app.dependency_overrides[get_session] = session_dep
    app.dependency_overrides[get_engine] = lambda: fuzz_engine
    yield app
    app.dependency_overrides.clear()


@pytest.fixture(scope="module")
def auth_headers(fuzz_app) -> dict[str, str]:
    email, password = f"fuzz-{uuid.uuid4().hex[:8]}@example.com", "fuzzing password 123"
    with TestClient(fuzz_app) as client:
        assert (
            client.post(
                "/api/v1/auth/register", json={"email": email, "password": password}
            ).status_code
            == 201
        )
        token = client.post(
            "/api/v1/auth/login", data={"username": email, "password": password}
        ).json()
        created = client.post(
            "/api/v1/projects",
            json={"name": "fuzz"},
            headers={"Authorization": f"Bearer {token['access_token']}"},
        )
        assert created.status_code == 201
    return {"Authorization": f"Bearer {token['access_token']}"}


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_api_conforms_to_its_schema(case, auth_headers: dict[str, str]) -> None:
    case.call_and_validate(headers=auth_headers, checks=CHECKS)
