"""Prometheus metrics: route templates as labels, scrape-time database gauges, domain counters."""

import uuid

import httpx
import pytest
from pydantic import SecretStr

from src.config import get_settings
from src.system import metrics
from tests.factories import bearer, create_project, create_user
from tests.pages import page, respond


def sample(name: str, **labels: str) -> float:
    value = metrics.REGISTRY.get_sample_value(name, labels)
    return value or 0.0


async def test_http_metrics_use_route_templates(client: httpx.AsyncClient, session) -> None:
    owner = await create_user(session)
    project = await create_project(session, owner)
    before = sample(
        "projex_http_requests_total",
        method="GET",
        route="/api/v1/projects/{project_id}",
        status="200",
    )
    assert (
        await client.get(f"/api/v1/projects/{project.id}", headers=bearer(owner))
    ).status_code == 200
    await client.get(f"/api/v1/shared/pjs_{uuid.uuid4().hex}")
    await client.get("/no/such/path")
    after = sample(
        "projex_http_requests_total",
        method="GET",
        route="/api/v1/projects/{project_id}",
        status="200",
    )
    assert after == before + 1
    response = await client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    body = response.text
    assert str(project.id) not in body and "pjs_" not in body  # ids and tokens never become labels
    assert 'route="/api/v1/shared/{token}"' in body and 'route="unmatched"' in body
    for name in (
        "projex_http_request_duration_seconds_bucket",
        "projex_http_requests_in_flight",
        "projex_urls",
        "projex_workers_alive",
    ):
        assert name in body


async def test_metrics_token(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_settings().model_copy(update={"METRICS_TOKEN": SecretStr("m" * 32)})
    monkeypatch.setattr("src.system.router.get_settings", lambda: settings)
    assert (await client.get("/metrics")).status_code == 401
    assert (
        await client.get("/metrics", headers={"Authorization": "Bearer " + "m" * 32})
    ).status_code == 200


@pytest.mark.slow
async def test_domain_counters_move_when_work_happens(pages, committed) -> None:
    from src.urls import pipeline
    from src.vectorization import service as vectorization_service

    pages.routes["/doc"] = respond(200, page("Doc", ("A", "alpha " * 50), ("B", "beta " * 50)))
    _, project = await committed.user_and_project(chunk_size=128, chunk_overlap=16)
    (url_id,) = await committed.add_urls(project, [pages.url("/doc")])
    fetched, chunks = (
        sample("projex_fetch_total", outcome="ok"),
        sample("projex_chunks_written_total"),
    )
    vectors = sample("projex_embeddings_written_total", model="hashing-v1-384")
    assert await pipeline.ingest_url(url_id) == "chunked"
    await vectorization_service.embed_urls([url_id])
    assert sample("projex_fetch_total", outcome="ok") == fetched + 1
    assert sample("projex_chunks_written_total") > chunks
    assert sample("projex_embeddings_written_total", model="hashing-v1-384") > vectors
    assert sample("projex_fetch_duration_seconds_count") >= 1
    pages.routes["/doc"] = respond(404, "gone")
    before_404 = sample("projex_fetch_total", outcome="http_404")
    assert await pipeline.ingest_url(url_id) in ("failed", "chunked")
    assert sample("projex_fetch_total", outcome="http_404") == before_404 + 1
