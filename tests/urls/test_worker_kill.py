"""A real `projex worker` killed with SIGKILL mid-job loses nothing."""

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from src.chunks.models import Chunk
from src.database import transaction
from src.urls.models import Url
from tests.conftest import wait_for
from tests.pages import page, respond, sequence

pytestmark = pytest.mark.slow


def start_worker(database_url: str, *extra: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "WORKER_HEARTBEAT_SECONDS": "1",
        "WORKER_STALLED_AFTER_SECONDS": "3",
        "RECONCILE_INTERVAL_SECONDS": "1",
        "FETCH_TIMEOUT_SECONDS": "20",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "src.cli", "worker", "--concurrency", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


async def test_sigkill_mid_job_then_another_worker_finishes(
    pages, committed, queue, database_url
) -> None:
    def hang(req) -> None:
        time.sleep(15)  # the first fetch never completes: the worker dies during it

    body = page("Durable", ("One", "first section " * 60), ("Two", "second section " * 60))
    pages.routes["/durable"] = sequence(hang, respond(200, body))
    _, project = await committed.user_and_project(chunk_size=128, chunk_overlap=16)

    first = start_worker(database_url)
    second = None
    try:
        (url_id,) = await committed.add_urls(project, [pages.url("/durable")])

        async def fetching() -> bool:
            return pages.hits.get("/durable", 0) >= 1

        await wait_for(fetching, 30)
        async with transaction() as s:
            assert (await s.get(Url, url_id)).status == "fetching"
        first.send_signal(signal.SIGKILL)
        first.wait(10)

        second = start_worker(database_url)

        async def finished() -> Url | None:
            async with transaction() as s:
                row = await s.get(Url, url_id)
            return row if row.status in ("chunked", "ready", "failed") else None

        row = await wait_for(finished, 45, interval=0.3)
        assert row.status in ("chunked", "ready"), row.error_code
        async with transaction() as s:
            total = await s.scalar(
                select(func.count()).select_from(Chunk).where(Chunk.url_id == url_id)
            )
            distinct = await s.scalar(
                select(func.count(func.distinct(Chunk.ordinal))).where(Chunk.url_id == url_id)
            )
        assert total == distinct > 1  # exactly one set of chunks
        assert pages.hits["/durable"] == 2
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()


async def test_sigterm_lets_the_running_job_finish(pages, committed, queue, database_url) -> None:
    def slow(req) -> None:
        time.sleep(3)
        respond(200, page("Slow", ("One", "slow section " * 60)))(req)

    pages.routes["/slow"] = slow
    _, project = await committed.user_and_project(chunk_size=128, chunk_overlap=16)
    from tests.test_serve import free_port

    metrics_port = free_port()
    proc = start_worker(database_url, "--metrics-port", str(metrics_port))
    try:
        (url_id,) = await committed.add_urls(project, [pages.url("/slow")])

        async def fetching() -> bool:
            return pages.hits.get("/slow", 0) >= 1

        await wait_for(fetching, 30)
        proc.send_signal(
            signal.SIGTERM
        )  # mid-fetch: the worker stops taking jobs, finishes this one
        out, _ = proc.communicate(timeout=40)
        assert proc.returncode == 0, out
        async with transaction() as s:
            row = await s.get(Url, url_id)
        assert row.status in ("chunked", "ready") and row.claim_job_id is None
        assert pages.hits["/slow"] == 1
    finally:
        if proc.poll() is None:
            proc.kill()
