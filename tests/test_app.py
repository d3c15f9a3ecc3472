"""App-wide behaviour: problem+json, request ids, body guards, offline docs."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from src.config import Settings
from src.main import create_app

PROBLEM = "application/problem+json"


class Echo(BaseModel):
    name: str = Field(min_length=1, max_length=10)
    count: int = Field(ge=0)


@pytest.fixture(scope="module")
def echo_app(settings: Settings) -> FastAPI:
    """The real app plus one probe route, to exercise body handling app-wide."""
    app = create_app(settings.model_copy(update={"MAX_BODY_BYTES": 2048}), manage_database=False)

    @app.post("/probe/echo")
    async def echo(body: Echo) -> Echo:
        return body

    return app


@pytest.fixture
async def echo_client(echo_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=echo_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def assert_problem(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert {"type", "title", "detail"} <= body.keys()
    return body


async def test_unknown_route_is_problem_json(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/v1/nope"), 404, "not_found")


async def test_wrong_method_is_problem_json(client: httpx.AsyncClient) -> None:
    assert_problem(await client.delete("/api/v1/system/health/live"), 405, "method_not_allowed")


async def test_validation_error_lists_fields(echo_client: httpx.AsyncClient) -> None:
    body = assert_problem(
        await echo_client.post("/probe/echo", json={"name": "", "count": -1}),
        422,
        "validation_error",
    )
    locs = {tuple(err["loc"]) for err in body["errors"]}
    assert ("body", "name") in locs and ("body", "count") in locs


async def test_malformed_json_is_400(echo_client: httpx.AsyncClient) -> None:
    response = await echo_client.post(
        "/probe/echo", content=b'{"name": "x",', headers={"content-type": "application/json"}
    )
    assert_problem(response, 400, "malformed_json")


async def test_wrong_content_type_is_415(echo_client: httpx.AsyncClient) -> None:
    response = await echo_client.post(
        "/probe/echo", content=b"name=x", headers={"content-type": "text/plain"}
    )
    assert_problem(response, 415, "unsupported_media_type")


async def test_oversized_body_is_413_by_content_length(echo_client: httpx.AsyncClient) -> None:
    response = await echo_client.post(
        "/probe/echo", content=b"x" * 4096, headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, "payload_too_large")


async def test_oversized_streamed_body_is_413(echo_client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b" " * 512

    response = await echo_client.post(
        "/probe/echo", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, "payload_too_large")


async def test_valid_body_passes(echo_client: httpx.AsyncClient) -> None:
    response = await echo_client.post("/probe/echo", json={"name": "ok", "count": 2})
    assert response.status_code == 200
    assert response.json() == {"name": "ok", "count": 2}


async def test_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/system/health/live", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"


async def test_request_id_is_generated_and_unsafe_ids_replaced(client: httpx.AsyncClient) -> None:
    generated = await client.get("/api/v1/system/health/live")
    assert len(generated.headers["X-Request-ID"]) == 32
    unsafe = await client.get("/api/v1/system/health/live", headers={"X-Request-ID": "a b\tc"})
    assert unsafe.headers["X-Request-ID"] != "a b\tc"
    missing = await client.get("/nope", headers={"X-Request-ID": "err-1"})
    assert missing.headers["X-Request-ID"] == "err-1"


async def test_docs_are_served_from_local_assets(client: httpx.AsyncClient) -> None:
    for page in ("/docs", "/redoc"):
        html = (await client.get(page)).text
        assert "cdn" not in html.lower() and "googleapis" not in html
        for asset in [part.split('"')[0] for part in html.split('"/docs-assets/')[1:]]:
            response = await client.get(f"/docs-assets/{asset}")
            assert response.status_code == 200, asset
            assert len(response.content) > 1000 or asset.endswith(".png")


async def test_openapi_has_operation_ids(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    ops = [op for path in spec["paths"].values() for op in path.values()]
    assert ops and all(op.get("operationId") for op in ops)


async def test_cors_preflight_allows_configured_origin(client: httpx.AsyncClient) -> None:
    origin = Settings().CORS_ORIGINS[0]
    response = await client.options(
        "/api/v1/system/version",
        headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == origin
    other = await client.options(
        "/api/v1/system/version",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in other.headers
