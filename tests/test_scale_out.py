"""Scale-out proof: two `projex serve --no-worker` and two `projex worker` processes on one
PostgreSQL; a few hundred loopback pages added through both APIs end `ready` exactly once."""

import asyncio
import os
import subprocess
import sys
import time

import httpx
import pytest
from sqlalchemy import func, select, text

from src.chunks.models import Chunk
from src.database import transaction
from src.urls.models import Url
from tests.conftest import wait_for
from tests.pages import page, respond
from tests.test_serve import free_port

pytestmark = pytest.mark.slow

PAGES = 240


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready")


async def test_two_apis_two_workers_every_url_ready_exactly_once(
    pages, database_url, engine
) -> None:
    for i in range(PAGES):
        pages.routes[f"/p{i}"] = respond(
            200,
            page(f"Page {i}", ("Intro", f"page {i} text " * 30), ("More", f"more words {i} " * 30)),
        )
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "WORKER_CONCURRENCY": "4",
        "LOG_LEVEL": "WARNING",
    }
    ports = [free_port(), free_port()]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "src.cli", "serve", "--port", str(p), "--no-worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for p in ports
    ]
    procs += [
        subprocess.Popen(
            [sys.executable, "-m", "src.cli", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    user_id = None
    try:
        for p in ports:
            await asyncio.to_thread(wait_http, f"http://127.0.0.1:{p}/api/v1/system/health/ready")
        a, b = (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{p}/api/v1", timeout=30) for p in ports
        )
        creds = {"email": f"scale-{time.time_ns()}@example.com", "password": "scale-out password"}
        user_id = (await a.post("/auth/register", json=creds)).json()["id"]
        token = (
            await b.post(
                "/auth/login", data={"username": creds["email"], "password": creds["password"]}
            )
        ).json()
        for client in (a, b):
            client.headers["Authorization"] = f"Bearer {token['access_token']}"
        project = (await a.post("/projects", json={"name": "scale"})).json()["id"]
        urls = [pages.url(f"/p{i}") for i in range(PAGES)]
        half = PAGES // 2
        # Both APIs at once, overlapping halves: duplicates must collapse to one row each.
        await asyncio.gather(
            a.post(f"/projects/{project}/urls", json={"urls": urls[: half + 20]}),
            b.post(f"/projects/{project}/urls", json={"urls": urls[half - 20 :]}),
        )

        async def all_ready() -> bool:
            stats = (await b.get(f"/projects/{project}")).json()["stats"]["urls"]
            return stats["ready"] + stats["failed"] >= PAGES

        await wait_for(all_ready, 120, interval=0.5)
        async with transaction() as s:
            rows = (
                await s.execute(
                    select(Url.status, func.count())
                    .where(Url.project_id == project)
                    .group_by(Url.status)
                )
            ).all()
            assert dict(rows) == {"ready": PAGES}
            dupes = await s.scalar(
                text(
                    "SELECT count(*) FROM (SELECT url_id, ordinal FROM chunks WHERE project_id = :p "
                    "GROUP BY url_id, ordinal HAVING count(*) > 1) d"
                ),
                {"p": project},
            )
            assert dupes == 0
            unembedded = await s.scalar(
                text(
                    "SELECT count(*) FROM chunks c WHERE c.project_id = :p AND NOT EXISTS "
                    "(SELECT 1 FROM embeddings e WHERE e.chunk_id = c.id)"
                ),
                {"p": project},
            )
            assert unembedded == 0
            assert (
                await s.scalar(
                    select(func.count()).select_from(Chunk).where(Chunk.project_id == project)
                )
                >= PAGES
            )
        assert all(pages.hits.get(f"/p{i}") == 1 for i in range(PAGES))  # each page fetched once
        await a.aclose()
        await b.aclose()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if user_id:
            async with transaction() as s:
                await s.execute(text("DELETE FROM users WHERE id = :u"), {"u": user_id})
