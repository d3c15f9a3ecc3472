"""Vector push benchmark: `POST /vectors` rows/s vs a raw binary COPY of the same rows
(URL, chunk and embedding rows, as the endpoint writes them) in the same run. Last line:

    api_rows_per_s=… copy_rows_per_s=… ratio=…

Usage: uv run python bench/vectors.py [--rows 10000] [--batches 3]
"""

import argparse
import asyncio
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ingest import (
    bearer,
    free_port,
    insert_project,
    sign_in,
    stop_embedded_postgres,
    wait_ready,
)
from src.chunks.service import COPY_COLUMNS
from src.database import start_embedded_postgres


async def copy_rows(
    dsn: str, project_id: uuid.UUID, texts: list[str], vectors: np.ndarray
) -> float:
    from pgvector.asyncpg import register_vector

    conn = await asyncpg.connect(dsn)
    await register_vector(conn)
    url_ids = [uuid.uuid4() for _ in texts]
    chunk_ids = [uuid.uuid4() for _ in texts]
    started = time.perf_counter()
    async with conn.transaction():
        await conn.copy_records_to_table(
            "urls",
            columns=["id", "project_id", "url", "status", "source", "external_id"],
            records=[(u, project_id, f"urn:copy:{u}", "ready", "vector", str(u)) for u in url_ids],
        )
        await conn.copy_records_to_table(
            "chunks",
            columns=COPY_COLUMNS,
            records=[
                (c, project_id, u, 0, t, [], 0, len(t), 20, hashlib.sha256(t.encode()).hexdigest())
                for c, u, t in zip(chunk_ids, url_ids, texts, strict=True)
            ],
        )
        await conn.copy_records_to_table(
            "embeddings",
            columns=["chunk_id", "model", "project_id", "embedding"],
            records=[
                (c, "hashing-v1-384", project_id, v)
                for c, v in zip(chunk_ids, vectors, strict=True)
            ],
        )
    elapsed = time.perf_counter() - started
    await conn.close()
    return elapsed


async def _create_database(dsn: str, name: str) -> None:
    conn = await asyncpg.connect(dsn)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()


async def _baseline_project(dsn: str) -> uuid.UUID:
    conn = await asyncpg.connect(dsn)
    project = await insert_project(conn, "copy")
    await conn.close()
    return project


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--batches", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(3)
    tmp = Path(tempfile.mkdtemp(prefix="projex-bench-vectors-"))
    url = start_embedded_postgres(tmp / "pg")
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "STORAGE_URL": f"file://{tmp}/objects",
        "LOG_LEVEL": "WARNING",
    }
    subprocess.run(
        [sys.executable, "-m", "src.cli", "migrate"], env=env, check=True, capture_output=True
    )
    # The baseline writes into its own, identical database: HNSW insertion of a vector already
    # in the graph is much cheaper, so sharing one index would flatter whichever path goes second.
    baseline_url = url.replace("/postgres?", "/copy_baseline?")
    asyncio.run(_create_database(dsn, "copy_baseline"))
    subprocess.run(
        [sys.executable, "-m", "src.cli", "migrate"],
        env={**env, "DATABASE_URL": baseline_url},
        check=True,
        capture_output=True,
    )
    baseline_dsn = baseline_url.replace("postgresql+asyncpg://", "postgresql://")
    baseline_project = asyncio.run(_baseline_project(baseline_dsn))
    port = free_port()
    api = subprocess.Popen(
        [sys.executable, "-m", "src.cli", "serve", "--port", str(port), "--no-worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp / "api.log", "w"),
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base)
        token = sign_in(base, "vectors@example.com")
        client = httpx.Client(base_url=f"{base}/api/v1", timeout=600, headers=bearer(token))
        project = client.post("/projects", json={"name": "vector push"}).json()["id"]
        api_s = copy_s = 0.0
        for batch in range(args.batches):
            vectors = (
                np.random.default_rng(batch).standard_normal((args.rows, 384)).astype(np.float32)
            )
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            texts = [
                " ".join(rng.choices(["alpha", "beta", "gamma", "delta", "omega"], k=12))
                + f" {batch}-{i}"
                for i in range(args.rows)
            ]
            body = {
                "model": "hashing-v1-384",
                "dimensions": 384,
                "vectors": [
                    {"external_id": f"b{batch}-{i}", "chunk_text": t, "embedding": v.tolist()}
                    for i, (t, v) in enumerate(zip(texts, vectors, strict=True))
                ],
            }
            payload = httpx.Request(
                "POST", "/x", json=body
            ).content  # serialised outside the timing
            started = time.perf_counter()
            response = client.post(
                f"/projects/{project}/vectors",
                content=payload,
                headers={"content-type": "application/json"},
            )
            api_s += time.perf_counter() - started
            response.raise_for_status()
            copy_s += asyncio.run(copy_rows(baseline_dsn, baseline_project, texts, vectors))
    finally:
        api.terminate()
        api.wait(30)
        stop_embedded_postgres(tmp / "pg")
        shutil.rmtree(tmp, ignore_errors=True)
    rows = args.rows * args.batches
    api_rate, copy_rate = rows / api_s, rows / copy_s
    print(f"rows={rows} api_seconds={api_s:.2f} copy_seconds={copy_s:.2f}")
    print(
        f"api_rows_per_s={api_rate:.0f} copy_rows_per_s={copy_rate:.0f} ratio={api_rate / copy_rate:.2f}"
    )


if __name__ == "__main__":
    main()
