"""The worker side of ingestion: fetch → snapshot → extract → chunk → hand-off, plus crawl
seeding, link discovery, re-crawls, the reconciler and the purge of deleted projects.

Every step is idempotent: a job killed anywhere and run again ends with one set of chunks.
Network and CPU work happen outside database transactions.
"""

import asyncio
import fnmatch
import gzip
import hashlib
import io
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from lxml import etree
from sqlalchemy import Integer, Text, bindparam, case, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession

from src.aws import service as storage
from src.chunks import service as chunks_service
from src.chunks.chunker import chunk_document
from src.database import transaction
from src.log import get_logger
from src.projects.config import projects_settings
from src.projects.models import Project
from src.projects.schemas import ProjectSettings
from src.system import metrics
from src.urls import service as urls_service
from src.urls.config import fetch_settings
from src.urls.constants import CrawlStatus, UrlSource, UrlStatus
from src.urls.extract import Extracted, ExtractionError, extract
from src.urls.fetcher import SITEMAP_TYPES, FetchError, FetchResult, SafeFetcher
from src.urls.models import Crawl, Url
from src.urls.utils import UrlRejected, normalise_url
from src.vectorization import service as vectorization_service
from src.worker import after_commit, cpu_on_loop

log = get_logger(__name__)

_fetcher: SafeFetcher | None = None


def get_fetcher() -> SafeFetcher:
    global _fetcher
    if _fetcher is None:
        _fetcher = SafeFetcher(fetch_settings)
    return _fetcher


@dataclass
class Claim:
    id: uuid.UUID
    project_id: uuid.UUID
    url: str
    status: str
    attempts: int
    etag: str | None
    last_modified: str | None
    content_hash: str | None
    snapshot_key: str | None
    text_key: str | None
    crawl_id: uuid.UUID | None
    crawl_depth: int | None
    settings: dict[str, Any]

    @property
    def has_content(self) -> bool:
        return self.status in (UrlStatus.CHUNKED, UrlStatus.READY) and self.content_hash is not None


# A row is free when nobody holds it, its lease ran out, or its holder is no longer running
# (a stalled job retried by the reconciler keeps its id and takes its rows back).
_CLAIM = text(
    """
    UPDATE urls u SET
      status = CASE WHEN u.status IN ('chunked', 'ready') THEN u.status ELSE 'fetching' END,
      status_changed_at = CASE WHEN u.status IN ('chunked', 'ready') THEN u.status_changed_at
                               ELSE now() END,
      attempts = CASE WHEN u.error_code IS NULL THEN 1 ELSE u.attempts + 1 END,
      claim_job_id = :job_id,
      lease_expires_at = now() + make_interval(secs => :lease)
    FROM projects p
    WHERE u.id = ANY(:ids) AND p.id = u.project_id AND p.deleted_at IS NULL
      AND u.source IN ('api', 'crawl')
      AND (u.claim_job_id IS NULL OR u.claim_job_id = :job_id OR u.lease_expires_at < now()
           OR NOT EXISTS (SELECT 1 FROM procrastinate_jobs j
                          WHERE j.id = u.claim_job_id AND j.status = 'doing'))
    RETURNING u.id, u.project_id, u.url, u.status, u.attempts, u.etag, u.last_modified,
              u.content_hash, u.snapshot_key, u.text_key, u.crawl_id, u.crawl_depth, p.settings
    """
).bindparams(bindparam("ids", type_=ARRAY(PG_UUID(as_uuid=True))))


# The batch's URLs that still exist in a live project, locked until the batch is stored (a
# concurrent delete waits, then finds the chunks to delete).
_LOCK_LIVE = text(
    """
    SELECT u.id FROM urls u JOIN projects p ON p.id = u.project_id
    WHERE u.id = ANY(:ids) AND p.deleted_at IS NULL
    FOR UPDATE OF u
    """
).bindparams(bindparam("ids", type_=ARRAY(PG_UUID(as_uuid=True))))


async def _claim(url_ids: list[uuid.UUID], job_id: int | None) -> list[Claim]:
    async with transaction() as session:
        rows = await session.execute(
            _CLAIM, {"ids": url_ids, "job_id": job_id, "lease": fetch_settings.INGEST_LEASE_SECONDS}
        )
        return [Claim(**row._mapping) for row in rows]


@dataclass
class Prepared:
    """A fetched page, extracted and chunked, ready to store."""

    claim: Claim
    result: FetchResult
    body_hash: str
    extracted: Extracted
    drafts: list


_cpu_executor: ThreadPoolExecutor | None = None


def _cpu() -> ThreadPoolExecutor:
    """One thread per process for extraction and chunking where the event loop also serves
    the API (`projex serve`): pure-Python work that holds the GIL, so more threads would only
    take turns (and thrash the caches doing so)."""
    global _cpu_executor
    if _cpu_executor is None:
        _cpu_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="projex-cpu")
    return _cpu_executor


def _prepare(
    items: list[tuple[Claim, FetchResult, str]],
) -> list[Prepared | tuple[Claim, ExtractionError]]:
    """CPU work for a whole batch in one worker thread: extract and chunk."""
    out: list[Prepared | tuple[Claim, ExtractionError]] = []
    for claim, result, body_hash in items:
        try:
            extracted = extract(result.body, result.content_type, result.charset)
            settings = ProjectSettings.model_validate(claim.settings)
            drafts = chunk_document(
                extracted, chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap
            )
        except ExtractionError as exc:
            out.append((claim, exc))
            continue
        except Exception as exc:  # a parser bug on this page fails this page, not the batch
            log.exception("url.extract_crashed", url_id=claim.id, content_type=result.content_type)
            out.append((claim, ExtractionError("extraction_failed", _crash_message(exc))))
            continue
        out.append(Prepared(claim, result, body_hash, extracted, drafts))
    return out


def _crash_message(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


# A dedicated worker's loop is held at most this long by CPU work before it lets other jobs'
# fetches and queries through (then the next page starts a new slice).
CPU_SLICE_SECONDS = 0.05
# Pages that could hold the loop far longer than a slice (and its heartbeat past the stall
# timeout) go to the CPU thread even in a dedicated worker: PDFs (pypdf is slow) and bodies
# over 1 MiB (~40 ms of HTML extraction here; the manual's pages are 5-100 KB).
ON_LOOP_MAX_BYTES = 1024 * 1024


def _on_loop(item: tuple[Claim, FetchResult, str]) -> bool:
    result = item[1]
    return result.content_type != "application/pdf" and len(result.body) <= ON_LOOP_MAX_BYTES


async def _prepare_batch(
    items: list[tuple[Claim, FetchResult, str]],
) -> list[Prepared | tuple[Claim, ExtractionError]]:
    """Extract and chunk a batch: in a dedicated worker on the event loop, in slices of
    CPU_SLICE_SECONDS (a usual batch is one slice: yielding after every page measured 7%
    slower than running the batch through, bench/compare.py), heavy pages excepted; else in
    one hop to the CPU thread."""
    if not items:
        return []
    if cpu_on_loop():
        on_loop = [i for i in items if _on_loop(i)]
        heavy = [i for i in items if not _on_loop(i)]
    else:
        on_loop, heavy = [], items
    out: list[Prepared | tuple[Claim, ExtractionError]] = []
    if heavy:
        out += await asyncio.get_running_loop().run_in_executor(_cpu(), _prepare, heavy)
    slice_started = time.perf_counter()
    for item in on_loop:
        out += _prepare([item])
        if time.perf_counter() - slice_started >= CPU_SLICE_SECONDS:
            await asyncio.sleep(0)
            slice_started = time.perf_counter()
    return out


def _retry_delay(attempts: int, retry_after: float | None) -> float:
    wait = fetch_settings.INGEST_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1)
    if retry_after:
        wait = max(wait, min(retry_after, 3600))
    return wait


def _error_row(claim: Claim, error: FetchError | ExtractionError, *, final: bool) -> dict:
    status = (
        claim.status if claim.has_content else (UrlStatus.FAILED if final else UrlStatus.PENDING)
    )
    http_status = error.http_status if isinstance(error, FetchError) else None
    return {
        "b_id": claim.id,
        "status": status,
        "error_code": error.code,
        "error_message": error.message[:1000],
        "http_status": http_status,
    }


_URLS = Url.__table__
_ERROR_UPDATE = (
    update(_URLS)
    .where(_URLS.c.id == bindparam("b_id"))
    .values(
        status=bindparam("status"),
        error_code=bindparam("error_code"),
        error_message=bindparam("error_message"),
        http_status=func.coalesce(bindparam("http_status"), _URLS.c.http_status),
        fetched_at=func.now(),
        claim_job_id=None,
        lease_expires_at=None,
        status_changed_at=case(
            (_URLS.c.status != bindparam("status"), func.now()), else_=_URLS.c.status_changed_at
        ),
    )
)
_UNCHANGED_UPDATE = (
    update(_URLS)
    .where(_URLS.c.id == bindparam("b_id"))
    .values(
        fetched_at=func.now(),
        http_status=bindparam("http_status"),
        error_code=None,
        error_message=None,
        etag=bindparam("etag"),
        last_modified=bindparam("last_modified"),
        claim_job_id=None,
        lease_expires_at=None,
    )
)
# One statement for a whole batch (one array per column), not one UPDATE per URL.
_CHUNKED_COLUMNS = {
    "title": Text,
    "language": Text,
    "content_type": Text,
    "content_hash": Text,
    "etag": Text,
    "last_modified": Text,
    "http_status": Integer,
    "snapshot_key": Text,
    "text_key": Text,
}
_CHUNKED_UPDATE = text(
    f"""
    UPDATE urls u SET
      status = 'chunked', status_changed_at = now(), fetched_at = now(), ingested_at = now(),
      error_code = NULL, error_message = NULL, claim_job_id = NULL, lease_expires_at = NULL,
      {", ".join(f"{c} = d.{c}" for c in _CHUNKED_COLUMNS)}
    FROM unnest(:id, {", ".join(f":{c}" for c in _CHUNKED_COLUMNS)})
      AS d(id, {", ".join(_CHUNKED_COLUMNS)})
    WHERE u.id = d.id
    """  # noqa: S608  (column names are the constants above; values are bound)
).bindparams(
    bindparam("id", type_=ARRAY(PG_UUID(as_uuid=True))),
    *(bindparam(c, type_=ARRAY(t)) for c, t in _CHUNKED_COLUMNS.items()),
)


async def ingest_batch(
    url_ids: list[uuid.UUID], *, job_id: int | None = None
) -> dict[uuid.UUID, str]:
    """Ingest a batch of URLs: fetch concurrently, extract and chunk in one thread, store in
    one transaction. Returns each URL's outcome: chunked, unchanged, failed, retry, or skipped
    (deleted, deleted project, or being processed by another live job)."""
    outcomes: dict[uuid.UUID, str] = dict.fromkeys(url_ids, "skipped")
    claims = await _claim(url_ids, job_id)
    if not claims:
        return outcomes
    fetcher = get_fetcher()

    async def timed_fetch(c: Claim) -> FetchResult:
        started = time.perf_counter()
        try:
            return await fetcher.fetch(
                c.url,
                etag=c.etag if c.has_content else None,
                last_modified=c.last_modified if c.has_content else None,
            )
        finally:
            metrics.FETCH_LATENCY.observe(time.perf_counter() - started)

    fetched = await asyncio.gather(*(timed_fetch(c) for c in claims), return_exceptions=True)
    errors: list[dict] = []
    unchanged: list[dict] = []
    retries: list[tuple[uuid.UUID, float]] = []
    to_prepare: list[tuple[Claim, FetchResult, str]] = []
    for claim, result in zip(claims, fetched, strict=True):
        if isinstance(result, Exception) and not isinstance(result, FetchError):
            # A bug or an unforeseen failure on this URL's answer fails this URL (retried
            # like a transient error, then final), not the batch: the job retrying as a
            # whole would meet the same answer again and sink every URL beside it.
            log.exception("url.fetch_crashed", result, url_id=claim.id)
            result = FetchError("internal_error", _crash_message(result), transient=True)
        if isinstance(result, FetchError):
            final = not result.transient or claim.attempts >= fetch_settings.INGEST_MAX_ATTEMPTS
            errors.append(_error_row(claim, result, final=final))
            outcomes[claim.id] = "failed" if final else "retry"
            metrics.FETCHES.labels(result.code).inc()
            if not final:
                retries.append((claim.id, _retry_delay(claim.attempts, result.retry_after)))
            log.info(
                "url.fetch_failed",
                url_id=claim.id,
                code=result.code,
                attempt=claim.attempts,
                final=final,
            )
        elif isinstance(result, BaseException):
            raise result
        elif result.not_modified or (
            claim.has_content and hashlib.sha256(result.body).hexdigest() == claim.content_hash
        ):
            unchanged.append(
                {
                    "b_id": claim.id,
                    "http_status": result.status,
                    "etag": result.etag or claim.etag,
                    "last_modified": result.last_modified or claim.last_modified,
                }
            )
            outcomes[claim.id] = "unchanged"
            metrics.FETCHES.labels("unchanged").inc()
        else:
            to_prepare.append((claim, result, hashlib.sha256(result.body).hexdigest()))
            metrics.FETCHES.labels("ok").inc()

    prepared: list[Prepared] = []
    started = time.perf_counter()
    ready = await _prepare_batch(to_prepare)
    if to_prepare:
        metrics.EXTRACT_LATENCY.observe(time.perf_counter() - started)
    for item in ready:
        if isinstance(item, Prepared):
            prepared.append(item)
        else:
            claim, exc = item
            errors.append(_error_row(claim, exc, final=True))
            outcomes[claim.id] = "failed"

    store = storage.get_store()
    keys: dict[uuid.UUID, tuple[str, str]] = {}
    puts: list[tuple[str, bytes, str]] = []
    for p in prepared:
        prefix = urls_service.snapshot_prefix(p.claim.project_id, p.claim.id)
        keys[p.claim.id] = (f"{prefix}{p.body_hash}.raw", f"{prefix}{p.body_hash}.txt")
        puts.append((keys[p.claim.id][0], p.result.body, p.result.content_type))
        puts.append((keys[p.claim.id][1], p.extracted.text.encode(), "text/plain; charset=utf-8"))
    if puts:
        await store.put_many(puts)

    batch = _Batch(store, keys, outcomes)
    rows = _Rows(errors, unchanged, retries)
    try:
        prepared = await batch.write(claims, prepared, rows)
    except Exception as exc:
        if _refusal(exc) is None:
            raise
        log.exception("urls.store_refused", exc, urls=len(prepared), job_id=job_id)
        prepared = await batch.write_one_by_one(claims, prepared, rows)
    if prepared:
        log.info(
            "urls.chunked",
            urls=len(prepared),
            chunks=sum(len(p.drafts) for p in prepared),
            job_id=job_id,
        )
    return outcomes


@dataclass
class _Rows:
    """A batch's URL rows besides its stored pages: failed, unchanged, rescheduled."""

    errors: list[dict]
    unchanged: list[dict]
    retries: list[tuple[uuid.UUID, float]]


@dataclass
class _Batch:
    """Where a batch's pages go: the object store (their snapshots are already written, under
    `keys`) and the database; `outcomes` is the batch's answer, per URL."""

    objects: storage.ObjectStore
    keys: dict[uuid.UUID, tuple[str, str]]
    outcomes: dict[uuid.UUID, str]

    async def write(
        self, claims: list[Claim], prepared: list[Prepared], rows: _Rows
    ) -> list[Prepared]:
        """The batch's one store transaction: chunks, URL rows, retries and the embedding
        hand-off. Returns the pages stored (the others were deleted meanwhile)."""
        async with transaction() as session:
            live = set((await session.scalars(_LOCK_LIVE, {"ids": [c.id for c in claims]})).all())
            for p in [p for p in prepared if p.claim.id not in live]:
                prefix = urls_service.snapshot_prefix(p.claim.project_id, p.claim.id)
                after_commit(session, _deleter(self.objects, prefix))
                self.outcomes[p.claim.id] = "skipped"
            prepared = [p for p in prepared if p.claim.id in live]
            diff = await chunks_service.replace_chunks_many(
                session=session,
                items=[(p.claim.project_id, p.claim.id, p.drafts) for p in prepared],
            )
            metrics.CHUNKS_WRITTEN.inc(len(diff.inserted))
            if prepared:
                await session.execute(
                    _CHUNKED_UPDATE,
                    {
                        "id": [p.claim.id for p in prepared],
                        "title": [p.extracted.title for p in prepared],
                        "language": [p.extracted.language for p in prepared],
                        "content_type": [p.result.content_type for p in prepared],
                        "content_hash": [p.body_hash for p in prepared],
                        "etag": [p.result.etag for p in prepared],
                        "last_modified": [p.result.last_modified for p in prepared],
                        "http_status": [p.result.status for p in prepared],
                        "snapshot_key": [self.keys[p.claim.id][0] for p in prepared],
                        "text_key": [self.keys[p.claim.id][1] for p in prepared],
                    },
                )
            for statement, params in (
                (_UNCHANGED_UPDATE, rows.unchanged),
                (_ERROR_UPDATE, [e for e in rows.errors if e["b_id"] in live]),
            ):
                if params:
                    await session.execute(statement, params)
            for p in prepared:
                self.outcomes[p.claim.id] = "chunked"
                if p.claim.crawl_id is not None:
                    await _discover(session, p.claim, p.result, p.extracted)
                replaced = {p.claim.snapshot_key, p.claim.text_key} - {*self.keys[p.claim.id]}
                for old in replaced - {None}:
                    after_commit(session, _deleter(self.objects, old))
            for url_id, delay in rows.retries:
                if url_id in live:
                    urls_service.enqueue_ingest(session, [url_id], delay_seconds=delay)
            # Hand-off: the vectorization domain embeds the new chunks and marks the URLs ready.
            await vectorization_service.hand_off(session, [p.claim.id for p in prepared])
        return prepared

    async def write_one_by_one(
        self, claims: list[Claim], prepared: list[Prepared], rows: _Rows
    ) -> list[Prepared]:
        """After PostgreSQL refused a value in the batch (one no check here foresaw), which
        would fail the whole batch on every retry: the batch's other rows, then each page in
        its own transaction. A page refused on its own fails `store_refused`; its new
        objects go."""
        stored = await self.write(claims, [], rows)
        for p in prepared:
            try:
                stored += await self.write([p.claim], [p], _Rows([], [], []))
            except Exception as exc:
                message = _refusal(exc)
                if message is None:
                    raise
                log.exception("url.store_refused", exc, url_id=p.claim.id)
                error = ExtractionError(
                    "store_refused", f"the database refused the page: {message}"
                )
                failed = _Rows([_error_row(p.claim, error, final=True)], [], [])
                await self.write([p.claim], [], failed)
                self.outcomes[p.claim.id] = "failed"
                for key in set(self.keys[p.claim.id]) - {p.claim.snapshot_key, p.claim.text_key}:
                    await self.objects.delete_prefix(key)
        return stored


def _refusal(exc: BaseException) -> str | None:
    """PostgreSQL's message when `exc` is its refusal of a value (SQLSTATE class 22, a data
    exception such as a NUL in text; 54, a program limit such as a tsvector over 1 MB),
    else None. The same data is refused on every retry."""
    chain: list[BaseException] = []
    error: BaseException | None = exc
    while error is not None and len(chain) < 8:  # ours ← SQLAlchemy's ← the driver's
        chain.append(error)
        error = getattr(error, "orig", None) or error.__cause__
    for error in reversed(chain):  # the driver's own message first
        state = getattr(error, "sqlstate", None)
        if isinstance(state, str) and state[:2] in ("22", "54"):
            return f"{state} {getattr(error, 'message', None) or error}"[:300]
    return None


async def ingest_url(url_id: uuid.UUID, *, job_id: int | None = None) -> str:
    """One URL (refetches, tests): the same path as a batch of one."""
    return (await ingest_batch([url_id], job_id=job_id))[url_id]


def _deleter(store: storage.ObjectStore, key: str):
    async def delete() -> None:
        await store.delete_prefix(key)

    return delete


# --- crawls --------------------------------------------------------------------------------


def _site(host: str) -> str:
    return host.lower().removeprefix("www.")


def _in_scope(url: str, origin_host: str, params: dict[str, Any]) -> bool:
    parts = urlsplit(url)
    if params.get("same_site", True) and _site(parts.hostname or "") != _site(origin_host):
        return False
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    include = params.get("include") or []
    if include and not any(
        fnmatch.fnmatchcase(target, g) or fnmatch.fnmatchcase(url, g) for g in include
    ):
        return False
    return not any(
        fnmatch.fnmatchcase(target, g) or fnmatch.fnmatchcase(url, g)
        for g in params.get("exclude") or []
    )


def _candidates(raw: list[str], base: str, origin_host: str, params: dict[str, Any]) -> list[str]:
    seen: dict[str, None] = {}
    for href in raw:
        if href.startswith(("mailto:", "javascript:", "tel:", "#", "data:")):
            continue
        try:
            url = normalise_url(urljoin(base, href))
        except UrlRejected:
            continue
        if _in_scope(url, origin_host, params):
            seen.setdefault(url, None)
    return list(seen)


# Which of a page's (or a sitemap's) links the project has: one array parameter, however many
# links (an IN list binds one parameter each, and asyncpg stops at 32,767).
_KNOWN = text(
    "SELECT url FROM urls WHERE project_id = :project_id AND url = ANY(:urls)"
).bindparams(bindparam("urls", type_=ARRAY(Text)))
# Links read from one crawled page: more than any real index page has, and a bound on the
# work (normalising, matching globs) one hostile page can cost.
MAX_LINKS_PER_PAGE = 10_000


async def _add_to_crawl(session: AsyncSession, crawl: Crawl, urls: list[str], depth: int) -> int:
    """Intake up to the crawl's remaining page budget; returns how many were created."""
    remaining = int(crawl.params["max_pages"]) - crawl.urls_added
    if remaining <= 0 or not urls:
        return 0
    known = set(
        (await session.scalars(_KNOWN, {"project_id": crawl.project_id, "urls": urls})).all()
    )
    fresh = [u for u in urls if u not in known][:remaining]
    results = await urls_service.intake(
        session=session,
        project_id=crawl.project_id,
        raw_urls=fresh,
        source=UrlSource.CRAWL,
        crawl_id=crawl.id,
        crawl_depth=depth,
    )
    created = sum(r.result == "created" for r in results)
    crawl.urls_added += created
    crawl.duplicates += len(known) + sum(r.result == "duplicate" for r in results)
    crawl.rejected += sum(r.result == "rejected" for r in results)
    return created


async def _discover(
    session: AsyncSession, claim: Claim, result: FetchResult, extracted: Extracted
) -> None:
    crawl = await session.scalar(select(Crawl).where(Crawl.id == claim.crawl_id).with_for_update())
    if crawl is None:
        return
    crawl.pages_seen += 1
    depth = claim.crawl_depth or 0
    if depth >= int(crawl.params["max_depth"]) or not extracted.links:
        return
    origin = urlsplit(crawl.start_url or result.url).hostname or ""
    base = urljoin(result.url, extracted.base_url) if extracted.base_url else result.url
    await _add_to_crawl(
        session,
        crawl,
        _candidates(extracted.links[:MAX_LINKS_PER_PAGE], base, origin, crawl.params),
        depth + 1,
    )


MAX_SITEMAPS = 100
SITEMAP_MAX_UNZIPPED = 50 * 1024 * 1024


def parse_sitemap(body: bytes) -> tuple[list[str], list[str]]:
    """(page URLs, child sitemap URLs). Gzip accepted; entities and network never resolved."""
    if body[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(body)) as handle:
                body = handle.read(SITEMAP_MAX_UNZIPPED + 1)
        except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
            raise ExtractionError("unparsable", f"sitemap gzip is corrupt: {exc}") from exc
        if len(body) > SITEMAP_MAX_UNZIPPED:
            raise ExtractionError("too_large", "sitemap too large once decompressed")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=True)
    try:
        root = etree.fromstring(body, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise ExtractionError("unparsable", f"sitemap is not XML: {exc}") from exc
    if root is None:
        raise ExtractionError("unparsable", "sitemap is empty")
    name = etree.QName(root).localname
    locs = [(el.text or "").strip() for el in root.iter("{*}loc")]
    locs = [loc for loc in locs if loc]
    return ([], locs) if name == "sitemapindex" else (locs, [])


async def run_crawl(crawl_id: uuid.UUID) -> str:
    async with transaction() as session:
        crawl = await session.scalar(
            select(Crawl)
            .join(Project, Project.id == Crawl.project_id)
            .where(Crawl.id == crawl_id, Project.deleted_at.is_(None))
        )
        if crawl is None or crawl.status != CrawlStatus.QUEUED:
            return "skipped"
        crawl.status = CrawlStatus.RUNNING
        crawl.started_at = text("now()")
        start_url, sitemap_url, params = crawl.start_url, crawl.sitemap_url, dict(crawl.params)
    try:
        if start_url:
            await _seed_start(crawl_id, start_url)
        else:
            await _seed_sitemap(crawl_id, sitemap_url or "", params)
    except (FetchError, ExtractionError, UrlRejected) as exc:
        await _fail_crawl(crawl_id, getattr(exc, "message", str(exc)))
        return "failed"
    except Exception as exc:
        # Anything else (a bug, a sitemap no parser expected) fails the crawl visibly: a retry
        # of this job would find it `running` and skip it, leaving it so for good.
        log.exception("crawl.crashed", crawl_id=crawl_id)
        await _fail_crawl(crawl_id, f"internal error: {_crash_message(exc)}")
        return "failed"
    return "seeded"


async def _fail_crawl(crawl_id: uuid.UUID, message: str) -> None:
    async with transaction() as session:
        await session.execute(
            update(Crawl)
            .where(Crawl.id == crawl_id)
            .values(
                status=CrawlStatus.FAILED,
                error_message=message[:1000],
                finished_at=text("now()"),
            )
        )


async def _seed_start(crawl_id: uuid.UUID, start_url: str) -> None:
    url = normalise_url(start_url)
    async with transaction() as session:
        crawl = await session.scalar(select(Crawl).where(Crawl.id == crawl_id).with_for_update())
        if crawl is None:
            return
        if await _add_to_crawl(session, crawl, [url], 0) == 0:
            # Already in the project: adopt it so its links are followed, and fetch it again.
            url_id = await session.scalar(
                update(Url)
                .where(Url.project_id == crawl.project_id, Url.url == url)
                .values(crawl_id=crawl.id, crawl_depth=0)
                .returning(Url.id)
            )
            if url_id is not None:
                urls_service.enqueue_ingest(session, [url_id])


async def _seed_sitemap(crawl_id: uuid.UUID, sitemap_url: str, params: dict[str, Any]) -> None:
    fetcher = get_fetcher()
    origin = urlsplit(sitemap_url).hostname or ""
    queue, seen, pages = [normalise_url(sitemap_url)], set(), []
    while queue and len(seen) < MAX_SITEMAPS and len(pages) < int(params["max_pages"]):
        current = queue.pop(0)
        if current in seen:
            continue
        seen.add(current)
        result = await fetcher.fetch(current, accept=SITEMAP_TYPES)
        found, children = parse_sitemap(result.body)
        pages.extend(_candidates(found, current, origin, params))
        queue.extend(
            _candidates(children, current, origin, {**params, "include": [], "exclude": []})
        )
    async with transaction() as session:
        crawl = await session.scalar(select(Crawl).where(Crawl.id == crawl_id).with_for_update())
        if crawl is not None:
            # Sitemap pages are leaves: their links are not followed.
            await _add_to_crawl(
                session, crawl, list(dict.fromkeys(pages)), int(params["max_depth"])
            )


# --- reconciler, re-crawls, purge ------------------------------------------------------------


_STUCK = text(
    """
    UPDATE urls u SET status_changed_at = now()
    FROM projects p
    WHERE p.id = u.project_id AND p.deleted_at IS NULL
      AND u.status IN ('pending', 'fetching')
      AND u.status_changed_at < now() - make_interval(secs => :stuck)
      AND (u.lease_expires_at IS NULL OR u.lease_expires_at < now()
           OR NOT EXISTS (SELECT 1 FROM procrastinate_jobs j
                          WHERE j.id = u.claim_job_id AND j.status = 'doing'))
      AND NOT EXISTS (
        SELECT 1 FROM procrastinate_jobs j
        WHERE j.task_name = 'urls:ingest_urls' AND j.status IN ('todo', 'doing')
          AND j.args -> 'url_ids' ? u.id::text)
      AND u.id IN (SELECT id FROM urls WHERE status IN ('pending', 'fetching')
                   ORDER BY status_changed_at LIMIT :batch)
    RETURNING u.id
    """
)


async def reconcile(batch: int = 1000) -> int:
    """Re-queue URLs stuck in pending/fetching with no live job (lost enqueue, dead worker)."""
    async with transaction() as session:
        ids = list(
            (
                await session.scalars(
                    _STUCK, {"stuck": fetch_settings.RECONCILE_STUCK_AFTER_SECONDS, "batch": batch}
                )
            ).all()
        )
        urls_service.enqueue_ingest(session, ids)
    if ids:
        log.warning("reconcile.requeued", urls=len(ids))
    return len(ids)


_DUE = text(
    """
    SELECT u.id FROM urls u JOIN projects p ON p.id = u.project_id
    WHERE p.deleted_at IS NULL
      AND (p.settings ->> 'recrawl_interval_hours') IS NOT NULL
      AND u.status IN ('chunked', 'ready', 'failed')
      AND u.fetched_at
          < now() - make_interval(hours => (p.settings ->> 'recrawl_interval_hours')::int)
      AND u.claim_job_id IS NULL
    ORDER BY u.fetched_at LIMIT :batch
    """
)


async def recrawl_due(batch: int = 5000) -> int:
    """Queue conditional re-fetches of pages older than their project's recrawl interval."""
    async with transaction() as session:
        ids = list((await session.scalars(_DUE, {"batch": batch})).all())
        urls_service.enqueue_ingest(session, ids)
    return len(ids)


async def purge_deleted_projects() -> int:
    """Delete, for good, projects soft-deleted longer ago than the retention, and their objects."""
    async with transaction() as session:
        ids = list(
            (
                await session.scalars(
                    text(
                        "SELECT id FROM projects"
                        " WHERE deleted_at < now() - make_interval(hours => :h) LIMIT 100"
                    ),
                    {"h": projects_settings.PROJECT_PURGE_AFTER_HOURS},
                )
            ).all()
        )
    store = storage.get_store()
    for project_id in ids:
        await store.delete_prefix(f"projects/{project_id}/")
        async with transaction() as session:
            await session.execute(text("DELETE FROM projects WHERE id = :id"), {"id": project_id})
        log.info("project.purged", project_id=project_id)
    return len(ids)
