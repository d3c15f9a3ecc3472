"""The worker side of ingestion: fetch → snapshot → extract → chunk → hand-off, plus crawl
seeding, link discovery, re-crawls, the reconciler and the purge of deleted projects.

Every step is idempotent: a job killed anywhere and run again ends with one set of chunks.
Network and CPU work happen outside database transactions.
"""

import asyncio
import fnmatch
import gzip
import hashlib
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from lxml import etree
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from src.aws import service as storage
from src.chunks import service as chunks_service
from src.chunks.chunker import chunk_document
from src.database import transaction
from src.log import get_logger
from src.projects.config import projects_settings
from src.projects.models import Project
from src.projects.schemas import ProjectSettings
from src.urls import service as urls_service
from src.urls.config import fetch_settings
from src.urls.constants import CrawlStatus, UrlSource, UrlStatus
from src.urls.extract import Extracted, ExtractionError, extract
from src.urls.fetcher import SITEMAP_TYPES, FetchError, FetchResult, SafeFetcher
from src.urls.models import Crawl, Url
from src.urls.utils import UrlRejected, normalise_url
from src.worker import after_commit

log = get_logger(__name__)

_fetcher: SafeFetcher | None = None


def get_fetcher() -> SafeFetcher:
    global _fetcher
    if _fetcher is None:
        _fetcher = SafeFetcher(fetch_settings)
    return _fetcher


class TransientIngestError(Exception):
    """Raised to make the queue retry the job later (with backoff)."""

    def __init__(self, error: FetchError) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry_after = error.retry_after


@dataclass
class Claim:
    id: uuid.UUID
    project_id: uuid.UUID
    url: str
    status: str
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


_CLAIM = text(
    """
    UPDATE urls u SET
      status = CASE WHEN u.status IN ('chunked', 'ready') THEN u.status ELSE 'fetching' END,
      status_changed_at = CASE WHEN u.status IN ('chunked', 'ready') THEN u.status_changed_at
                               ELSE now() END,
      attempts = :attempt
    FROM projects p
    WHERE u.id = :id AND p.id = u.project_id AND p.deleted_at IS NULL
    RETURNING u.id, u.project_id, u.url, u.status, u.etag, u.last_modified, u.content_hash,
              u.snapshot_key, u.text_key, u.crawl_id, u.crawl_depth, p.settings
    """
)


async def _claim(url_id: uuid.UUID, attempt: int) -> Claim | None:
    async with transaction() as session:
        row = (await session.execute(_CLAIM, {"id": url_id, "attempt": attempt})).one_or_none()
    return Claim(**row._mapping) if row is not None else None


async def _set(url_id: uuid.UUID, **values: Any) -> None:
    async with transaction() as session:
        await session.execute(update(Url).where(Url.id == url_id).values(**values))


def _error_values(claim: Claim, error: FetchError | ExtractionError, *, final: bool) -> dict:
    keep = claim.has_content
    status = claim.status if keep else (UrlStatus.FAILED if final else UrlStatus.PENDING)
    values: dict[str, Any] = {
        "status": status,
        "error_code": error.code,
        "error_message": error.message[:1000],
        "fetched_at": text("now()"),
    }
    if status != claim.status:
        values["status_changed_at"] = text("now()")
    if isinstance(error, FetchError) and error.http_status is not None:
        values["http_status"] = error.http_status
    return values


async def ingest_url(url_id: uuid.UUID, *, attempt: int = 1, max_attempts: int = 1) -> str:
    """Run one ingestion of a URL; returns the outcome (for logs and tests)."""
    claim = await _claim(url_id, attempt)
    if claim is None:
        return "gone"  # deleted URL or deleted project: the job stops here
    fetcher = get_fetcher()
    try:
        result = await fetcher.fetch(
            claim.url,
            etag=claim.etag if claim.has_content else None,
            last_modified=claim.last_modified if claim.has_content else None,
        )
    except FetchError as exc:
        final = not exc.transient or attempt >= max_attempts
        await _set(url_id, **_error_values(claim, exc, final=final))
        log.info("url.fetch_failed", url_id=url_id, code=exc.code, attempt=attempt, final=final)
        if not final:
            raise TransientIngestError(exc) from exc
        return "failed"

    body_hash = hashlib.sha256(result.body).hexdigest() if not result.not_modified else None
    if result.not_modified or (claim.has_content and body_hash == claim.content_hash):
        await _set(
            url_id,
            fetched_at=text("now()"),
            http_status=result.status,
            error_code=None,
            error_message=None,
            etag=result.etag or claim.etag,
            last_modified=result.last_modified or claim.last_modified,
        )
        log.info("url.unchanged", url_id=url_id, status=result.status)
        return "unchanged"

    try:
        extracted = await asyncio.to_thread(
            extract, result.body, result.content_type, result.charset
        )
    except ExtractionError as exc:
        await _set(url_id, **_error_values(claim, exc, final=True))
        return "failed"
    settings = ProjectSettings.model_validate(claim.settings)
    drafts = await asyncio.to_thread(
        chunk_document,
        extracted,
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
    )

    prefix = urls_service.snapshot_prefix(claim.project_id, claim.id)
    snapshot_key, text_key = f"{prefix}{body_hash}.raw", f"{prefix}{body_hash}.txt"
    store = storage.get_store()
    await asyncio.gather(
        store.put(snapshot_key, result.body, result.content_type),
        store.put(text_key, extracted.text.encode(), "text/plain; charset=utf-8"),
    )

    async with transaction() as session:
        live = await session.scalar(
            select(Url.id)
            .join(Project, Project.id == Url.project_id)
            .where(Url.id == url_id, Project.deleted_at.is_(None))
            .with_for_update(of=Url)
        )
        if live is None:
            after_commit(session, lambda: store.delete_prefix(prefix))
            return "gone"
        diff = await chunks_service.replace_chunks(
            session=session, project_id=claim.project_id, url_id=url_id, drafts=drafts
        )
        await session.execute(
            update(Url)
            .where(Url.id == url_id)
            .values(
                status=UrlStatus.CHUNKED,
                status_changed_at=text("now()"),
                title=extracted.title,
                language=extracted.language,
                content_type=result.content_type,
                content_hash=body_hash,
                etag=result.etag,
                last_modified=result.last_modified,
                http_status=result.status,
                fetched_at=text("now()"),
                ingested_at=text("now()"),
                snapshot_key=snapshot_key,
                text_key=text_key,
                error_code=None,
                error_message=None,
            )
        )
        if claim.crawl_id is not None:
            await _discover(session, claim, result, extracted)
        for old in {claim.snapshot_key, claim.text_key} - {snapshot_key, text_key, None}:
            after_commit(session, _deleter(store, old))
        # Hand-off point: embeddings are computed by the vectorization domain from here.
    log.info(
        "url.chunked",
        url_id=url_id,
        chunks=len(drafts),
        kept=diff.kept,
        inserted=len(diff.inserted),
        deleted=diff.deleted,
        bytes=len(result.body),
    )
    return "chunked"


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


async def _add_to_crawl(session: AsyncSession, crawl: Crawl, urls: list[str], depth: int) -> int:
    """Intake up to the crawl's remaining page budget; returns how many were created."""
    remaining = int(crawl.params["max_pages"]) - crawl.urls_added
    if remaining <= 0 or not urls:
        return 0
    known = set(
        (
            await session.scalars(
                select(Url.url).where(Url.project_id == crawl.project_id, Url.url.in_(urls))
            )
        ).all()
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
        session, crawl, _candidates(extracted.links, base, origin, crawl.params), depth + 1
    )


MAX_SITEMAPS = 100
SITEMAP_MAX_UNZIPPED = 50 * 1024 * 1024


def parse_sitemap(body: bytes) -> tuple[list[str], list[str]]:
    """(page URLs, child sitemap URLs). Gzip accepted; entities and network never resolved."""
    if body[:2] == b"\x1f\x8b":
        with gzip.GzipFile(fileobj=__import__("io").BytesIO(body)) as handle:
            body = handle.read(SITEMAP_MAX_UNZIPPED + 1)
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
        message = getattr(exc, "message", str(exc))
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
        return "failed"
    return "seeded"


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
      AND NOT EXISTS (
        SELECT 1 FROM procrastinate_jobs j
        WHERE j.lock = 'url:' || u.id::text AND j.status IN ('todo', 'doing'))
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
      AND NOT EXISTS (
        SELECT 1 FROM procrastinate_jobs j
        WHERE j.lock = 'url:' || u.id::text AND j.status IN ('todo', 'doing'))
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
