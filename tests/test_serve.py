"""The real `projex serve` in a subprocess, over TCP."""

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_projex_serve_answers_ready_over_tcp(database_url: str, engine) -> None:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "src.cli", "serve", "--port", str(port), "--no-worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        last = None
        while time.monotonic() < deadline:
            try:
                last = httpx.get(f"http://127.0.0.1:{port}/api/v1/system/health/ready", timeout=2)
                if last.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        assert last is not None and last.status_code == 200, last and last.text
        assert last.json()["checks"]["database"]["status"] == "ok"
        assert last.headers["X-Request-ID"]
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode in (0, -15), out  # uvicorn re-raises SIGTERM after a clean stop
    assert "Application shutdown complete" in out
    assert "docs: http://127.0.0.1" in out
    assert "Database: PostgreSQL at" in out
