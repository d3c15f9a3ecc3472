"""Search benchmark: `POST /search` (semantic, top 10) through the running app vs the very
same SQL statement issued straight to PostgreSQL over asyncpg, in one run; recall@10 of the
API against exact (brute-force) search.

Data: N synthetic chunks with text drawn from topic vocabularies (so their hashing
embeddings form clusters), embedded with the default hashing provider (384-d) and loaded
by binary COPY; queries are texts from the same topics. Last line:

    api_p50_ms=… sql_p50_ms=… ratio=… recall@10=…

Usage: uv run python bench/search.py [--rows 100000] [--queries 200]
"""

import argparse
import asyncio
import os
import random
import shutil
import statistics
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

from bench.ingest import bearer, free_port, sign_in, stop_embedded_postgres, wait_ready
from src.chunks.service import COPY_COLUMNS
from src.database import start_embedded_postgres
from src.vectorization.providers import HashingProvider

TOPICS = 100
WORDS_PER_TOPIC = 300


def vocabulary(rng: random.Random) -> list[list[str]]:
    syllables = ["ka", "lo", "mi", "ter", "van", "sul", "dro", "pex", "qui", "zen", "bar", "tor"]
    topics = []
    for _ in range(TOPICS):
        topics.append(["".join(rng.choices(syllables, k=3)) for _ in range(WORDS_PER_TOPIC)])
    return topics


def sentence(rng: random.Random, topics: list[list[str]], topic: int, n: int = 16) -> str:
    words = rng.choices(topics[topic], k=n - 4) + rng.choices(topics[rng.randrange(TOPICS)], k=4)
    return " ".join(words)


def near(rng: random.Random, text_: str) -> str:
    """A query close to one stored text: a few of its words, in another order."""
    words = text_.split()
    return " ".join(rng.sample(words, k=len(words) - 4))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def load(dsn: str, project_id: uuid.UUID, texts: list[str], vectors: np.ndarray) -> None:
    from pgvector.asyncpg import register_vector

    conn = await asyncpg.connect(dsn)
    await register_vector(conn)
    url_ids = [uuid.uuid4() for _ in texts]
    chunk_ids = [uuid.uuid4() for _ in texts]
    await conn.execute("SET maintenance_work_mem = '1GB'")
    await conn.execute("DROP INDEX IF EXISTS ix_embeddings_hnsw_hashing_v1_384")
    await conn.copy_records_to_table(
        "urls",
        columns=["id", "project_id", "url", "status", "source"],
        records=[
            (u, project_id, f"urn:bench:{i}", "ready", "vector") for i, u in enumerate(url_ids)
        ],
    )
    await conn.copy_records_to_table(
        "chunks",
        columns=COPY_COLUMNS,
        records=[
            (c, project_id, u, 0, t, [], 0, len(t), 30, str(i))
            for i, (c, u, t) in enumerate(zip(chunk_ids, url_ids, texts, strict=True))
        ],
    )
    await conn.copy_records_to_table(
        "embeddings",
        columns=["chunk_id", "model", "project_id", "embedding"],
        records=[
            (c, "hashing-v1-384", project_id, v) for c, v in zip(chunk_ids, vectors, strict=True)
        ],
    )
    started = time.perf_counter()
    await conn.execute("SET max_parallel_maintenance_workers = 2")
    await conn.execute(
        "CREATE INDEX ix_embeddings_hnsw_hashing_v1_384 ON embeddings USING hnsw "
        "((embedding::vector(384)) vector_cosine_ops) WHERE model = 'hashing-v1-384'"
    )
    await conn.execute(
        "UPDATE projects SET search_model = 'hashing-v1-384' WHERE id = $1", project_id
    )
    await conn.execute("ANALYZE")
    print(f"hnsw index built in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    await conn.close()


async def run(args: argparse.Namespace) -> None:
    from sqlalchemy import text
    from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg

    from src.vectorization.schemas import SearchRequest
    from src.vectorization.search import prepare

    rng = random.Random(7)
    topics = vocabulary(rng)
    texts = [sentence(rng, topics, i % TOPICS) for i in range(args.rows)]
    embedder = HashingProvider(384)
    started = time.perf_counter()
    vectors = np.array(embedder.embed_sync(texts), dtype=np.float32)
    print(f"embedded {args.rows} texts in {time.perf_counter() - started:.1f}s", file=sys.stderr)

    tmp = Path(tempfile.mkdtemp(prefix="projex-bench-search-"))
    url = start_embedded_postgres(tmp / "pg")
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "STORAGE_URL": f"file://{tmp}/objects",
        "LOG_LEVEL": "WARNING",
    }
    subprocess.run(
        [sys.executable, "-m", "src.cli", "migrate"], env=env, check=True, capture_output=True
    )
    api = subprocess.Popen(
        [sys.executable, "-m", "src.cli", "serve", "--port", str(port), "--no-worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base)
        token = await asyncio.to_thread(sign_in, base, "search@example.com")
        client = httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=30, headers=bearer(token))
        project = (await client.post("/projects", json={"name": "search bench"})).json()
        project_id = uuid.UUID(project["id"])
        await load(dsn, project_id, texts, vectors)

        queries = [near(rng, rng.choice(texts)) for _ in range(args.queries)]
        conn = await asyncpg.connect(dsn)
        dialect = pg_asyncpg.dialect()

        async def sql_search(query: str) -> tuple[float, list]:
            sql, params, settings, _ = await prepare(
                project_id=project_id,
                project_settings={},
                search_model="hashing-v1-384",
                data=SearchRequest(query=query, mode="semantic", top_k=10),
            )
            used = {k: v for k, v in params.items() if f":{k}" in sql}
            compiled = text(sql).bindparams(**used).compile(dialect=dialect)
            values = [compiled.params[name] for name in compiled.positiontup]
            t0 = time.perf_counter()
            async with conn.transaction():
                for statement in settings:
                    await conn.execute(statement)
                rows = await conn.fetch(compiled.string, *values)
            return (time.perf_counter() - t0) * 1000, [r["chunk_id"] for r in rows]

        async def api_search(query: str) -> tuple[float, list]:
            t0 = time.perf_counter()
            response = await client.post(
                f"/projects/{project_id}/search",
                json={"query": query, "mode": "semantic", "top_k": 10},
            )
            elapsed = (time.perf_counter() - t0) * 1000
            response.raise_for_status()
            return elapsed, [uuid.UUID(h["chunk_id"]) for h in response.json()["items"]]

        async def exact(query: str) -> list:
            (vec,) = embedder.embed_sync([query])
            rows = await conn.fetch(
                "SELECT chunk_id FROM embeddings WHERE model = 'hashing-v1-384' AND project_id = $1 "
                "ORDER BY embedding::vector(384) <=> $2::vector(384) LIMIT 10",
                project_id,
                "[" + ",".join(map(str, vec)) + "]",
            )
            return [r["chunk_id"] for r in rows]

        for q in queries[:20]:  # warm both paths
            await sql_search(q)
            await api_search(q)
        api_ms, sql_ms, recalls = [], [], []
        for i, q in enumerate(queries):
            # Each query once on both paths first: a query's HNSW pages are then cached for
            # both (otherwise whichever path runs first pays the disk reads for the other).
            await api_search(q)
            await sql_search(q)
            if i % 2:  # and alternate the order of the timed runs
                s, _ = await sql_search(q)
                a, hits = await api_search(q)
            else:
                a, hits = await api_search(q)
                s, _ = await sql_search(q)
            api_ms.append(a)
            sql_ms.append(s)
            async with conn.transaction():
                await conn.execute("SET LOCAL enable_indexscan = off")
                truth = await exact(q)
            recalls.append(len(set(hits) & set(truth)) / max(1, len(truth)))
        await conn.close()
        await client.aclose()
    finally:
        api.terminate()
        api.wait(30)
        stop_embedded_postgres(tmp / "pg")
        shutil.rmtree(tmp, ignore_errors=True)
    api_p50, sql_p50 = statistics.median(api_ms), statistics.median(sql_ms)
    print(
        f"rows={args.rows} queries={args.queries} api_p95_ms={percentile(api_ms, 0.95):.2f} "
        f"sql_p95_ms={percentile(sql_ms, 0.95):.2f}"
    )
    print(
        f"api_p50_ms={api_p50:.2f} sql_p50_ms={sql_p50:.2f} ratio={api_p50 / sql_p50:.2f} "
        f"recall@10={statistics.mean(recalls):.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
