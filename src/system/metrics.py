"""Prometheus metrics: HTTP by route template (never the raw path: no ids or tokens in
labels), domain counters recorded where the work happens, and gauges read from PostgreSQL
at scrape time (URL statuses, queue depth and age, live workers) so any API replica reports
the same picture."""

import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "projex_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=REGISTRY
)
HTTP_LATENCY = Histogram(
    "projex_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
HTTP_IN_FLIGHT = Gauge(
    "projex_http_requests_in_flight", "HTTP requests being served", registry=REGISTRY
)
FETCHES = Counter(
    "projex_fetch_total",
    "Page fetches by outcome (ok, unchanged or error code)",
    ["outcome"],
    registry=REGISTRY,
)
FETCH_LATENCY = Histogram("projex_fetch_duration_seconds", "Fetch time per page", registry=REGISTRY)
EXTRACT_LATENCY = Histogram(
    "projex_extract_duration_seconds", "Extraction and chunking time per batch", registry=REGISTRY
)
CHUNKS_WRITTEN = Counter("projex_chunks_written_total", "Chunks inserted", registry=REGISTRY)
EMBEDDINGS_WRITTEN = Counter(
    "projex_embeddings_written_total", "Vectors stored", ["model"], registry=REGISTRY
)
EMBED_LATENCY = Histogram(
    "projex_embedding_batch_duration_seconds",
    "Embedding batch time",
    ["provider"],
    registry=REGISTRY,
)
URLS_BY_STATUS = Gauge(
    "projex_urls", "URLs by status (all projects)", ["status"], registry=REGISTRY
)
QUEUE_JOBS = Gauge(
    "projex_queue_jobs", "Queue jobs by task and status", ["task", "status"], registry=REGISTRY
)
QUEUE_OLDEST = Gauge(
    "projex_queue_oldest_todo_seconds", "Age of the oldest waiting job", ["task"], registry=REGISTRY
)
WORKERS_ALIVE = Gauge(
    "projex_workers_alive", "Workers with a heartbeat in the last minute", registry=REGISTRY
)


def route_template(scope: Scope) -> str:
    """`/api/v1/projects/{project_id}`: the matched path with its parameters put back as
    names, so ids and tokens never become label values; `unmatched` for unknown paths."""
    if scope.get("route") is None:
        return "unmatched"
    path = scope["path"]
    for name, value in (scope.get("path_params") or {}).items():
        path = path.replace(str(value), "{" + name + "}", 1)
    return path


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/metrics":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        HTTP_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, capture)
        finally:
            HTTP_IN_FLIGHT.dec()
            route = route_template(scope)
            HTTP_REQUESTS.labels(scope["method"], route, str(status)).inc()
            HTTP_LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)


async def refresh_database_gauges(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        URLS_BY_STATUS.clear()
        for status, count in (
            await conn.execute(text("SELECT status, count(*) FROM urls GROUP BY status"))
        ).all():
            URLS_BY_STATUS.labels(status).set(count)
        QUEUE_JOBS.clear()
        QUEUE_OLDEST.clear()
        rows = await conn.execute(
            text(
                "SELECT j.task_name, j.status::text, count(*), "
                "extract(epoch FROM now() - min(coalesce(j.scheduled_at, e.at))) "
                "FROM procrastinate_jobs j LEFT JOIN LATERAL "
                "(SELECT min(ev.at) AS at FROM procrastinate_events ev WHERE ev.job_id = j.id) e "
                "ON true WHERE j.status IN ('todo', 'doing') GROUP BY 1, 2"
            )
        )
        for task, status, count, age in rows.all():
            QUEUE_JOBS.labels(task, status).set(count)
            if status == "todo" and age is not None:
                QUEUE_OLDEST.labels(task).set(float(age))
        WORKERS_ALIVE.set(
            await conn.scalar(
                text(
                    "SELECT count(*) FROM procrastinate_workers "
                    "WHERE last_heartbeat > now() - interval '1 minute'"
                )
            )
            or 0
        )


def render() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
