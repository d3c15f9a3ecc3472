"""The safe fetcher: what attackers aim at when they submit a URL.

- http/https only, ports 80/443 plus FETCH_ALLOWED_PORTS;
- the host is resolved here and refused if ANY address is not globally routable
  (private, loopback, link-local incl. 169.254.169.254, CGNAT, benchmarking, multicast,
  reserved, unspecified, and IPv4-mapped/6to4/NAT64/Teredo forms of those) unless it lies
  in FETCH_ALLOWED_NETWORKS; the connection then goes to that checked address (pinned,
  with Host and SNI kept), so DNS rebinding cannot switch it;
- redirects are followed by hand (FETCH_MAX_REDIRECTS), every hop checked the same way;
- one total deadline (FETCH_TIMEOUT_SECONDS) and a body cap enforced while streaming
  (FETCH_MAX_BYTES, on the bytes received and on the decoded body; gzip and deflate are
  inflated here, never more than the cap at a time, so a compression bomb stays small);
- robots.txt honoured (cached per host, read once however many fetches wait for it), an
  identifying User-Agent, a per-host limit;
- no cookie jar: cookies a page sets (for one tenant's fetch) are never sent with another;
- HTTP/1.1 through the fetcher's own transport (src/urls/network.py): connections pooled per
  checked address, port and TLS name, no proxy from the environment.
"""

import asyncio
import contextlib
import ipaddress
import socket
import time
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

import httpx

from src.urls.config import FetchSettings, fetch_settings
from src.urls.network import FetchTransport
from src.urls.utils import UrlRejected, is_allowed_address, normalise_url

PAGE_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "text/plain",
        "text/markdown",
        "text/x-markdown",
        "application/pdf",
    }
)
SITEMAP_TYPES = frozenset(
    {
        "application/xml",
        "text/xml",
        "application/gzip",
        "application/x-gzip",
        "application/octet-stream",
        "text/plain",
    }
)
ROBOTS_MAX_BYTES = 512 * 1024
# Origins whose robots.txt a fetcher keeps (least recently used out first): a worker that
# meets hosts by the million must not keep every parser for ROBOTS_CACHE_SECONDS.
ROBOTS_CACHE_MAX_HOSTS = 2048


class FetchError(Exception):
    """A fetch that did not produce a page. `transient` ones are worth retrying."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        transient: bool = False,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.transient = transient
        self.http_status = http_status
        self.retry_after = retry_after


@dataclass
class FetchResult:
    url: str  # after redirects
    status: int
    body: bytes = b""
    content_type: str = ""
    charset: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False
    redirects: list[str] = field(default_factory=list)


def _media_type(header: str | None) -> tuple[str, str | None]:
    if not header:
        return "", None
    media, _, params = header.partition(";")
    charset = None
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "charset" and value:
            charset = value.strip('"').strip()
    return media.strip().lower(), charset


_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class _Inflater:
    """One Content-Encoding (gzip or deflate) inflated with a bound on each step's output.

    httpx's own decoders inflate a whole network read at once: one 64 KiB read of a
    compression bomb is ~64 MiB in memory before any cap can look at it. Here each step
    produces at most one byte more than the room left under the cap."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._inflate = None  # a zlib decompressor, once the first bytes tell which

    def feed(self, data: bytes, room: int) -> bytes:
        if self._inflate is None:
            wbits = _WBITS[self.coding]
            # RFC 9110 deflate is zlib-wrapped (a header whose 16 bits are a multiple of 31,
            # method 8); some servers send raw deflate instead.
            if self.coding == "deflate" and not (
                len(data) >= 2 and data[0] & 0x0F == 8 and int.from_bytes(data[:2]) % 31 == 0
            ):
                wbits = -zlib.MAX_WBITS
            self._inflate = zlib.decompressobj(wbits)
        out = bytearray()
        try:
            while data and len(out) <= room:  # max_length 0 would mean unbounded: never here
                out += self._inflate.decompress(data, room + 1 - len(out))
                data = self._inflate.unconsumed_tail
        except zlib.error as exc:
            raise FetchError(
                "decoding_error", f"the body is not valid {self.coding}: {exc}"
            ) from exc
        return bytes(out)


def _inflater(header: str | None) -> _Inflater | None:
    """The decoder for a Content-Encoding header (None: the body is as sent). The fetcher
    asks for gzip or deflate only; anything else cannot be read, so it is refused."""
    codings = [c.strip().lower() for c in (header or "").split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return None
    if len(codings) > 1 or codings[0] not in _WBITS:
        raise FetchError(
            "unsupported_encoding", f"content encoding {header.strip()!r} is not decoded"
        )
    return _Inflater(codings[0])


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing: fetches share no state."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


class SafeFetcher:
    def __init__(
        self,
        settings: FetchSettings = fetch_settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,  # bench/fetch.py compares others
    ) -> None:
        self.settings = settings
        self.allowed_ports = settings.allowed_ports()
        self.client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,  # never route through proxies from the environment
            timeout=httpx.Timeout(settings.FETCH_TIMEOUT_SECONDS, connect=10.0),
            transport=transport
            or FetchTransport(ssl_context=httpx.create_ssl_context(trust_env=False)),
            headers={"User-Agent": settings.FETCH_USER_AGENT, "Accept-Encoding": "gzip, deflate"},
        )
        self.client._cookies = _NoCookies()  # httpx has no switch for its per-client jar
        # host → [semaphore, fetches using or waiting for it]; dropped when unused
        self._host_limits: dict[str, list] = {}
        self._robots: OrderedDict[str, tuple[float, RobotFileParser | None]] = OrderedDict()
        self._robots_loading: dict[str, asyncio.Event] = {}

    async def aclose(self) -> None:
        await self.client.aclose()

    # --- address checks --------------------------------------------------------------------

    async def resolve(self, host: str, port: int) -> str:
        """The address to connect to, after checking every address the name has."""
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [literal]
        else:
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except socket.gaierror as exc:
                raise FetchError(
                    "dns_error", f"cannot resolve {host}: {exc.strerror}", transient=True
                ) from exc
            addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
            if not addresses:
                raise FetchError("dns_error", f"{host} has no address", transient=True)
        for address in addresses:
            if not is_allowed_address(address, self.settings.FETCH_ALLOWED_NETWORKS):
                raise FetchError(
                    "ssrf_blocked", f"{host} resolves to a non-public address ({address})"
                )
        return str(addresses[0])

    def _check_url(self, url: str) -> tuple[str, str, int]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise FetchError("unsupported_scheme", "only http and https are fetched")
        host = parts.hostname
        if not host:
            raise FetchError("invalid_url", "no host")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if port not in self.allowed_ports:
            raise FetchError("port_not_allowed", f"port {port} is not allowed")
        return parts.scheme, host, port

    # --- one hop -------------------------------------------------------------------------------

    async def _send(self, url: str, headers: dict[str, str]) -> httpx.Response:
        scheme, host, port = self._check_url(url)
        address = await self.resolve(host, port)
        parts = urlsplit(url)
        ip = ipaddress.ip_address(address)
        pinned_host = f"[{ip.compressed}]" if ip.version == 6 else ip.compressed
        default = 443 if scheme == "https" else 80
        netloc = pinned_host if port == default else f"{pinned_host}:{port}"
        pinned = urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
        request_headers = {**headers, "Host": parts.netloc.rsplit("@", 1)[-1]}
        extensions = {"sni_hostname": host} if scheme == "https" else {}
        request = self.client.build_request(
            "GET", pinned, headers=request_headers, extensions=extensions
        )
        return await self.client.send(request, stream=True)

    async def _read_capped(self, response: httpx.Response, limit: int) -> bytes:
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise FetchError("too_large", f"declared {declared} bytes, over the {limit} cap")
        inflater = _inflater(response.headers.get("content-encoding"))
        body = bytearray()
        received = 0
        async for chunk in response.aiter_raw():  # raw: decoded here, within the cap
            received += len(chunk)
            body += inflater.feed(chunk, limit - len(body)) if inflater else chunk
            if len(body) > limit or received > limit:
                raise FetchError("too_large", f"body exceeds the {limit} byte cap")
        return bytes(body)

    # --- public --------------------------------------------------------------------------------

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: frozenset[str] = PAGE_TYPES,
        check_robots: bool = True,
        max_bytes: int | None = None,
    ) -> FetchResult:
        limit = max_bytes or self.settings.FETCH_MAX_BYTES
        try:
            async with asyncio.timeout(self.settings.FETCH_TIMEOUT_SECONDS):
                return await self._fetch(url, etag, last_modified, accept, check_robots, limit)
        except TimeoutError as exc:
            raise FetchError(
                "timeout",
                f"no complete answer within {self.settings.FETCH_TIMEOUT_SECONDS:g}s",
                transient=True,
            ) from exc
        except httpx.TimeoutException as exc:
            raise FetchError("timeout", "the server was too slow", transient=True) from exc
        except (httpx.TransportError, OSError) as exc:
            raise FetchError(
                "connection_error", f"{type(exc).__name__}: {exc}"[:300], transient=True
            ) from exc

    async def _fetch(
        self,
        url: str,
        etag: str | None,
        last_modified: str | None,
        accept: frozenset[str],
        check_robots: bool,
        limit: int,
    ) -> FetchResult:
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current = url
        redirects: list[str] = []
        for _ in range(self.settings.FETCH_MAX_REDIRECTS + 1):
            if check_robots and self.settings.FETCH_RESPECT_ROBOTS:
                await self._check_robots(current)
            async with self._host_slot(urlsplit(current).netloc):
                response = await self._send(current, headers)
                try:
                    if response.status_code in (301, 302, 303, 307, 308):
                        location = response.headers.get("location")
                        if not location:
                            raise FetchError(
                                "bad_redirect",
                                "redirect without Location",
                                http_status=response.status_code,
                            )
                        try:
                            current = normalise_url(urljoin(current, location))
                        except UrlRejected as exc:
                            raise FetchError(
                                "bad_redirect", f"redirect to an invalid URL: {exc.message}"
                            ) from exc
                        redirects.append(current)
                        continue
                    return await self._finish(current, response, accept, limit, redirects)
                finally:
                    await response.aclose()
        raise FetchError(
            "too_many_redirects", f"more than {self.settings.FETCH_MAX_REDIRECTS} redirects"
        )

    @contextlib.asynccontextmanager
    async def _host_slot(self, netloc: str) -> AsyncIterator[None]:
        """One of the host's FETCH_PER_HOST_CONCURRENCY slots. A host's semaphore lives
        while fetches use or wait for it (one event loop: no lock needed)."""
        entry = self._host_limits.get(netloc)
        if entry is None:
            entry = self._host_limits[netloc] = [
                asyncio.Semaphore(self.settings.FETCH_PER_HOST_CONCURRENCY),
                0,
            ]
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._host_limits[netloc]

    async def _finish(
        self,
        url: str,
        response: httpx.Response,
        accept: frozenset[str],
        limit: int,
        redirects: list[str],
    ) -> FetchResult:
        status = response.status_code
        result = FetchResult(
            url=url,
            status=status,
            redirects=redirects,
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
        )
        if status == 304:
            result.not_modified = True
            return result
        if status == 429 or status >= 500:
            raise FetchError(
                f"http_{status}",
                f"server answered {status}",
                transient=True,
                http_status=status,
                retry_after=_retry_after(response.headers.get("retry-after")),
            )
        if status >= 400:
            raise FetchError(f"http_{status}", f"server answered {status}", http_status=status)
        if status != 200:
            raise FetchError("unexpected_status", f"server answered {status}", http_status=status)
        media, charset = _media_type(response.headers.get("content-type"))
        if media not in accept:
            raise FetchError(
                "unsupported_type",
                f"content type {media or 'missing'!r} is not ingested",
                http_status=status,
            )
        result.content_type, result.charset = media, charset
        result.body = await self._read_capped(response, limit)
        return result

    # --- robots.txt ----------------------------------------------------------------------------

    async def _check_robots(self, url: str) -> None:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        parser = await self._robots_for(origin)
        agent = self.settings.FETCH_USER_AGENT.split("/", 1)[0]
        if parser is not None and not parser.can_fetch(agent, url):
            raise FetchError("robots_disallowed", "robots.txt disallows this URL")

    async def _robots_for(self, origin: str) -> RobotFileParser | None:
        """The cached parser; a miss is read by one fetch while the others wait for it (if
        that read fails or is cancelled, the next waiter reads it)."""
        while True:
            cached = self._robots.get(origin)
            if cached is not None and cached[0] >= time.monotonic():
                self._robots.move_to_end(origin)
                return cached[1]
            loading = self._robots_loading.get(origin)
            if loading is None:
                break
            await loading.wait()
        loading = self._robots_loading[origin] = asyncio.Event()
        try:
            parser = await self._load_robots(origin)
            self._robots[origin] = (time.monotonic() + self.settings.ROBOTS_CACHE_SECONDS, parser)
            self._robots.move_to_end(origin)
            while len(self._robots) > ROBOTS_CACHE_MAX_HOSTS:
                self._robots.popitem(last=False)
            return parser
        finally:
            del self._robots_loading[origin]
            loading.set()

    async def _load_robots(self, origin: str) -> RobotFileParser | None:
        """None (everything allowed) when there is no robots.txt or it cannot be read."""
        try:
            result = await self._fetch(
                f"{origin}/robots.txt",
                None,
                None,
                frozenset({"text/plain", ""}) | SITEMAP_TYPES | PAGE_TYPES,
                False,
                ROBOTS_MAX_BYTES,
            )
        except FetchError as exc:
            if exc.code == "ssrf_blocked":
                raise
            return None
        parser = RobotFileParser()
        parser.parse(result.body.decode("utf-8", "replace").splitlines())
        return parser
