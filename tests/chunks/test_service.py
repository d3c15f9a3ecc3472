"""replace_chunks_many writes the same rows through both paths (multi-row INSERT below
COPY_THRESHOLD, binary COPY above), keeps unchanged chunks' ids on a changed page, leaves
each URL's kept chunk count right, and serialises concurrent replaces of one URL."""

from sqlalchemy import func, select
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


async def test_each_url_carries_its_chunk_count_through_every_write_path(
    session: AsyncSession,
) -> None:
    """The count the stats sum (kept by the database) equals the rows, after the INSERT and
    COPY paths, a page that loses chunks, one that keeps them, and one that empties."""
    project = await create_project(session, await create_user(session))
    urls = [Url(project_id=project.id, url=f"https://c.example/{i}") for i in range(3)]
    session.add_all(urls)
    await session.flush()

    async def kept_and_actual() -> list[tuple[int, int]]:
        rows = await session.execute(
            select(
                Url.chunk_count,
                select(func.count()).where(Chunk.url_id == Url.id).scalar_subquery(),
            )
            .where(Url.id.in_([u.id for u in urls]))
            .order_by(Url.url)
        )
        return [tuple(r) for r in rows]

    few, many = drafts_for(3), drafts_for(service.COPY_THRESHOLD + 10)
    await service.replace_chunks_many(
        session=session, items=[(project.id, urls[0].id, few), (project.id, urls[1].id, many)]
    )
    assert await kept_and_actual() == [(len(few), len(few)), (len(many), len(many)), (0, 0)]
    await service.replace_chunks_many(
        session=session,
        items=[
            (project.id, urls[0].id, few),  # unchanged: kept, not rewritten
            (project.id, urls[1].id, many[:5] + drafts_for(2, tag="new")),  # lost and gained
            (project.id, urls[2].id, drafts_for(4)),
        ],
    )
    assert await kept_and_actual() == [(len(few), len(few)), (7, 7), (4, 4)]
    await service.replace_chunks_many(session=session, items=[(project.id, urls[2].id, [])])
    assert (await kept_and_actual())[2] == (0, 0)


async def test_concurrent_replaces_of_one_url_leave_one_set_of_chunks(committed) -> None:
    """Two transactions replace one URL's chunks at once (two pushes of a document): the
    second waits for the first and replaces what it wrote, instead of adding beside it."""
    import asyncio

    from src.database import transaction

    _, project = await committed.user_and_project()
    (url_id,) = await committed.add_urls(project, ["https://race.example/doc"])
    first, second = drafts_for(3, tag="first"), drafts_for(4, tag="second")

    async def replace_in_own_transaction(drafts, started: asyncio.Event) -> None:
        async with transaction() as s:
            started.set()
            await service.replace_chunks(
                session=s, project_id=project.id, url_id=url_id, drafts=drafts
            )

    async with transaction() as s:
        await service.replace_chunks(session=s, project_id=project.id, url_id=url_id, drafts=first)
        started = asyncio.Event()
        racer = asyncio.create_task(replace_in_own_transaction(second, started))
        await started.wait()
        await asyncio.sleep(0.5)  # the racer reads (or, locked out, waits) meanwhile
        assert not racer.done()  # it waits for the first transaction's lock
    await asyncio.wait_for(racer, 20)

    async with transaction() as s:
        assert await stored(s, url_id) == expected(second)
        assert await s.scalar(select(Url.chunk_count).where(Url.id == url_id)) == len(second)
