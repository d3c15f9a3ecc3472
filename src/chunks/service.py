"""Chunk storage (diffed by content hash, so unchanged chunks keep their ids) and reads."""

import uuid
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Select, bindparam, delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession

from src.chunks.chunker import ChunkDraft
from src.chunks.exceptions import ChunkNotFound
from src.chunks.models import Chunk
from src.chunks.schemas import ChunkListParams, ChunkRead
from src.pagination import LimitOffset, Page
from src.urls.models import Url


@dataclass
class ChunkDiff:
    kept: int
    inserted: list[uuid.UUID]
    deleted: int


COPY_THRESHOLD = 32  # rows; below it one multi-row INSERT beats COPY's extra round trip
# The column order of a binary COPY into `chunks` (bench scripts write rows in it too).
COPY_COLUMNS = [
    "id",
    "project_id",
    "url_id",
    "ordinal",
    "text",
    "headings",
    "char_start",
    "char_end",
    "token_count",
    "content_hash",
]


# The URLs whose chunks are replaced, locked in id order before their chunks are read: a
# concurrent replace of the same URL (two pushes of one document) waits and then reads what
# the first one wrote, instead of adding its chunks beside them. A no-op in the pipeline,
# whose store transaction has them locked already.
_LOCK_URLS = text("SELECT id FROM urls WHERE id = ANY(:url_ids) ORDER BY id FOR UPDATE").bindparams(
    bindparam("url_ids", type_=ARRAY(PG_UUID(as_uuid=True)))
)
_EXISTING = text(
    "SELECT url_id, id, content_hash FROM chunks WHERE url_id = ANY(:url_ids)"
    " ORDER BY url_id, ordinal"
).bindparams(bindparam("url_ids", type_=ARRAY(PG_UUID(as_uuid=True))))


async def _copy_chunks(session: AsyncSession, rows: list[dict]) -> None:
    """Binary COPY for large batches, inside the session's transaction."""
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    if not driver.is_in_transaction():  # the adapter begins its transaction lazily
        await connection.exec_driver_sql("SELECT 1")
    await driver.copy_records_to_table(
        "chunks", columns=COPY_COLUMNS, records=[tuple(r[c] for c in COPY_COLUMNS) for r in rows]
    )


async def replace_chunks(
    *, session: AsyncSession, project_id: uuid.UUID, url_id: uuid.UUID, drafts: list[ChunkDraft]
) -> ChunkDiff:
    return await replace_chunks_many(session=session, items=[(project_id, url_id, drafts)])


async def replace_chunks_many(
    *, session: AsyncSession, items: list[tuple[uuid.UUID, uuid.UUID, list[ChunkDraft]]]
) -> ChunkDiff:
    """Make each URL's chunks equal its drafts: same-hash chunks are kept (ordinal and
    offsets updated), new ones inserted, the rest deleted. Five statements for any batch."""
    if not items:
        return ChunkDiff(kept=0, inserted=[], deleted=0)
    url_ids = [url_id for _, url_id, _ in items]
    await session.execute(_LOCK_URLS, {"url_ids": url_ids})
    existing = await session.execute(_EXISTING, {"url_ids": url_ids})
    by_url: dict[uuid.UUID, dict[str, list[uuid.UUID]]] = defaultdict(lambda: defaultdict(list))
    for row in existing:
        by_url[row.url_id][row.content_hash].append(row.id)
    updates, inserts = [], []
    for project_id, url_id, drafts in items:
        by_hash = by_url[url_id]
        for draft in drafts:
            fields = {
                "ordinal": draft.ordinal,
                "headings": draft.headings,
                "char_start": draft.char_start,
                "char_end": draft.char_end,
            }
            if by_hash.get(draft.content_hash):
                updates.append({"chunk_id": by_hash[draft.content_hash].pop(0), **fields})
            else:
                inserts.append(
                    {
                        "id": uuid.uuid4(),
                        "project_id": project_id,
                        "url_id": url_id,
                        "text": draft.text,
                        "token_count": draft.token_count,
                        "content_hash": draft.content_hash,
                        **fields,
                    }
                )
    stale = [i for hashes in by_url.values() for ids in hashes.values() for i in ids]
    table = Chunk.__table__
    if stale:
        await session.execute(delete(table).where(table.c.id.in_(stale)))
    if updates:  # Core executemany: no ORM unit-of-work overhead on the hot path
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("chunk_id"))
            .values(
                ordinal=bindparam("ordinal"),
                headings=bindparam("headings"),
                char_start=bindparam("char_start"),
                char_end=bindparam("char_end"),
            ),
            updates,
        )
    if len(inserts) > COPY_THRESHOLD:
        await _copy_chunks(session, inserts)
    elif inserts:
        await session.execute(insert(table), inserts)
    return ChunkDiff(kept=len(updates), inserted=[i["id"] for i in inserts], deleted=len(stale))


def _chunk_rows(project_id: uuid.UUID) -> Select:
    url_json = func.json_build_object("id", Url.id, "url", Url.url, "title", Url.title)
    return (
        select(Chunk, url_json.label("url"))
        .join(Url, Url.id == Chunk.url_id)
        .where(Chunk.project_id == project_id)
    )


def _read(row) -> ChunkRead:
    chunk: Chunk = row.Chunk
    return ChunkRead(
        id=chunk.id,
        url_id=chunk.url_id,
        ordinal=chunk.ordinal,
        text=chunk.text,
        headings=chunk.headings,
        char_start=chunk.char_start,
        char_end=chunk.char_end,
        token_count=chunk.token_count,
        content_hash=chunk.content_hash,
        created_at=chunk.created_at,
        url=row.url,
    )


async def list_chunks(
    *, session: AsyncSession, project_id: uuid.UUID, params: ChunkListParams, page: LimitOffset
) -> Page[ChunkRead]:
    filters = [Chunk.project_id == project_id]
    if params.url_id is not None:
        filters.append(Chunk.url_id == params.url_id)
    total = await session.scalar(select(func.count()).select_from(Chunk).where(*filters))
    rows = await session.execute(
        _chunk_rows(project_id)
        .where(*filters)
        .order_by(Chunk.url_id, Chunk.ordinal)
        .limit(page.limit)
        .offset(page.offset)
    )
    return Page(
        items=[_read(r) for r in rows], total=total or 0, limit=page.limit, offset=page.offset
    )


async def get_chunk(
    *, session: AsyncSession, project_id: uuid.UUID, chunk_id: uuid.UUID
) -> ChunkRead:
    row = (await session.execute(_chunk_rows(project_id).where(Chunk.id == chunk_id))).one_or_none()
    if row is None:
        raise ChunkNotFound()
    return _read(row)
