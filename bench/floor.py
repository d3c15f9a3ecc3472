"""What the ingestion ratio can be at best on this machine: the bare CPU cost per page of
each stage the issues prescribe, measured in one run on the PostgreSQL manual.

Stages, each alone, without queue, transactions, snapshots or bookkeeping:
  serve    the loopback page server (part of the benchmark, it shares the machine)
  fetch    SafeFetcher (httpx, address checks, caps) from that server, 8 at a time (bench/fetch.py)
  extract  extract_html — the baseline of bench/ingest.py
  chunk    chunk_document with the default project settings
  store    PostgreSQL CPU to COPY the chunk texts into a table with the same generated
           tsvector and GIN index as `chunks` (full-text search works once `chunked`)
  embed    the hashing provider on every chunk
  hnsw     PostgreSQL CPU to COPY the vectors into a table with the same HNSW index

The ceiling is `cores × extract / sum(stages)`: the ratio bench/ingest.py would print if
every core did nothing but these stages. Last line:

    cores=… ceiling_chunked=… ceiling_ready=…

Usage: uv run python bench/floor.py [--limit N]
"""

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import manual_dir, pages, serve_in_process
from bench.fetch import through_fetcher
from bench.ingest import cpu_seconds, stop_embedded_postgres


def per_page(seconds: float, n: int) -> float:
    return 1000 * seconds / n


async def database_cpu(texts: list[str], vectors: list, dimensions: int) -> tuple[float, float]:
    """PostgreSQL backend CPU to COPY (1) the chunk texts into a table with the chunks
    table's generated English tsvector and GIN index, 112 rows at a time (a 16-page batch),
    and (2) the vectors, 448 at a time (an embed job), into a table with the index the
    hashing model gets (HNSW, cosine, pgvector's m=16, ef_construction=64)."""
    import asyncpg
    import numpy as np
    from pgvector.asyncpg import register_vector

    from src.database import start_embedded_postgres

    tmp = Path(tempfile.mkdtemp(prefix="projex-floor-"))
    dsn = start_embedded_postgres(tmp / "pg").replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    await register_vector(conn)
    await conn.execute(
        "CREATE TABLE floor_chunks (id bigint, text text, tsv tsvector GENERATED ALWAYS AS"
        " (to_tsvector('english'::regconfig, text)) STORED);"
        " CREATE INDEX ON floor_chunks USING gin (tsv);"
        f" CREATE TABLE floor_vectors (id bigint, embedding vector({dimensions}));"
        " CREATE INDEX ON floor_vectors USING hnsw (embedding vector_cosine_ops)"
    )
    backend = await conn.fetchval("SELECT pg_backend_pid()")

    async def timed(table: str, rows: list[tuple], batch: int) -> float:
        before = cpu_seconds([backend])
        for start in range(0, len(rows), batch):
            await conn.copy_records_to_table(
                table,
                columns=["id", rows[0][2]],
                records=[r[:2] for r in rows[start : start + batch]],
            )
        return cpu_seconds([backend]) - before

    store = await timed("floor_chunks", [(i, t, "text") for i, t in enumerate(texts)], 112)
    hnsw = await timed(
        "floor_vectors",
        [(i, np.asarray(v, dtype=np.float32), "embedding") for i, v in enumerate(vectors)],
        448,
    )
    await conn.close()
    stop_embedded_postgres(tmp / "pg")
    shutil.rmtree(tmp, ignore_errors=True)
    return store, hnsw


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=0, help="only the first N pages")
    args = parser.parse_args()

    from src.chunks.chunker import chunk_document
    from src.projects.schemas import ProjectSettings
    from src.urls.extract import extract_html
    from src.vectorization.providers import HashingProvider

    directory = manual_dir()
    files = pages(directory)[: args.limit or None]
    n = len(files)
    bodies = [f.read_bytes() for f in files]
    costs: dict[str, float] = {}

    server, origin = serve_in_process(directory)
    try:
        before = cpu_seconds([server.pid])
        fetch = uvloop.run(  # the workers' loop
            through_fetcher([f"{origin}/{f.name}" for f in files], origin.rsplit(":", 1)[1])
        )
        costs["serve"] = per_page(cpu_seconds([server.pid]) - before, n + 1)
        costs["fetch"] = per_page(fetch, n)
    finally:
        server.kill()

    started = time.process_time()
    docs = [extract_html(b) for b in bodies]
    costs["extract"] = per_page(time.process_time() - started, n)

    defaults = ProjectSettings()
    started = time.process_time()
    chunks = [
        c.text
        for d in docs
        for c in chunk_document(
            d, chunk_size=defaults.chunk_size, chunk_overlap=defaults.chunk_overlap
        )
    ]
    costs["chunk"] = per_page(time.process_time() - started, n)

    provider = HashingProvider()
    started = time.process_time()
    vectors = provider.embed_sync(chunks)
    costs["embed"] = per_page(time.process_time() - started, n)
    store, hnsw = asyncio.run(database_cpu(chunks, vectors, provider.dimensions))
    costs["store"] = per_page(store, n)
    costs["hnsw"] = per_page(hnsw, n)

    cores = os.cpu_count() or 1
    until_chunked = sum(costs[s] for s in ("serve", "fetch", "extract", "chunk", "store"))
    until_ready = until_chunked + costs["embed"] + costs["hnsw"]
    print(
        f"pages={n} chunks={len(chunks)} cpu_ms_per_page: "
        + " ".join(f"{k}={v:.2f}" for k, v in costs.items())
    )
    print(f"sum_until_chunked_ms={until_chunked:.2f} sum_until_ready_ms={until_ready:.2f}")
    print(
        f"cores={cores} ceiling_chunked={cores * costs['extract'] / until_chunked:.2f} "
        f"ceiling_ready={cores * costs['extract'] / until_ready:.2f}"
    )


if __name__ == "__main__":
    main()
