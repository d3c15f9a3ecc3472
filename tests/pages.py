"""A real HTTP server on loopback for fetcher, pipeline and crawl tests.

Routes map a path to a handler `(request) -> None` that writes the answer, so tests can
script slow drips, failures then successes, redirects, robots.txt and sitemaps.
"""

import contextlib
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Handler = Callable[[BaseHTTPRequestHandler], None]


def respond(
    status: int = 200,
    body: bytes | str = b"",
    content_type: str = "text/html; charset=utf-8",
    headers: dict[str, str] | None = None,
) -> Handler:
    data = body.encode() if isinstance(body, str) else body

    def handler(req: BaseHTTPRequestHandler) -> None:
        req.send_response(status)
        req.send_header("Content-Type", content_type)
        req.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            req.send_header(name, value)
        req.end_headers()
        req.wfile.write(data)

    return handler


def sequence(*handlers: Handler) -> Handler:
    """Answer with each handler in turn, then keep using the last one."""
    calls = {"n": 0}

    def handler(req: BaseHTTPRequestHandler) -> None:
        index = min(calls["n"], len(handlers) - 1)
        calls["n"] += 1
        handlers[index](req)

    return handler


def drip(total_seconds: float, pieces: int = 20) -> Handler:
    def handler(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "text/html")
        req.send_header("Content-Length", str(pieces))
        req.end_headers()
        for _ in range(pieces):
            req.wfile.write(b"x")
            req.wfile.flush()
            time.sleep(total_seconds / pieces)

    return handler


def redirect(location: str, status: int = 302) -> Handler:
    return respond(status, b"", headers={"Location": location})


class PageServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Handler] = {}
        self.hits: dict[str, int] = {}
        server = self

        class _Request(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                server.hits[path] = server.hits.get(path, 0) + 1
                handler = server.routes.get(path) or server.routes.get(self.path)
                if handler is None:
                    respond(404, b"not found", "text/plain")(self)
                    return
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    handler(self)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, 0), _Request)
        self.httpd.daemon_threads = True
        self.host = host
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def page(title: str, *sections: tuple[str, str], links: list[str] = ()) -> str:
    body = "".join(f"<h2>{h}</h2><p>{p}</p>" for h, p in sections)
    nav = "".join(f'<a href="{href}">{href}</a> ' for href in links)
    return (
        f"<html lang='en'><head><title>{title}</title></head><body><nav>{nav}</nav>"
        f"<main><h1>{title}</h1>{body}</main><footer>footer text</footer></body></html>"
    )


def minimal_pdf(text: str, info: bytes = b"") -> bytes:
    """A one-page PDF showing `text` in Helvetica; `info`, a PDF dictionary, becomes its
    document information (`<< /Title (…) >>`)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for i, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer << /Size {len(objects) + 1} /Root 1 0 R ".encode()
    out += (b"/Info " + info if info else b"") + f">>\nstartxref\n{xref}\n%%EOF".encode()
    return out
