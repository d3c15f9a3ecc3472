"""`projex worker` start-up: it refuses a database this version cannot use, in one line, and
migrates its own embedded development database as `projex serve` does."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from src.database import head_revision

pytestmark = pytest.mark.slow


async def test_worker_refuses_an_unmigrated_database(database_url: str, engine) -> None:
    name = f"unmigrated_{uuid.uuid4().hex[:8]}"
    async with engine.connect() as conn:
        await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(
            text(f'CREATE DATABASE "{name}"')
        )
    try:
        url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
        result = subprocess.run(
            [sys.executable, "-m", "src.cli", "worker"],
            env={**os.environ, "DATABASE_URL": url},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, result.stderr
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("projex: database not ready:") and "projex migrate" in last
        assert "Traceback" not in result.stderr and "worker ready" not in result.stderr
    finally:
        async with engine.connect() as conn:
            await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(
                text(f'DROP DATABASE "{name}"')
            )


def test_worker_migrates_its_embedded_database(tmp_path: Path) -> None:
    env = {**os.environ, "EMBEDDED_DATA_DIR": str(tmp_path / "pg"), "LOG_LEVEL": "WARNING"}
    env.pop("DATABASE_URL", None)
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "src.cli", "worker", "--queue", "ingestion"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while "worker ready" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        url = f"postgresql://postgres@/postgres?host={tmp_path / 'pg'}"  # its socket directory
        version = subprocess.run(
            [sys.executable, "-c", _READ_VERSION, url], capture_output=True, text=True, timeout=30
        )
        assert version.stdout.strip() == head_revision(), version.stderr
        assert "reconcile.failed" not in log.read_text()
    finally:
        proc.terminate()
        assert proc.wait(30) == 0, log.read_text()


_READ_VERSION = """
import asyncio, sys, asyncpg
async def main():
    conn = await asyncpg.connect(sys.argv[1])
    print(await conn.fetchval("SELECT version_num FROM alembic_version"))
    await conn.close()
asyncio.run(main())
"""
