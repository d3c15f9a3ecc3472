"""The PostgreSQL manual (Debian `postgresql-doc-15`, ~1,170 HTML pages) served on loopback."""

import asyncio
import mimetypes
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import unquote

# Words of the manual's subject, for search queries and synthetic texts.
QUERY_WORDS = [
    "index",
    "vacuum",
    "replication",
    "backup",
    "query",
    "plan",
    "join",
    "table",
    "column",
    "trigger",
    "function",
]

CACHE = Path(__file__).resolve().parent / ".cache"
HTML_SUBDIR = "usr/share/doc/postgresql-doc-15/html"


def manual_dir() -> Path:
    """PGDOC_DIR, or the Debian package downloaded once into bench/.cache (apt-get download)."""
    configured = os.environ.get("PGDOC_DIR")
    if configured:
        return Path(configured)
    target = CACHE / "postgresql-doc-15"
    html = target / HTML_SUBDIR
    if html.is_dir():
        return html
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["apt-get", "download", "postgresql-doc-15"], cwd=tmp, check=True, capture_output=True
        )
        deb = next(Path(tmp).glob("postgresql-doc-15_*.deb"))
        subprocess.run(["dpkg", "-x", str(deb), str(target)], check=True)
    return html


def pages(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.html"))


class _Page(asyncio.Protocol):
    """HTTP/1.1 keep-alive GET/HEAD of files held in memory; anything else closes."""

    def __init__(self, files: dict[str, tuple[bytes, bytes]]) -> None:
        self.files = files
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            method, target, *_ = head.split(b"\r\n", 1)[0].split(b" ")
            if method not in (b"GET", b"HEAD"):
                self.transport.close()
                return
            found = self.files.get(unquote(target.split(b"?", 1)[0].decode("latin-1")))
            status, (body, ctype) = (
                (b"200 OK", found) if found else (b"404 Not Found", (b"not found", b"text/plain"))
            )
            self.transport.write(
                b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s"
                % (status, ctype, len(body), body if method == b"GET" else b"")
            )


class PageServer:
    """The manual from memory on its own event loop thread. It stands in for the web but
    shares this machine's cores with the system measured, so it should cost little: a page
    costs it ~0.05 ms of CPU (http.server's SimpleHTTPRequestHandler: ~0.18 ms)."""

    def __init__(self, directory: Path, host: str) -> None:
        files = {
            f"/{p.name}": (
                p.read_bytes(),
                (mimetypes.guess_type(p.name)[0] or "text/plain").encode(),
            )
            for p in directory.iterdir()
            if p.is_file()
        }
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:  # the loop lives in its own thread: callers may run a loop too
            asyncio.set_event_loop(self.loop)
            server = self.loop.run_until_complete(
                self.loop.create_server(lambda: _Page(files), host, 0)
            )
            self.port = server.sockets[0].getsockname()[1]
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        started.wait(30)

    def shutdown(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def serve(directory: Path, host: str = "127.0.0.1") -> tuple[PageServer, str]:
    server = PageServer(directory, host)
    return server, f"http://{host}:{server.port}"


_SERVER_SCRIPT = """
import sys, time
from pathlib import Path
from bench.corpus import serve
httpd, origin = serve(Path(sys.argv[1]))
print(origin, flush=True)
time.sleep(3600)
"""


def serve_in_process(directory: Path) -> tuple[subprocess.Popen, str]:
    """The page server in a process of its own, so that its CPU is not the caller's (kill it
    when done); returns it and its origin."""
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER_SCRIPT, str(directory)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    return server, server.stdout.readline().strip()
