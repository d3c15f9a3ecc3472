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
    proc = _start_serve(database_url, port)
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


def _start_serve(database_url: str, port: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "src.cli", "serve", "--port", str(port), "--no-worker", *extra],
        env={**os.environ, "DATABASE_URL": database_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_ready(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/system/health/live").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("projex serve did not start")


async def test_sigterm_stops_accepting_and_finishes_the_request_in_flight(
    database_url: str, engine
) -> None:
    """A registration whose body is still arriving when SIGTERM lands is completed and
    committed; new connections are refused meanwhile; the process then exits cleanly."""
    import json

    from sqlalchemy import text

    port = free_port()
    proc = _start_serve(database_url, port, "--graceful-timeout", "20")
    email = f"sigterm-{port}@example.com"
    body = json.dumps({"email": email, "password": "a long enough password"}).encode()
    try:
        _wait_ready(port)
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(
            b"POST /api/v1/auth/register HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:10]
        )
        time.sleep(0.5)  # the request is in flight: headers read, body incomplete
        proc.terminate()
        deadline = time.monotonic() + 10
        while True:  # the listening socket closes first
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                break
            assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
            time.sleep(0.1)
        assert proc.poll() is None  # still finishing the request in flight
        sock.sendall(body[10:])
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
        sock.close()
        assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
        assert b"connection: close" in answer.lower()  # no keep-alive during shutdown
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode in (0, -15), out
        assert "Application shutdown complete" in out
        async with engine.begin() as conn:
            count = await conn.scalar(
                text("SELECT count(*) FROM users WHERE email = :e"), {"e": email}
            )
        assert count == 1  # the request's transaction was committed, not lost
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM users WHERE email = :e"), {"e": email})
