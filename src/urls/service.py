"""URL intake and reads (API side). The worker side lives in pipeline.py. Never commits."""

import uuid
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    Text,
    bindparam,
    delete,
    func,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession

from src.aws import service as storage
from src.database import escape_like
from src.pagination import LimitOffset, Page
from src.projects.schemas import ProjectSettings
from src.projects.service import ProjectAccess
from src.urls.config import fetch_settings
from src.urls.constants import CrawlStatus, UrlSource, UrlStatus
from src.urls.exceptions import CrawlNotFound, NotFetchable, SnapshotNotFound, UrlNotFound
from src.urls.models import Crawl, Url
from src.urls.schemas import (
    CrawlCounts,
    CrawlCreate,
    CrawlRead,
    UrlBatchResult,
    UrlIntakeResult,
    UrlListParams,
    UrlRead,
)
from src.urls.utils import UrlRejected, check_intake
from src.worker import after_commit, defer_after_commit, defer_many_after_commit

INGEST_TASK = "urls:ingest_urls"
FETCHED_SOURCES = (UrlSource.API.value, UrlSource.CRAWL.value)
CRAWL_TASK = "urls:run_crawl"


def url_lock(url_id: uuid.UUID) -> str:
    return f"url:{url_id}"


def snapshot_prefix(project_id: uuid.UUID, url_id: uuid.UUID) -> str:
    """Every object of a URL starts with this: `<prefix><content hash>.raw|.txt`. One flat
    folder per project (no directory per URL: creating one cost the file store more than
    writing both files)."""
    return f"projects/{project_id}/urls/{url_id}."


def enqueue_ingest(
    session: AsyncSession, url_ids: list[uuid.UUID], *, delay_seconds: float | None = None
) -> None:
    """Queue ingestion after commit, in batches of INGEST_BATCH_SIZE URLs per job (a batch
    shares its round trips to the database). A single URL's job carries a queueing lock, so
    repeated refetch clicks queue it once; the row lease makes one active ingestion per URL."""
    size = fetch_settings.INGEST_BATCH_SIZE
    jobs = []
    for i in range(0, len(url_ids), size):
        batch = url_ids[i : i + size]
        lock = url_lock(batch[0]) if len(batch) == 1 else None
        jobs.append((lock, {"url_ids": [str(u) for u in batch]}))
    defer_many_after_commit(session, INGEST_TASK, jobs, delay_seconds=delay_seconds)


# One array parameter for any number of URLs: a statement compiled and prepared once, not a
# VALUES list of 5 × N parameters compiled on every request.
_INSERT_URLS = text(
    """
    INSERT INTO urls (project_id, url, source, crawl_id, crawl_depth)
    SELECT :project_id, u, :source, :crawl_id, :crawl_depth FROM unnest(:urls) AS u
    ON CONFLICT ON CONSTRAINT uq_urls_project_id_url DO NOTHING
    RETURNING id, url
    """
).bindparams(
    bindparam("project_id", type_=PG_UUID(as_uuid=True)),
    bindparam("urls", type_=ARRAY(Text)),
    bindparam("crawl_id", type_=PG_UUID(as_uuid=True)),
    bindparam("crawl_depth", type_=Integer),
)


async def intake(
    *,
    session: AsyncSession,
    project_id: uuid.UUID,
    raw_urls: list[str],
    source: UrlSource = UrlSource.API,
    crawl_id: uuid.UUID | None = None,
    crawl_depth: int | None = None,
) -> list[UrlIntakeResult]:
    """Normalise, refuse, dedupe and insert; one result per input, in order. New rows are
    queued for ingestion after commit. One bad item never sinks the batch."""
    results: list[UrlIntakeResult] = []
    first_seen: dict[str, int] = {}
    for raw in raw_urls:
        try:
            url = check_intake(raw, fetch_settings.FETCH_ALLOWED_NETWORKS)
        except UrlRejected as exc:
            results.append(
                UrlIntakeResult(input=raw, result="rejected", reason=exc.code, detail=exc.message)
            )
            continue
        results.append(UrlIntakeResult(input=raw, result="created", url=url))
        first_seen.setdefault(url, len(results) - 1)
    fresh = list(first_seen)
    created: dict[str, uuid.UUID] = {}
    if fresh:
        rows = await session.execute(
            _INSERT_URLS,
            {
                "project_id": project_id,
                "urls": fresh,
                "source": source.value,
                "crawl_id": crawl_id,
                "crawl_depth": crawl_depth,
            },
        )
        created = {row.url: row.id for row in rows}
    missing = [u for u in fresh if u not in created]
    existing: dict[str, uuid.UUID] = {}
    if missing:
        rows = await session.execute(
            select(Url.url, Url.id).where(Url.project_id == project_id, Url.url.in_(missing))
        )
        existing = {row.url: row.id for row in rows}
    for index, item in enumerate(results):
        if item.result == "rejected" or item.url is None:
            continue
        if first_seen[item.url] == index and item.url in created:
            item.id = created[item.url]
        else:
            item.result = "duplicate"
            item.id = created.get(item.url) or existing.get(item.url)
    enqueue_ingest(session, list(created.values()))
    return results


async def add_urls(
    *, session: AsyncSession, access: ProjectAccess, raw_urls: list[str]
) -> UrlBatchResult:
    items = await intake(session=session, project_id=access.project.id, raw_urls=raw_urls)
    return UrlBatchResult(
        created=sum(i.result == "created" for i in items),
        duplicates=sum(i.result == "duplicate" for i in items),
        rejected=sum(i.result == "rejected" for i in items),
        items=items,
    )


def _with_chunk_count(*filters: Any) -> Select:
    """URL rows with their chunk count (a column the database keeps, migration 0009), read as
    a column of the row so a session that loaded the URL earlier cannot serve a stale one."""
    return select(Url, Url.chunk_count.label("chunk_count")).where(*filters)


def _read(row: Any) -> UrlRead:
    url: Url = row[0]
    return UrlRead.model_validate(
        {
            **{c.key: getattr(url, c.key) for c in Url.__table__.columns},
            "chunk_count": row.chunk_count,
        }
    )


async def list_urls(
    *, session: AsyncSession, access: ProjectAccess, params: UrlListParams, page: LimitOffset
) -> Page[UrlRead]:
    filters = [Url.project_id == access.project.id]
    if params.status is not None:
        filters.append(Url.status == params.status.value)
    if params.q:
        like = f"%{escape_like(params.q)}%"
        filters.append(or_(Url.url.ilike(like), Url.title.ilike(like)))
    total = await session.scalar(select(func.count()).select_from(Url).where(*filters))
    rows = await session.execute(
        _with_chunk_count(*filters)
        .order_by(Url.created_at.desc(), Url.id)
        .limit(page.limit)
        .offset(page.offset)
    )
    return Page(
        items=[_read(r) for r in rows], total=total or 0, limit=page.limit, offset=page.offset
    )


async def get_url(*, session: AsyncSession, access: ProjectAccess, url_id: uuid.UUID) -> UrlRead:
    row = (
        await session.execute(
            _with_chunk_count(Url.project_id == access.project.id, Url.id == url_id)
        )
    ).one_or_none()
    if row is None:
        raise UrlNotFound()
    return _read(row)


async def delete_url(*, session: AsyncSession, access: ProjectAccess, url_id: uuid.UUID) -> None:
    """Removes the URL, its chunks (cascade) and, after commit, its snapshots."""
    deleted = await session.scalar(
        delete(Url).where(Url.id == url_id, Url.project_id == access.project.id).returning(Url.id)
    )
    if deleted is None:
        raise UrlNotFound()
    prefix = snapshot_prefix(access.project.id, url_id)

    async def remove_objects() -> None:
        await storage.get_store().delete_prefix(prefix)

    after_commit(session, remove_objects)


async def refetch_url(
    *, session: AsyncSession, access: ProjectAccess, url_id: uuid.UUID
) -> UrlRead:
    """Queue a fetch now. A page that did not change keeps its status and costs no re-chunking.
    Pushed documents and vectors have nothing to fetch (409 `not_fetchable`)."""
    source = await session.scalar(
        select(Url.source).where(Url.id == url_id, Url.project_id == access.project.id)
    )
    if source is None:
        raise UrlNotFound()
    if source not in FETCHED_SOURCES:
        raise NotFetchable()
    await session.execute(
        update(Url).where(Url.id == url_id).values(error_code=None, error_message=None)
    )
    enqueue_ingest(session, [url_id])
    return await get_url(session=session, access=access, url_id=url_id)


async def snapshot_location(
    *, session: AsyncSession, access: ProjectAccess, url_id: uuid.UUID
) -> tuple[str, str]:
    """(object key, content type) of the latest raw snapshot."""
    row = (
        await session.execute(
            select(Url.snapshot_key, Url.content_type).where(
                Url.id == url_id, Url.project_id == access.project.id
            )
        )
    ).one_or_none()
    if row is None:
        raise UrlNotFound()
    if row.snapshot_key is None:
        raise SnapshotNotFound()
    return row.snapshot_key, row.content_type or "application/octet-stream"


# --- crawls --------------------------------------------------------------------------------


async def create_crawl(
    *, session: AsyncSession, access: ProjectAccess, data: CrawlCreate
) -> CrawlRead:
    defaults = ProjectSettings.model_validate(access.project.settings).crawl
    params = {
        "max_depth": data.max_depth if data.max_depth is not None else defaults.max_depth,
        "max_pages": data.max_pages if data.max_pages is not None else defaults.max_pages,
        "same_site": data.same_site if data.same_site is not None else defaults.same_site,
        "include": data.include if data.include is not None else defaults.include,
        "exclude": data.exclude if data.exclude is not None else defaults.exclude,
    }
    crawl = Crawl(
        project_id=access.project.id,
        created_by=access.principal.user_id,
        start_url=str(data.start_url) if data.start_url else None,
        sitemap_url=str(data.sitemap_url) if data.sitemap_url else None,
        params=params,
        status=CrawlStatus.QUEUED.value,
    )
    session.add(crawl)
    await session.flush()
    defer_after_commit(
        session, CRAWL_TASK, queueing_lock=f"crawl:{crawl.id}", crawl_id=str(crawl.id)
    )
    return await get_crawl(session=session, access=access, crawl_id=crawl.id)


async def get_crawl(
    *, session: AsyncSession, access: ProjectAccess, crawl_id: uuid.UUID
) -> CrawlRead:
    counts = (
        select(*[func.count().filter(Url.status == s.value).label(s.value) for s in UrlStatus])
        .where(Url.crawl_id == Crawl.id)
        .lateral("counts")
    )
    row = (
        await session.execute(
            select(Crawl, counts)
            .join(counts, true())
            .where(Crawl.id == crawl_id, Crawl.project_id == access.project.id)
        )
    ).one_or_none()
    if row is None:
        raise CrawlNotFound()
    crawl: Crawl = row.Crawl
    url_counts = CrawlCounts(**{s.value: getattr(row, s.value) for s in UrlStatus})
    status = CrawlStatus(crawl.status)
    if status == CrawlStatus.RUNNING and url_counts.pending + url_counts.fetching == 0:
        status = CrawlStatus.SUCCEEDED  # seeded, and every discovered page has been processed
    return CrawlRead(
        id=crawl.id,
        project_id=crawl.project_id,
        start_url=crawl.start_url,
        sitemap_url=crawl.sitemap_url,
        params=crawl.params,
        status=status,
        urls_added=crawl.urls_added,
        duplicates=crawl.duplicates,
        rejected=crawl.rejected,
        pages_seen=crawl.pages_seen,
        error_message=crawl.error_message,
        urls=url_counts,
        created_at=crawl.created_at,
        started_at=crawl.started_at,
        finished_at=crawl.finished_at,
    )
