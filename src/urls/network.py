# ruff: noqa: ASYNC109  (httpcore's interface takes timeouts as arguments)
"""An asyncio-native network backend for httpcore, the layer under the fetcher's httpx client.

httpx's default backend goes through anyio. On asyncio that costs, per request, an anyio
cancel scope (10–17 µs) around every read and write, and a getpeername() plus a poll()
system call each time the pool checks whether an idle connection is still usable. Here the
sockets are asyncio protocols: reads and writes use `asyncio.timeout`, and whether an idle
connection has data or EOF pending is known without a system call.

Behaviour is httpcore's: the same exceptions (ConnectError, ReadTimeout, …, which httpx maps
to its own), TLS through the context and server name httpcore passes (certificate and
hostname checks stay on), and TCP_NODELAY as asyncio sets it.
"""

import asyncio
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore

# A response body larger than this is not buffered further until it is read.
READ_BUFFER_LIMIT = 256 * 1024


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.reading_paused = False
        self.writing_paused = False
        self.data_waiter: asyncio.Future[None] | None = None
        self.drain_waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._wake_reader()
        if len(self.buffer) > READ_BUFFER_LIMIT and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake_reader()
        self.writing_paused = False
        self._wake_writer()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake_writer()

    def _wake_reader(self) -> None:
        if self.data_waiter is not None and not self.data_waiter.done():
            self.data_waiter.set_result(None)

    def _wake_writer(self) -> None:
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)


async def _wait_on(
    protocol: _Protocol, slot: str, timeout: float | None, timeout_error: Exception
) -> None:
    """Wait until the protocol wakes `slot` (data or EOF arrived; the write buffer drained)."""
    waiter = asyncio.get_running_loop().create_future()
    setattr(protocol, slot, waiter)
    try:
        if timeout is None:
            await waiter
        else:
            async with asyncio.timeout(timeout):
                await waiter
    except TimeoutError as exc:
        raise timeout_error from exc
    finally:
        setattr(protocol, slot, None)


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.buffer and not protocol.eof:
            await _wait_on(protocol, "data_waiter", timeout, httpcore.ReadTimeout("read timed out"))
        if protocol.buffer:
            data = bytes(protocol.buffer[:max_bytes])
            del protocol.buffer[:max_bytes]
            if protocol.reading_paused and len(protocol.buffer) <= READ_BUFFER_LIMIT:
                protocol.reading_paused = False
                self._transport.resume_reading()
            return data
        if protocol.error is not None:
            raise httpcore.ReadError(str(protocol.error) or type(protocol.error).__name__)
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        protocol = self._protocol
        if self._transport.is_closing():
            raise httpcore.WriteError(str(protocol.error or "connection closed"))
        self._transport.write(buffer)
        if protocol.writing_paused:
            await _wait_on(
                protocol, "drain_waiter", timeout, httpcore.WriteTimeout("write timed out")
            )
            if protocol.error is not None:
                raise httpcore.WriteError(str(protocol.error))

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self._transport, self._protocol, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError as exc:
            self._transport.abort()
            raise httpcore.ConnectTimeout("timed out in the TLS handshake") from exc
        except (ssl.SSLError, OSError) as exc:
            self._transport.abort()
            raise httpcore.ConnectError(str(exc)) from exc
        if transport is None:  # the peer closed during the handshake
            raise httpcore.ConnectError("connection closed during the TLS handshake")
        self._protocol.transport = transport  # type: ignore[assignment]
        return AsyncioStream(transport, self._protocol)  # type: ignore[arg-type]

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # an idle connection with data or EOF pending is unusable
            return bool(self._protocol.buffer) or self._protocol.eof
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info in ("ssl_object", "socket"):
            return self._transport.get_extra_info(info)
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[tuple[Any, ...]] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(
                    _Protocol,
                    host,
                    port,
                    local_addr=(local_address, 0) if local_address else None,
                )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"timed out connecting to {host}:{port}") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return AsyncioStream(transport, protocol)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[tuple[Any, ...]] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("the fetcher does not use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
