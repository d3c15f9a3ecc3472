"""Chunk storage (diffed by content hash, so unchanged chunks keep their ids) and reads."""

import uuid
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Select, delete, func, insert, select, update
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


async def replace_chunks(
    *, session: AsyncSession, project_id: uuid.UUID, url_id: uuid.UUID, drafts: list[ChunkDraft]
) -> ChunkDiff:
    """Make the URL's chunks equal `drafts`: same-hash chunks are kept (ordinal and offsets
    updated), new ones inserted, the rest deleted."""
    existing = await session.execute(
        select(Chunk.id, Chunk.content_hash).where(Chunk.url_id == url_id).order_by(Chunk.ordinal)
    )
    by_hash: dict[str, list[uuid.UUID]] = defaultdict(list)
    for row in existing:
        by_hash[row.content_hash].append(row.id)
    updates, inserts = [], []
    for draft in drafts:
        fields = {
            "ordinal": draft.ordinal,
            "headings": draft.headings,
            "char_start": draft.char_start,
            "char_end": draft.char_end,
        }
        if by_hash.get(draft.content_hash):
            updates.append({"id": by_hash[draft.content_hash].pop(0), **fields})
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
    stale = [chunk_id for ids in by_hash.values() for chunk_id in ids]
    if stale:
        await session.execute(delete(Chunk).where(Chunk.id.in_(stale)))
    if updates:
        await session.execute(update(Chunk), updates)
    if inserts:
        await session.execute(insert(Chunk), inserts)
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
