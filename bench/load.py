"""Load test (locust, headless) against a running `projex serve`: SPA users (list projects,
list URLs, search) and share-link consumers (shared search) for a fixed number of users and
duration. Prints requests/s, p50/p95/p99 and the error rate; last line:

    rps=… p95_ms=… error_rate=…

Usage: uv run --group bench python bench/load.py [--users 20] [--seconds 60] [--base URL]
Without --base it starts `projex serve` (API + in-process worker) on a fresh embedded
database and loads 2,000 vectors into a project first.
"""

from gevent import monkey

monkey.patch_all()

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import gevent
import httpx
from locust import HttpUser, between, task
from locust.env import Environment

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import QUERY_WORDS
from bench.ingest import bearer, sign_in

STATE: dict = {}


def setup(base: str) -> None:
    from src.vectorization.providers import HashingProvider

    token = sign_in(base, f"load-{time.time_ns()}@example.com")
    api = httpx.Client(base_url=f"{base}/api/v1", timeout=120, headers=bearer(token))
    project = api.post("/projects", json={"name": f"load {time.time_ns()}"}).json()["id"]
    embedder = HashingProvider(384)
    rng = random.Random(1)
    texts = [" ".join(rng.choices(QUERY_WORDS, k=25)) for _ in range(2000)]
    vectors = embedder.embed_sync(texts)
    api.post(
        f"/projects/{project}/vectors",
        json={
            "model": "hashing-v1-384",
            "dimensions": 384,
            "vectors": [
                {"external_id": str(i), "chunk_text": t, "embedding": v}
                for i, (t, v) in enumerate(zip(texts, vectors, strict=True))
            ],
        },
    ).raise_for_status()
    share = api.post(
        f"/projects/{project}/shares", json={"name": "load", "scopes": ["read", "search"]}
    ).json()["token"]
    STATE.update(token=token, project=project, share=share)


class SpaUser(HttpUser):
    weight = 3
    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Bearer {STATE['token']}"

    @task(2)
    def list_projects(self) -> None:
        self.client.get("/api/v1/projects", name="GET /projects")

    @task(2)
    def list_urls(self) -> None:
        self.client.get(
            f"/api/v1/projects/{STATE['project']}/urls?limit=20", name="GET /projects/{id}/urls"
        )

    @task(3)
    def search(self) -> None:
        query = " ".join(random.choices(QUERY_WORDS, k=4))
        self.client.post(
            f"/api/v1/projects/{STATE['project']}/search",
            json={"query": query, "top_k": 10},
            name="POST /projects/{id}/search",
        )


class ShareConsumer(HttpUser):
    weight = 1
    wait_time = between(0.5, 1.5)

    @task
    def shared_search(self) -> None:
        query = " ".join(random.choices(QUERY_WORDS, k=3))
        self.client.post(
            "/api/v1/shared/_/search",
            json={"query": query, "mode": "hybrid"},
            headers={"Authorization": f"Share {STATE['share']}"},
            name="POST /shared/{token}/search",
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--base", default=None)
    args = parser.parse_args()
    proc = None
    base = args.base
    if base is None:
        from bench.ingest import embedded_run_env, free_port, projex, wait_ready

        tmp = Path(tempfile.mkdtemp(prefix="projex-load-"))
        port = free_port()
        env = embedded_run_env(
            tmp,
            # the load generator shares one address: keep the per-address limit out of the way
            SHARE_CLIENT_RATE_LIMIT_PER_MINUTE="100000",
            SHARE_RATE_LIMIT_PER_MINUTE="100000",
        )
        proc = projex(["serve", "--port", str(port)], env)
        base = f"http://127.0.0.1:{port}"
        wait_ready(base)
    try:
        setup(base)
        env = Environment(user_classes=[SpaUser, ShareConsumer], host=base)
        runner = env.create_local_runner()
        runner.start(args.users, spawn_rate=args.users)
        gevent.spawn_later(args.seconds, runner.quit)
        runner.greenlet.join()
        total = env.stats.total
        for entry in sorted(env.stats.entries.values(), key=lambda e: e.name):
            print(
                f"{entry.name:32} n={entry.num_requests:6d} fail={entry.num_failures} "
                f"p50={entry.get_response_time_percentile(0.5):.0f}ms "
                f"p95={entry.get_response_time_percentile(0.95):.0f}ms"
            )
        errors = total.num_failures / max(1, total.num_requests)
        print(
            f"users={args.users} seconds={args.seconds} requests={total.num_requests} "
            f"p50_ms={total.get_response_time_percentile(0.5):.0f} "
            f"p99_ms={total.get_response_time_percentile(0.99):.0f}"
        )
        print(
            f"rps={total.total_rps:.1f} p95_ms={total.get_response_time_percentile(0.95):.0f} "
            f"error_rate={errors:.4f}"
        )
    finally:
        if proc is not None:
            from bench.ingest import stop_embedded_postgres

            proc.terminate()
            proc.wait(30)
            stop_embedded_postgres(tmp / "pg")
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
