"""The fetch stage alone: CPU per page of SafeFetcher over its own transport (h11 on asyncio,
src/urls/network.py) against the same fetcher over httpx's default transport (httpcore's
pool), with a bare h11 exchange for scale, on the PostgreSQL manual served from loopback.

Each round fetches every page through each client in turn (8 at a time, kept-alive
connections, uvloop as in the workers), so the host's drift hits all three; the figures
are the medians over the rounds of the process CPU per page (the page server runs in its
own process and is not counted). Last line:

    fetcher_ms=… httpcore_ms=… bare_h11_ms=… ratio=…   (ratio: fetcher / httpcore)

Usage: uv run python bench/fetch.py [--rounds 5] [--limit N]
"""

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import h11
import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import manual_dir, pages, serve_in_process

CONCURRENCY = 8


def safe_fetcher(port: str, transport: httpx.AsyncBaseTransport | None):
    from src.urls.config import FetchSettings
    from src.urls.fetcher import SafeFetcher

    return SafeFetcher(
        FetchSettings(FETCH_ALLOWED_NETWORKS=["127.0.0.0/8"], FETCH_ALLOWED_PORTS=[port]),
        transport=transport,  # None: its own
    )


async def through_fetcher(urls: list[str], port: str, transport=None) -> float:
    """Process CPU seconds to fetch every URL with SafeFetcher, CONCURRENCY at a time."""
    fetcher = safe_fetcher(port, transport)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(url: str) -> None:
        async with gate:
            assert (await fetcher.fetch(url)).body

    await one(urls[0])  # robots.txt and a first connection
    started = time.process_time()
    await asyncio.gather(*(one(u) for u in urls))
    spent = time.process_time() - started
    await fetcher.aclose()
    return spent


async def bare_h11(urls: list[str], host: str, port: int) -> float:
    """The same GETs as plain HTTP/1.1 exchanges through h11 on CONCURRENCY connections."""
    queue = list(reversed(urls))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        state = h11.Connection(h11.CLIENT)
        while queue:
            target = queue.pop().split(f":{port}", 1)[1]
            writer.write(
                state.send(h11.Request(method="GET", target=target, headers=[("Host", host)]))
                + state.send(h11.EndOfMessage())
            )
            body = bytearray()
            while True:
                event = state.next_event()
                if event is h11.NEED_DATA:
                    state.receive_data(await reader.read(65536))
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
            assert body
            state.start_next_cycle()
        writer.close()

    started = time.process_time()
    await asyncio.gather(*(connection() for _ in range(CONCURRENCY)))
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--limit", type=int, default=0, help="only the first N pages")
    args = parser.parse_args()

    directory = manual_dir()
    files = pages(directory)[: args.limit or None]
    server, origin = serve_in_process(directory)
    spent: dict[str, list[float]] = {"fetcher": [], "httpcore": [], "bare_h11": []}
    try:
        host, port = origin.split("//", 1)[1].rsplit(":", 1)
        urls = [f"{origin}/{f.name}" for f in files]
        for _ in range(args.rounds):
            spent["fetcher"].append(uvloop.run(through_fetcher(urls, port)))
            default = httpx.AsyncHTTPTransport(trust_env=False)  # httpcore's pool over anyio
            spent["httpcore"].append(uvloop.run(through_fetcher(urls, port, default)))
            spent["bare_h11"].append(uvloop.run(bare_h11(urls, host, int(port))))
    finally:
        server.kill()
    ms = {k: 1000 * statistics.median(v) / len(urls) for k, v in spent.items()}
    for name, values in spent.items():
        print(f"{name}: " + " ".join(f"{1000 * v / len(urls):.3f}" for v in values) + " ms/page")
    print(
        f"fetcher_ms={ms['fetcher']:.3f} httpcore_ms={ms['httpcore']:.3f} "
        f"bare_h11_ms={ms['bare_h11']:.3f} ratio={ms['fetcher'] / ms['httpcore']:.2f}"
    )


if __name__ == "__main__":
    main()
