"""The fetcher's asyncio network backend against real loopback servers: keep-alive reuse,
a server closing an idle connection, large bodies, TLS verification and SNI."""

import asyncio
import datetime
import ipaddress
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpcore
import pytest

from src.urls.config import FetchSettings
from src.urls.fetcher import FetchError, SafeFetcher
from src.urls.network import READ_BUFFER_LIMIT, AsyncioBackend

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


async def test_a_slow_reader_pauses_the_socket_and_loses_nothing(server) -> None:
    stream = await AsyncioBackend().connect_tcp("127.0.0.1", server.port, timeout=2)
    await stream.write(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await asyncio.sleep(0.3)  # the server sends everything; the buffer fills past its limit
    assert stream._protocol.reading_paused
    received = bytearray()
    while chunk := await stream.read(65536, timeout=2):
        received += chunk
    assert bytes(received).endswith(BIG) and not stream._protocol.reading_paused
    await stream.aclose()


async def test_refused_and_timed_out_connections_raise_httpcore_errors() -> None:
    backend = AsyncioBackend()
    with pytest.raises(httpcore.ConnectError):
        await backend.connect_tcp("127.0.0.1", 9, timeout=2)  # discard port: nothing listens
    stream = None
    with socket_server() as port:
        stream = await backend.connect_tcp("127.0.0.1", port, timeout=2)
        with pytest.raises(httpcore.ReadTimeout):
            await stream.read(1024, timeout=0.2)  # the server never answers
        await stream.aclose()


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
        async with httpcore.AsyncConnectionPool(
            ssl_context=trusting, network_backend=AsyncioBackend()
        ) as pool:
            response = await pool.request(
                "GET",
                f"https://127.0.0.1:{tls.port}/x",
                headers={"Host": "localhost"},
                extensions={"sni_hostname": "localhost"},
            )
            assert response.status == 200 and response.content == b"hello /x"
            assert tls.server_names[-1] == "localhost"

            wrong = ssl.create_default_context(cafile=str(cert))
            async with httpcore.AsyncConnectionPool(
                ssl_context=wrong, network_backend=AsyncioBackend()
            ) as other:
                with pytest.raises(httpcore.ConnectError):  # name not in the certificate
                    await other.request(
                        "GET",
                        f"https://127.0.0.1:{tls.port}/x",
                        extensions={"sni_hostname": "example.org"},
                    )
    finally:
        tls.close()
