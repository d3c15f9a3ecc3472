"""The fetcher's HTTP/1.1 transport against real loopback servers: keep-alive reuse and its
limits, a server closing an idle connection or hanging up before answering, large and
close-delimited bodies, malformed answers, slots and cancellation, TLS verification and SNI."""

import asyncio
import datetime
import ipaddress
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from src.urls.config import FetchSettings
from src.urls.fetcher import FetchError, SafeFetcher
from src.urls.network import READ_BUFFER_LIMIT, FetchTransport

BIG = bytes(range(256)) * (3 * READ_BUFFER_LIMIT // 256)  # several buffer limits


class KeepAliveServer:
    """HTTP/1.1 with keep-alive; `/bye` answers, then closes the connection without saying so."""

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        self.connections = 0
        self.server_names: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                outer.connections += 1
                super().setup()

            def do_GET(self) -> None:
                body = BIG if self.path == "/big" else b"hello " + self.path.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                if self.path == "/bye":
                    self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if context is not None:
            context.sni_callback = lambda sock, name, ctx: self.server_names.append(name)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = KeepAliveServer()
    yield s
    s.close()


def fetcher() -> SafeFetcher:
    return SafeFetcher(
        FetchSettings(
            FETCH_ALLOWED_NETWORKS=["127.0.0.0/8"],
            FETCH_ALLOWED_PORTS=["1024-65535"],
            FETCH_RESPECT_ROBOTS=False,
            FETCH_MAX_BYTES=4 * len(BIG),
        )
    )


async def test_connections_are_reused_and_a_server_side_close_is_noticed(server) -> None:
    f = fetcher()
    base = f"http://127.0.0.1:{server.port}"
    for i in range(3):
        assert (await f.fetch(f"{base}/p{i}")).body == f"hello /p{i}".encode()
    assert server.connections == 1  # kept alive

    assert (await f.fetch(f"{base}/bye")).body == b"hello /bye"
    await asyncio.sleep(0.2)  # the server's FIN reaches the idle pooled connection
    assert (await f.fetch(f"{base}/after")).body == b"hello /after"  # not the dead connection
    assert server.connections == 2
    await f.aclose()


async def test_large_body_arrives_whole(server) -> None:
    f = fetcher()
    result = await f.fetch(f"http://127.0.0.1:{server.port}/big")
    assert result.body == BIG
    await f.aclose()


def client(transport: FetchTransport | None = None, **kwargs) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=transport or FetchTransport(ssl_context=httpx.create_ssl_context()), **kwargs
    )


async def test_a_slow_reader_pauses_the_socket_and_loses_nothing(server) -> None:
    async with client() as c, c.stream("GET", f"http://127.0.0.1:{server.port}/big") as response:
        await asyncio.sleep(0.3)  # the server sends everything; the buffer fills past its limit
        protocol = response.stream._stream._connection.protocol
        assert protocol.reading_paused
        received = bytearray()
        async for chunk in response.aiter_raw():
            received += chunk
        assert bytes(received) == BIG and not protocol.reading_paused


async def test_refused_and_timed_out_connections_raise_httpx_errors() -> None:
    async with client(timeout=0.2) as c:
        with pytest.raises(httpx.ConnectError):
            await c.get("http://127.0.0.1:9/")  # discard port: nothing listens
        with socket_server() as port, pytest.raises(httpx.ReadTimeout):
            await c.get(f"http://127.0.0.1:{port}/")  # the server never answers


async def test_a_partly_read_or_closing_response_does_not_leave_its_connection_pooled(
    server,
) -> None:
    transport = FetchTransport(ssl_context=httpx.create_ssl_context())
    base = f"http://127.0.0.1:{server.port}"
    async with client(transport) as c:
        async with c.stream("GET", f"{base}/big") as response:
            async for _ in response.aiter_raw():
                break  # the rest of the body is never read
        assert transport._idle == []
        assert (await c.get(f"{base}/next")).content == b"hello /next"
        assert server.connections == 2 and len(transport._idle) == 1
        await c.get(f"{base}/bye", headers={"Connection": "close"})  # we asked to close
        assert transport._idle == [] and server.connections == 2


async def test_idle_connections_are_capped_and_expire(server) -> None:
    transport = FetchTransport(
        ssl_context=httpx.create_ssl_context(), max_keepalive=1, keepalive_expiry=0.3
    )
    base = f"http://127.0.0.1:{server.port}"
    async with client(transport) as c:
        async with c.stream("GET", f"{base}/a") as first, c.stream("GET", f"{base}/b") as second:
            await first.aread()
            await second.aread()
        assert server.connections == 2 and len(transport._idle) == 1  # one kept, one closed
        await c.get(f"{base}/c")
        assert server.connections == 2  # the kept one was reused
        await asyncio.sleep(0.4)
        await c.get(f"{base}/d")
        assert server.connections == 3  # it had expired


async def test_slots_are_limited_and_a_cancelled_request_frees_its_own() -> None:
    transport = FetchTransport(ssl_context=httpx.create_ssl_context(), max_connections=1)
    async with client(transport, timeout=httpx.Timeout(5, pool=0.2)) as c:
        with socket_server() as port, pytest.raises(TimeoutError):  # cancelled, unanswered
            async with asyncio.timeout(0.2):
                await c.get(f"http://127.0.0.1:{port}/")
        s = KeepAliveServer()
        try:
            base = f"http://127.0.0.1:{s.port}"
            async with c.stream("GET", f"{base}/held") as held:
                with pytest.raises(httpx.PoolTimeout):  # the one slot is taken
                    await c.get(f"{base}/other")
                await held.aread()
            assert (await c.get(f"{base}/other")).content == b"hello /other"
        finally:
            s.close()


class ScriptedServer:
    """Raw HTTP on asyncio: connection i runs `scripts[i]` (reader, writer) -> None."""

    def __init__(self, *scripts) -> None:
        self.scripts = list(scripts)
        self.connections = 0

    async def __aenter__(self) -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            script = self.scripts[min(self.connections, len(self.scripts) - 1)]
            self.connections += 1
            try:
                await script(reader, writer)
            finally:
                writer.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def __aexit__(self, *exc) -> None:
        self.server.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


async def answer_then_hang_up(reader, writer) -> None:
    """Answer one request with keep-alive, then close on the next without answering (the
    race with a server's keep-alive timeout)."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(OK)
    await reader.readuntil(b"\r\n\r\n")


async def answer_all(reader, writer) -> None:
    while True:
        try:
            await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return
        writer.write(OK)


async def hang_up(reader, writer) -> None:
    await reader.readuntil(b"\r\n\r\n")


async def test_a_reused_connection_closed_before_answering_is_retried_once_for_get() -> None:
    scripted = ScriptedServer(answer_then_hang_up, answer_all)
    async with scripted as port, client() as c:
        url = f"http://127.0.0.1:{port}/"
        assert (await c.get(url)).content == b"ok"
        assert (await c.get(url)).content == b"ok"  # sent again on a new connection
        assert scripted.connections == 2

    scripted = ScriptedServer(answer_then_hang_up, answer_all)
    async with scripted as port, client() as c:
        url = f"http://127.0.0.1:{port}/"
        await c.get(url)
        with pytest.raises(httpx.RemoteProtocolError):  # not idempotent: not sent twice
            await c.post(url, content=b"x")
        assert scripted.connections == 1

    async with ScriptedServer(hang_up) as port:  # a new connection: nothing to retry
        f = fetcher()
        with pytest.raises(FetchError) as exc:
            await f.fetch(f"http://127.0.0.1:{port}/")
        assert exc.value.code == "connection_error" and "without answering" in exc.value.message
        await f.aclose()


async def answer_with_a_smuggled_second(reader, writer) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(OK + b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfake")
    await answer_all(reader, writer)


async def test_bytes_after_an_answer_are_never_read_as_the_next_one() -> None:
    scripted = ScriptedServer(answer_with_a_smuggled_second, answer_all)
    async with scripted as port, client() as c:
        url = f"http://127.0.0.1:{port}/"
        assert (await c.get(url)).content == b"ok"
        assert (await c.get(url)).content == b"ok"  # not "fake": a new connection
        assert scripted.connections == 2


async def close_delimited(reader, writer) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
    await writer.drain()


async def broken_head(reader, writer) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n")
    await writer.drain()


async def test_close_delimited_bodies_and_malformed_answers() -> None:
    f = fetcher()
    async with ScriptedServer(close_delimited) as port:
        result = await f.fetch(f"http://127.0.0.1:{port}/")
        assert result.body == b"until the end"
    async with ScriptedServer(broken_head) as port:
        with pytest.raises(FetchError) as exc:
            await f.fetch(f"http://127.0.0.1:{port}/")
        assert exc.value.code == "connection_error"
    await f.aclose()


class socket_server:
    """A listening socket that accepts and says nothing."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        return self.sock.getsockname()[1]

    def __exit__(self, *exc) -> None:
        self.sock.close()


def self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_tls_is_verified_and_sends_the_server_name(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    tls = KeepAliveServer(context)
    try:
        # The fetcher trusts the system's CAs only: a self-signed certificate is refused.
        f = fetcher()
        with pytest.raises(FetchError) as exc:
            await f.fetch(f"https://127.0.0.1:{tls.port}/x")
        assert exc.value.code == "connection_error" and "CERTIFICATE" in exc.value.message.upper()
        await f.aclose()

        # Trusting that certificate, a pinned-address request verifies it for the server name
        # given as SNI, as the fetcher sends it.
        trusting = ssl.create_default_context(cafile=str(cert))
        async with client(FetchTransport(ssl_context=trusting)) as c:
            response = await c.get(
                f"https://127.0.0.1:{tls.port}/x",
                headers={"Host": "localhost"},
                extensions={"sni_hostname": "localhost"},
            )
            assert response.status_code == 200 and response.content == b"hello /x"
            assert tls.server_names[-1] == "localhost"

            with pytest.raises(httpx.ConnectError):  # name not in the certificate
                await c.get(
                    f"https://127.0.0.1:{tls.port}/x", extensions={"sni_hostname": "example.org"}
                )
    finally:
        tls.close()
