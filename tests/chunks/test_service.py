"""replace_chunks_many writes the same rows through both paths (multi-row INSERT below
COPY_THRESHOLD, binary COPY above) and keeps unchanged chunks' ids on a changed page."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from src.chunks import service
from src.chunks.chunker import chunk_document
from src.chunks.models import Chunk
from src.urls.extract import extract_text
from src.urls.models import Url
from tests.factories import create_project, create_user


def drafts_for(paragraphs: int, tag: str = "") -> list:
    body = "\n\n".join(f"Paragraph {i} {tag} " + f"word{i} " * 12 for i in range(paragraphs))
    return chunk_document(extract_text(body.encode()), chunk_size=16, chunk_overlap=0)


async def stored(session: AsyncSession, url_id) -> list[tuple]:
    rows = await session.scalars(
        select(Chunk).where(Chunk.url_id == url_id).order_by(Chunk.ordinal)
    )
    return [
        (c.ordinal, c.text, c.headings, c.char_start, c.char_end, c.token_count, c.content_hash)
        for c in rows
    ]


def expected(drafts: list) -> list[tuple]:
    return [
        (d.ordinal, d.text, d.headings, d.char_start, d.char_end, d.token_count, d.content_hash)
        for d in drafts
    ]


async def test_both_write_paths_store_the_drafts_and_keep_unchanged_ids(
    session: AsyncSession,
) -> None:
    project = await create_project(session, await create_user(session))
    small, large = (
        Url(project_id=project.id, url="https://a.example/s"),
        Url(project_id=project.id, url="https://a.example/l"),
    )
    session.add_all([small, large])
    await session.flush()
    few, many = drafts_for(3), drafts_for(service.COPY_THRESHOLD + 10)
    assert len(few) <= service.COPY_THRESHOLD < len(many)

    diff = await service.replace_chunks_many(
        session=session,
        items=[(project.id, small.id, few), (project.id, large.id, many)],
    )
    assert len(diff.inserted) == len(few) + len(many) and diff.kept == diff.deleted == 0
    assert await stored(session, small.id) == expected(few)
    assert await stored(session, large.id) == expected(many)

    ids_before = {
        c.content_hash: c.id
        for c in await session.scalars(select(Chunk).where(Chunk.url_id == large.id))
    }
    changed = many[:-1]  # the page lost its last paragraph
    diff = await service.replace_chunks(
        session=session, project_id=project.id, url_id=large.id, drafts=changed
    )
    assert (diff.kept, diff.inserted, diff.deleted) == (len(changed), [], 1)
    after = await session.scalars(select(Chunk).where(Chunk.url_id == large.id))
    assert all(ids_before[c.content_hash] == c.id for c in after)
