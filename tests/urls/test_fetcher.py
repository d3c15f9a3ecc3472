"""The safe fetcher against a real HTTP server on loopback."""

import gzip
import time
import tracemalloc
import zlib

import pytest

from src.urls.config import FetchSettings
from src.urls.fetcher import FetchError, SafeFetcher
from tests.pages import PageServer, drip, redirect, respond, sequence


def fetcher(**overrides) -> SafeFetcher:
    base = {
        "FETCH_ALLOWED_NETWORKS": ["127.0.0.0/8"],
        "FETCH_ALLOWED_PORTS": ["1024-65535"],
        "FETCH_TIMEOUT_SECONDS": 2,
        "FETCH_MAX_BYTES": 4096,
    }
    return SafeFetcher(FetchSettings(**{**base, **overrides}))


async def expect_error(f: SafeFetcher, url: str, code: str, **kwargs) -> FetchError:
    with pytest.raises(FetchError) as exc:
        await f.fetch(url, **kwargs)
    assert exc.value.code == code, exc.value.message
    return exc.value


async def test_fetches_html_with_identifying_user_agent(pages: PageServer) -> None:
    seen = {}

    def handler(req) -> None:
        seen["ua"] = req.headers["User-Agent"]
        respond(200, "<p>hi</p>", headers={"ETag": '"v1"'})(req)

    pages.routes["/a"] = handler
    f = fetcher()
    result = await f.fetch(pages.url("/a"))
    assert result.status == 200 and result.body == b"<p>hi</p>" and result.etag == '"v1"'
    assert result.content_type == "text/html" and result.charset == "utf-8"
    assert seen["ua"].startswith("ProjexBot/")
    await f.aclose()


async def test_conditional_fetch_reports_not_modified(pages: PageServer) -> None:
    pages.routes["/c"] = lambda req: (
        respond(304)(req) if req.headers.get("If-None-Match") == '"v1"' else respond(200, "x")(req)
    )
    f = fetcher()
    result = await f.fetch(pages.url("/c"), etag='"v1"')
    assert result.not_modified
    await f.aclose()


async def test_slow_drip_hits_the_total_timeout(pages: PageServer) -> None:
    pages.routes["/slow"] = drip(total_seconds=6)
    f = fetcher(FETCH_TIMEOUT_SECONDS=1)
    error = await expect_error(f, pages.url("/slow"), "timeout")
    assert error.transient
    await f.aclose()


async def test_body_over_the_cap_fails_too_large(pages: PageServer) -> None:
    pages.routes["/big"] = respond(200, b"x" * 10_000)

    def no_length(req) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "text/html")
        req.end_headers()
        req.wfile.write(b"y" * 10_000)

    pages.routes["/big-stream"] = no_length
    pages.routes["/bomb"] = respond(
        200, gzip.compress(b"z" * 100_000), headers={"Content-Encoding": "gzip"}
    )
    f = fetcher()
    for path in ("/big", "/big-stream", "/bomb"):
        error = await expect_error(f, pages.url(path), "too_large")
        assert not error.transient
    await f.aclose()


async def test_gzip_and_deflate_bodies_are_decoded(pages: PageServer) -> None:
    text = b"<p>" + b"compressible words " * 150 + b"</p>"  # 2.8 KB, under the 4 KiB cap
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    encodings = {
        "/gzip": ("gzip", gzip.compress(text)),
        "/x-gzip": ("x-gzip", gzip.compress(text)),
        "/deflate": ("deflate", zlib.compress(text)),  # RFC 9110: zlib-wrapped
        "/raw-deflate": ("deflate", raw_deflate.compress(text) + raw_deflate.flush()),
        "/identity": ("identity", text),
    }
    for path, (coding, body) in encodings.items():
        pages.routes[path] = respond(200, body, headers={"Content-Encoding": coding})
    f = fetcher()
    for path in encodings:
        assert (await f.fetch(pages.url(path))).body == text, path
    await f.aclose()


async def test_compression_bomb_never_inflates_past_the_cap(pages: PageServer) -> None:
    """~100 KB on the wire that inflates to 100 MB: memory stays near the 1 MiB cap (httpx's
    own decoder inflated each 64 KiB read whole: ~64 MiB at once)."""
    bomb = gzip.compress(b"\0" * 100_000_000, 9)
    pages.routes["/bomb"] = respond(200, bomb, headers={"Content-Encoding": "gzip"})
    pages.routes["/small"] = respond(
        200, gzip.compress(b"<p>x</p>"), headers={"Content-Encoding": "gzip"}
    )
    f = fetcher(FETCH_MAX_BYTES=1024 * 1024)
    await f.fetch(pages.url("/small"))  # robots.txt read, connection open: not measured
    tracemalloc.start()
    try:
        error = await expect_error(f, pages.url("/bomb"), "too_large")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not error.transient
    assert peak < 8 * 1024 * 1024, peak
    await f.aclose()


async def test_corrupt_or_unknown_encodings_fail_the_url(pages: PageServer) -> None:
    pages.routes["/corrupt"] = respond(
        200, b"this is not gzip", headers={"Content-Encoding": "gzip"}
    )
    pages.routes["/bad-deflate"] = respond(
        200, b"\x78\x9c\xff\xff\xff", headers={"Content-Encoding": "deflate"}
    )
    pages.routes["/br"] = respond(200, b"\x1b\x03\x00", headers={"Content-Encoding": "br"})
    pages.routes["/twice"] = respond(
        200, gzip.compress(gzip.compress(b"<p>x</p>")), headers={"Content-Encoding": "gzip, gzip"}
    )
    f = fetcher()
    for path, code in (
        ("/corrupt", "decoding_error"),
        ("/bad-deflate", "decoding_error"),
        ("/br", "unsupported_encoding"),  # not asked for: its bytes would be read as text
        ("/twice", "unsupported_encoding"),
    ):
        error = await expect_error(f, pages.url(path), code)
        assert not error.transient and path in pages.hits
    await f.aclose()


async def test_redirect_to_loopback_or_metadata_is_blocked() -> None:
    server = PageServer(host="127.0.0.2")  # allowed; 127.0.0.1 is not
    try:
        server.routes["/to-loopback"] = redirect(f"http://127.0.0.1:{server.port}/x")
        server.routes["/to-metadata"] = redirect("http://169.254.169.254/latest/meta-data/")
        server.routes["/to-mapped"] = redirect("http://[::ffff:169.254.169.254]/")
        f = fetcher(FETCH_ALLOWED_NETWORKS=["127.0.0.2/32"], FETCH_ALLOWED_PORTS=["1-65535"])
        for path in ("/to-loopback", "/to-metadata", "/to-mapped"):
            await expect_error(f, server.url(path), "ssrf_blocked")
        await f.aclose()
    finally:
        server.close()


async def test_host_resolving_to_private_address_is_blocked(pages: PageServer) -> None:
    pages.routes["/x"] = respond(200, "secret")
    f = fetcher(FETCH_ALLOWED_NETWORKS=[])
    await expect_error(f, f"http://localhost:{pages.port}/x", "ssrf_blocked")  # DNS → 127.0.0.1
    assert pages.hits.get("/x") is None  # nothing was sent
    await f.aclose()


async def test_dns_rebinding_cannot_switch_the_checked_address(
    pages: PageServer, monkeypatch
) -> None:
    """The connection goes to the address that was checked, whatever DNS says later."""
    pages.routes["/pin"] = respond(200, "pinned")
    f = fetcher()
    calls = []

    async def resolve(host: str, port: int) -> str:
        calls.append(host)
        return "127.0.0.1"

    monkeypatch.setattr(f, "resolve", resolve)
    result = await f.fetch(f"http://rebind.example:{pages.port}/pin", check_robots=False)
    assert result.body == b"pinned" and calls == ["rebind.example"]
    await f.aclose()


async def test_redirects_are_followed_and_limited(pages: PageServer) -> None:
    pages.routes["/r1"] = redirect("/r2")
    pages.routes["/r2"] = redirect("/final", 301)
    pages.routes["/final"] = respond(200, "done")
    for i in range(8):
        pages.routes[f"/loop{i}"] = redirect(f"/loop{i + 1}")
    f = fetcher()
    result = await f.fetch(pages.url("/r1"))
    assert result.url.endswith("/final") and result.body == b"done" and len(result.redirects) == 2
    await expect_error(f, pages.url("/loop0"), "too_many_redirects")
    await f.aclose()


async def test_robots_disallow(pages: PageServer) -> None:
    pages.routes["/robots.txt"] = respond(200, "User-agent: *\nDisallow: /private\n", "text/plain")
    pages.routes["/private/page"] = respond(200, "no")
    pages.routes["/public"] = respond(200, "yes")
    f = fetcher()
    await expect_error(f, pages.url("/private/page"), "robots_disallowed")
    assert (await f.fetch(pages.url("/public"))).body == b"yes"
    assert pages.hits.get("/private/page") is None and pages.hits["/robots.txt"] == 1  # cached
    await f.aclose()
    ignoring = fetcher(FETCH_RESPECT_ROBOTS=False)
    assert (await ignoring.fetch(pages.url("/private/page"))).body == b"no"
    await ignoring.aclose()


async def test_concurrent_fetches_read_robots_once(pages: PageServer) -> None:
    import asyncio

    def slow_robots(req) -> None:
        time.sleep(0.3)  # every fetch below arrives while robots.txt is being read
        respond(200, "User-agent: *\nDisallow: /private\n", "text/plain")(req)

    pages.routes["/robots.txt"] = slow_robots
    for i in range(10):
        pages.routes[f"/p{i}"] = respond(200, f"page {i}")
    f = fetcher()
    results = await asyncio.gather(
        *(f.fetch(pages.url(f"/p{i}")) for i in range(10)),
        f.fetch(pages.url("/private/x")),
        return_exceptions=True,
    )
    assert [r.body for r in results[:10]] == [f"page {i}".encode() for i in range(10)]
    assert isinstance(results[10], FetchError) and results[10].code == "robots_disallowed"
    assert pages.hits["/robots.txt"] == 1
    await f.aclose()


async def test_per_host_concurrency_limit(pages: PageServer) -> None:
    """At most FETCH_PER_HOST_CONCURRENCY requests at once to one host; another host is not
    held up by it; a host's semaphore is dropped once no fetch uses it."""
    import asyncio
    import threading

    lock, state = threading.Lock(), {"now": 0, "max": 0}

    def slow(req) -> None:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.2)
        with lock:
            state["now"] -= 1
        respond(200, "slow")(req)

    pages.routes["/slow"] = slow
    other = PageServer()
    other.routes["/fast"] = respond(200, "fast")
    try:
        f = fetcher(FETCH_PER_HOST_CONCURRENCY=2)
        started = time.monotonic()
        slow_fetches = asyncio.gather(*(f.fetch(pages.url("/slow")) for _ in range(6)))
        fast = await f.fetch(other.url("/fast"))
        fast_seconds = time.monotonic() - started
        assert all(r.body == b"slow" for r in await slow_fetches)
        assert fast.body == b"fast" and fast_seconds < 0.5  # not queued behind the slow host
        assert state["max"] == 2 and time.monotonic() - started >= 0.6  # 6 requests, 2 at a time
        assert f._host_limits == {}
        await f.aclose()
    finally:
        other.close()


async def test_robots_cache_keeps_the_most_recent_hosts(monkeypatch) -> None:
    from src.urls import fetcher as fetcher_module

    monkeypatch.setattr(fetcher_module, "ROBOTS_CACHE_MAX_HOSTS", 2)
    servers = [PageServer() for _ in range(3)]
    try:
        for server in servers:
            server.routes["/robots.txt"] = respond(200, "User-agent: *\nAllow: /\n", "text/plain")
            server.routes["/p"] = respond(200, "page")
        f = fetcher()
        for server in [*servers, servers[1], servers[0]]:
            await f.fetch(server.url("/p"))
        # servers[0] was the least recently used when servers[2] came: read again.
        assert [s.hits["/robots.txt"] for s in servers] == [2, 1, 1]
        assert len(f._robots) == 2
        await f.aclose()
    finally:
        for server in servers:
            server.close()


async def test_cookies_set_by_a_page_are_never_sent(pages: PageServer) -> None:
    seen = []

    def handler(req) -> None:
        seen.append(req.headers.get("Cookie"))
        respond(200, "x", headers={"Set-Cookie": "session=tenant-a; Path=/"})(req)

    pages.routes["/a"] = handler
    pages.routes["/b"] = handler
    f = fetcher()
    await f.fetch(pages.url("/a"))
    await f.fetch(pages.url("/b"))
    assert seen == [None, None]
    assert not f.client.cookies
    await f.aclose()


async def test_status_codes_map_to_permanent_or_transient(pages: PageServer) -> None:
    pages.routes["/404"] = respond(404, "gone")
    pages.routes["/410"] = respond(410, "gone")
    pages.routes["/503"] = respond(503, "busy", headers={"Retry-After": "7"})
    pages.routes["/429"] = respond(429, "slow down")
    pages.routes["/bin"] = respond(200, b"\x00\x01", "application/octet-stream")
    f = fetcher()
    assert not (await expect_error(f, pages.url("/404"), "http_404")).transient
    assert not (await expect_error(f, pages.url("/410"), "http_410")).transient
    busy = await expect_error(f, pages.url("/503"), "http_503")
    assert busy.transient and busy.retry_after == 7
    assert (await expect_error(f, pages.url("/429"), "http_429")).transient
    assert not (await expect_error(f, pages.url("/bin"), "unsupported_type")).transient
    await f.aclose()


async def test_ports_and_schemes_are_limited(pages: PageServer) -> None:
    f = fetcher(FETCH_ALLOWED_PORTS=[])
    await expect_error(f, pages.url("/x"), "port_not_allowed")
    await f.aclose()


async def test_connection_refused_is_transient() -> None:
    f = fetcher()
    error = await expect_error(f, "http://127.0.0.1:1/", "port_not_allowed")
    assert not error.transient
    f2 = fetcher(FETCH_ALLOWED_PORTS=["1-65535"])
    assert (await expect_error(f2, "http://127.0.0.1:9/", "connection_error")).transient
    await f.aclose()
    await f2.aclose()


async def test_500_then_200(pages: PageServer) -> None:
    pages.routes["/flaky"] = sequence(respond(500, "oops"), respond(200, "ok"))
    f = fetcher()
    await expect_error(f, pages.url("/flaky"), "http_500")
    assert (await f.fetch(pages.url("/flaky"))).body == b"ok"
    await f.aclose()
