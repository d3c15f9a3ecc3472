"""Soak: ingestion + search load for a fixed time against `projex serve --no-worker` and one
`projex worker`, sampling each process's RSS every 10 s. Prints start/peak/end RSS per
process, request and error counts; last line:

    api_rss_mb=start/peak/end worker_rss_mb=start/peak/end requests=… errors=…

Usage: uv run python bench/soak.py [--seconds 600] [--searchers 4]
"""

import argparse
import asyncio
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import QUERY_WORDS, manual_dir, pages, serve
from bench.ingest import (
    bearer,
    embedded_run_env,
    free_port,
    projex,
    sign_in,
    stop_embedded_postgres,
    wait_ready,
)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def run(args: argparse.Namespace) -> None:
    directory = manual_dir()
    files = pages(directory)
    httpd, origin = serve(directory)
    tmp = Path(tempfile.mkdtemp(prefix="projex-soak-"))
    port = free_port()
    env = embedded_run_env(tmp, origin, DATABASE_POOL_SIZE="5", DATABASE_MAX_OVERFLOW="5")
    api = projex(["serve", "--port", str(port), "--no-worker"], env, tmp / "api.log")
    base = f"http://127.0.0.1:{port}"
    wait_ready(base)
    worker = projex(["worker"], env, tmp / "worker.log")
    counts = {"requests": 0, "errors": 0}
    samples: dict[str, list[float]] = {"api": [], "worker": []}
    try:
        token = await asyncio.to_thread(sign_in, base, "soak@example.com")
        client = httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=60, headers=bearer(token))
        deadline = time.monotonic() + args.seconds

        async def call(method: str, url: str, **kw) -> httpx.Response | None:
            counts["requests"] += 1
            try:
                response = await client.request(method, url, **kw)
            except httpx.TransportError:
                counts["errors"] += 1
                return None
            if response.status_code >= 500:
                counts["errors"] += 1
            return response

        async def ingester() -> None:
            round_ = 0
            while time.monotonic() < deadline:
                project = (await call("POST", "/projects", json={"name": f"soak {round_}"})).json()[
                    "id"
                ]
                chunk = files[(round_ * 150) % len(files) :][:150]
                await call(
                    "POST",
                    f"/projects/{project}/urls",
                    json={"urls": [f"{origin}/{f.name}" for f in chunk]},
                )
                round_ += 1
                await asyncio.sleep(20)

        async def searcher() -> None:
            while time.monotonic() < deadline:
                listed = await call("GET", "/projects?limit=5")
                items = (
                    listed.json()["items"]
                    if listed is not None and listed.status_code == 200
                    else []
                )
                for item in items[:2]:
                    await call(
                        "POST",
                        f"/projects/{item['id']}/search",
                        json={"query": " ".join(random.choices(QUERY_WORDS, k=4))},
                    )
                await asyncio.sleep(0.2)

        async def sampler() -> None:
            while time.monotonic() < deadline:
                samples["api"].append(rss_mb(api.pid))
                samples["worker"].append(rss_mb(worker.pid))
                await asyncio.sleep(10)

        await asyncio.gather(ingester(), sampler(), *(searcher() for _ in range(args.searchers)))
        await client.aclose()
    finally:
        for proc in (worker, api):
            proc.terminate()
            proc.wait(30)
        httpd.shutdown()
        stop_embedded_postgres(tmp / "pg")
        shutil.rmtree(tmp / "objects", ignore_errors=True)  # the logs stay: read below
    pool_errors = sum(
        (tmp / name).read_text().count("QueuePool limit") for name in ("api.log", "worker.log")
    )
    print("rss samples (MB): api=" + ",".join(f"{x:.0f}" for x in samples["api"]))
    print("rss samples (MB): worker=" + ",".join(f"{x:.0f}" for x in samples["worker"]))
    print(f"pool_exhaustion_errors={pool_errors}")
    print(f"logs in {tmp}", file=sys.stderr)

    def fmt(xs: list[float]) -> str:
        return f"{xs[0]:.0f}/{max(xs):.0f}/{xs[-1]:.0f}"

    print(
        f"api_rss_mb={fmt(samples['api'])} worker_rss_mb={fmt(samples['worker'])} "
        f"requests={counts['requests']} errors={counts['errors']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--searchers", type=int, default=4)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
