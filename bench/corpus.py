"""The PostgreSQL manual (Debian `postgresql-doc-15`, ~1,170 HTML pages) served on loopback."""

import os
import subprocess
import tempfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

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


class _Quiet(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a production web server would
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

    def log_message(self, *args) -> None:
        pass


def serve(directory: Path, host: str = "127.0.0.1") -> tuple[ThreadingHTTPServer, str]:
    httpd = ThreadingHTTPServer((host, 0), partial(_Quiet, directory=str(directory)))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://{host}:{httpd.server_address[1]}"
