"""Project stats: the chunk count summed from each URL's kept count (migration 0009) vs
counting the project's chunks, as the stats did before; and what keeping the counts costs
the ingestion's chunk writes. One embedded PostgreSQL migrated to head, one run.

Read: a project of --urls URLs with --chunks chunks each is written, as ingestion leaves it
(not yet vacuumed, which is when the SPA polls; autovacuum is held off on `chunks` so it
cannot step in mid-run), then the two statements run alternately, `--reads` times each,
after one warm-up of each; then again once the table is vacuumed (the old count's best
case). Write: `--batches` batches of 16 pages (the manual's ~7 chunks a page) on each side
are copied into `chunks`, with the counting trigger enabled and disabled in ABBA order, each
batch in its own transaction; PostgreSQL's CPU per batch is read from the backend's /proc
entry (clock ticks: the mean over many batches is the figure, not any one). Last lines:

    read: chunks=… count_ms=… sum_ms=… ratio=…
    read vacuumed: chunks=… count_ms=… sum_ms=… ratio=…
    write: batch_rows=… with_triggers_ms=… without_ms=… ratio=…

Usage: uv run python bench/stats.py [--urls 10000] [--chunks 10] [--reads 5] [--batches 100]
"""

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ingest import insert_project, stop_embedded_postgres
from src.chunks.service import COPY_COLUMNS
from src.database import start_embedded_postgres

COUNT = "SELECT count(*) FROM chunks WHERE project_id = $1"
SUM = "SELECT coalesce(sum(chunk_count), 0) FROM urls WHERE project_id = $1"
TEXT = "PostgreSQL provides several index types: B-tree, Hash, GiST, SP-GiST, GIN and BRIN. " * 11
TICK = os.sysconf("SC_CLK_TCK")


async def migrate(dsn: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from src.database import upgrade_database

    engine = create_async_engine(dsn)
    await upgrade_database(engine)
    await engine.dispose()


async def add_urls(conn: asyncpg.Connection, project: uuid.UUID, n: int) -> list[uuid.UUID]:
    return [
        r["id"]
        for r in await conn.fetch(
            "INSERT INTO urls (project_id, url, status) SELECT $1, $3 || i, 'chunked'"
            " FROM generate_series(1, $2) i RETURNING id",
            project,
            n,
            f"https://e.example/{uuid.uuid4().hex}/",
        )
    ]


def rows_for(project: uuid.UUID, urls: list[uuid.UUID], per_url: int) -> list[tuple]:
    return [
        (uuid.uuid4(), project, u, i, f"{i} {TEXT}", [], 0, len(TEXT), 200, uuid.uuid4().hex)
        for u in urls
        for i in range(per_url)
    ]


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def timed(conn: asyncpg.Connection, sql: str, project: uuid.UUID) -> float:
    started = time.perf_counter()
    await conn.fetchval(sql, project)
    return 1000 * (time.perf_counter() - started)


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="projex-stats-"))
    try:
        dsn = start_embedded_postgres(tmp / "pg")
        await migrate(dsn)
        conn = await asyncpg.connect(dsn.replace("postgresql+asyncpg", "postgresql"))
        await conn.execute("SET jit = off")
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        await conn.execute("ALTER TABLE chunks SET (autovacuum_enabled = off)")

        # Read: a project as ingestion leaves it.
        project = await insert_project(conn, "stats")
        urls = await add_urls(conn, project, args.urls)
        for i in range(0, len(urls), 1000):
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "chunks",
                    columns=COPY_COLUMNS,
                    records=rows_for(project, urls[i : i + 1000], args.chunks),
                )
        assert await conn.fetchval(COUNT, project) == await conn.fetchval(SUM, project)
        for label in ("read", "read vacuumed"):
            if label == "read vacuumed":
                await conn.execute("VACUUM chunks, urls")
            count_ms, sum_ms = [], []
            for _ in range(args.reads):
                count_ms.append(await timed(conn, COUNT, project))
                sum_ms.append(await timed(conn, SUM, project))
            c, s = statistics.median(count_ms), statistics.median(sum_ms)
            print(
                f"{label}: chunks={args.urls * args.chunks} count_ms={c:.1f} sum_ms={s:.1f}"
                f" ratio={c / s:.1f}"
            )

        # Write: the ingestion's chunk COPY, with and without the counting triggers.
        spent: dict[bool, list[float]] = {True: [], False: []}
        batch_rows = 0
        for i in range(2 * args.batches):
            triggers = i % 4 in (0, 3)  # ABBA
            page_urls = await add_urls(conn, project, 16)
            rows = rows_for(project, page_urls, 7)
            batch_rows = len(rows)
            state = "ENABLE" if triggers else "DISABLE"
            await conn.execute(f"ALTER TABLE chunks {state} TRIGGER chunks_count_added")
            before = backend_cpu(pid)
            async with conn.transaction():
                await conn.copy_records_to_table("chunks", columns=COPY_COLUMNS, records=rows)
            spent[triggers].append(1000 * (backend_cpu(pid) - before))
        await conn.execute("ALTER TABLE chunks ENABLE TRIGGER chunks_count_added")
        with_ms, without_ms = statistics.mean(spent[True]), statistics.mean(spent[False])
        print(
            f"write: batch_rows={batch_rows} with_triggers_ms={with_ms:.2f}"
            f" without_ms={without_ms:.2f} ratio={with_ms / without_ms:.3f}"
        )
        await conn.close()
    finally:
        stop_embedded_postgres(tmp / "pg")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--urls", type=int, default=10_000)
    parser.add_argument("--chunks", type=int, default=10, help="chunks per URL")
    parser.add_argument("--reads", type=int, default=5)
    parser.add_argument("--batches", type=int, default=100, help="batches per side")
    asyncio.run(main(parser.parse_args()))
