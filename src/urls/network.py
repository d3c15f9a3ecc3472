# ruff: noqa: ASYNC109  (httpx hands the transport a timeout per phase: connect, read, write)
"""The HTTP/1.1 transport under the fetcher's httpx client: h11 over asyncio protocols, with
a small keep-alive pool.

httpx's default transport is httpcore's connection pool, which spends most of a fetch's
CPU in locks, events, cancel scopes, trace hooks and scans of the pool on every request and
every close: on the PostgreSQL manual's pages the whole `SafeFetcher.fetch` costs 1.32 ms
over it, 0.62 ms over this transport, and a bare exchange through h11 (the parser httpcore
uses too) 0.17 ms (`bench/fetch.py`). This transport keeps httpx's interface (requests,
streamed responses, the client's timeouts, httpx's exceptions) and does the exchange itself:

- a connection per (scheme, host, port, TLS server name): the fetcher sends the address it
  checked as the URL's host and the real name as the Host header and SNI
  (`sni_hostname`), so a pooled connection is only ever reused for the same checked
  address and name;
- TLS through the SSL context given (certificate and hostname checks on);
- keep-alive: at most `max_keepalive` idle connections, each for `keepalive_expiry`
  seconds, and one with data or EOF pending is never reused; a GET on a reused connection
  that the server closed before answering is sent once more, on a new connection;
- at most `max_connections` requests in flight; more wait, up to the pool timeout;
- a response is read as the caller reads it, with reading paused while READ_BUFFER_LIMIT
  bytes wait unread; a response closed before its end closes its connection.
"""

import asyncio
import ssl
import time
from collections.abc import AsyncIterator

import h11
import httpx

# A response body larger than this is not buffered further until it is read.
READ_BUFFER_LIMIT = 256 * 1024
# Status line and headers together (httpcore's limit too).
MAX_HEADER_BYTES = 100 * 1024
RETRYABLE_METHODS = frozenset({"GET", "HEAD"})


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
        async with asyncio.timeout(timeout):
            await waiter
    except TimeoutError as exc:
        raise timeout_error from exc
    finally:
        setattr(protocol, slot, None)


class ServerDisconnected(httpx.RemoteProtocolError):
    """The server closed the connection before the first byte of its answer."""


Key = tuple[str, str, int, str | None]


class _Connection:
    def __init__(self, key: Key, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self.key = key
        self.transport = transport
        self.protocol = protocol
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)
        self.idle_since = 0.0
        self.used = False  # has carried a request before the current one

    def reusable_when_idle(self) -> bool:
        protocol = self.protocol
        return not (protocol.buffer or protocol.eof or self.transport.is_closing())

    def close(self) -> None:
        self.transport.close()

    async def write(self, data: bytes, timeout: float | None) -> None:
        protocol = self.protocol
        if self.transport.is_closing():
            raise httpx.WriteError(str(protocol.error or "connection closed"))
        self.transport.write(data)
        if protocol.writing_paused:
            await _wait_on(protocol, "drain_waiter", timeout, httpx.WriteTimeout("write timed out"))
            if protocol.error is not None:
                raise httpx.WriteError(str(protocol.error))

    async def _read(self, timeout: float | None) -> bytes:
        protocol = self.protocol
        if not protocol.buffer and not protocol.eof:
            await _wait_on(protocol, "data_waiter", timeout, httpx.ReadTimeout("read timed out"))
        if protocol.buffer:
            data = bytes(protocol.buffer)
            protocol.buffer.clear()
            if protocol.reading_paused:
                protocol.reading_paused = False
                self.transport.resume_reading()
            return data
        if protocol.error is not None:
            raise httpx.ReadError(str(protocol.error) or type(protocol.error).__name__)
        return b""

    async def next_event(self, timeout: float | None) -> object:
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpx.RemoteProtocolError(str(exc)) from exc
            if event is not h11.NEED_DATA:
                return event
            try:
                data = await self._read(timeout)
            except httpx.ReadError as exc:
                if self._unanswered():
                    raise ServerDisconnected(str(exc)) from exc
                raise
            if not data and self._unanswered():
                raise ServerDisconnected("the server closed the connection without answering")
            self.h11.receive_data(data)  # b"": the server closed its side

    def _unanswered(self) -> bool:
        return self.h11.their_state is h11.SEND_RESPONSE and not self.h11.trailing_data[0]

    async def send_request(self, request: httpx.Request, timeouts: dict) -> h11.Response:
        try:
            data = self.h11.send(
                h11.Request(
                    method=request.method,
                    target=request.url.raw_path,
                    headers=request.headers.raw,
                )
            )
            async for chunk in request.stream:
                if chunk:
                    data += self.h11.send(h11.Data(data=chunk))
            data += self.h11.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(str(exc)) from exc
        await self.write(data, timeouts.get("write"))
        while True:
            event = await self.next_event(timeouts.get("read"))
            if isinstance(event, h11.Response):
                return event
            if not isinstance(event, h11.InformationalResponse):  # 1xx: the answer follows
                raise httpx.RemoteProtocolError(f"unexpected {type(event).__name__}")


class _Body(httpx.AsyncByteStream):
    """A response body read from its connection; closing it hands the connection back."""

    def __init__(self, pool: "FetchTransport", connection: _Connection, timeout: float | None):
        self._pool = pool
        self._connection = connection
        self._timeout = timeout
        self._complete = False
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        while not self._complete:
            event = await connection.next_event(self._timeout)
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._complete = True
            else:
                raise httpx.RemoteProtocolError(f"unexpected {type(event).__name__} in a body")

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool._release(self._connection)


class FetchTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext,
        max_connections: int = 100,
        max_keepalive: int = 8,
        keepalive_expiry: float = 5.0,
    ) -> None:
        self._ssl_context = ssl_context
        self._max_keepalive = max_keepalive
        self._keepalive_expiry = keepalive_expiry
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Connection] = []  # oldest first

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        try:
            async with asyncio.timeout(timeouts.get("pool")):
                await self._slots.acquire()
        except TimeoutError as exc:
            raise httpx.PoolTimeout("no connection slot became free in time") from exc
        try:
            connection, head = await self._exchange(request, timeouts)
        except BaseException:
            self._slots.release()
            raise
        return httpx.Response(
            status_code=head.status_code,
            headers=head.headers.raw_items(),
            stream=_Body(self, connection, timeouts.get("read")),
            extensions={
                "http_version": b"HTTP/" + head.http_version,
                "reason_phrase": head.reason,
            },
        )

    async def _exchange(
        self, request: httpx.Request, timeouts: dict
    ) -> tuple[_Connection, h11.Response]:
        url = request.url
        key = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        key += (request.extensions.get("sni_hostname") or url.host,)
        connection = self._checkout(key) or await self._connect(key, timeouts.get("connect"))
        while True:
            try:
                return connection, await connection.send_request(request, timeouts)
            except (httpx.WriteError, ServerDisconnected):
                connection.close()
                if not connection.used or request.method not in RETRYABLE_METHODS:
                    raise
                connection = await self._connect(key, timeouts.get("connect"))
            except BaseException:
                connection.close()  # cancelled or failed mid-exchange: its state is unknown
                raise

    def _checkout(self, key: Key) -> _Connection | None:
        oldest_usable = time.monotonic() - self._keepalive_expiry
        for connection in reversed(self._idle.copy()):  # the most recently used first
            if connection.key == key:
                self._idle.remove(connection)
                if connection.idle_since >= oldest_usable and connection.reusable_when_idle():
                    connection.used = True
                    return connection
                connection.close()
        return None

    async def _connect(self, key: Key, timeout: float | None) -> _Connection:
        scheme, host, port, server_name = key
        tls = scheme == "https"
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(
                    _Protocol,
                    host,
                    port,
                    ssl=self._ssl_context if tls else None,
                    server_hostname=server_name if tls else None,
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"timed out connecting to {host}:{port}") from exc
        except OSError as exc:  # refused, unreachable, TLS handshake or certificate failure
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        return _Connection(key, transport, protocol)

    def _release(self, connection: _Connection) -> None:
        self._slots.release()
        state = connection.h11
        finished = state.our_state is h11.DONE and state.their_state is h11.DONE
        if not finished or state.trailing_data[0]:
            # Not read to its end, either side asked to close, or bytes follow the answer
            # (never to be read as the next one).
            connection.close()
            return
        state.start_next_cycle()
        if not connection.reusable_when_idle():
            connection.close()
            return
        connection.idle_since = time.monotonic()
        self._idle.append(connection)
        oldest_usable = connection.idle_since - self._keepalive_expiry
        while self._idle and (
            len(self._idle) > self._max_keepalive or self._idle[0].idle_since < oldest_usable
        ):
            self._idle.pop(0).close()

    async def aclose(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()
