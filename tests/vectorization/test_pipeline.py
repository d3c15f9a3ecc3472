"""Embedding on committed data: ingestion to `ready`, reuse of vectors, jobs, model switch."""

import uuid

import pytest
from sqlalchemy import func, select, text

from src.chunks.models import Chunk
from src.database import transaction
from src.urls import pipeline
from src.urls.models import Url
from src.vectorization import service
from src.vectorization.models import Embedding, VectorizationJob
from tests.conftest import wait_for
from tests.pages import page, respond

pytestmark = pytest.mark.slow

SECTIONS = [
    ("Alpha", "alpha text " * 40),
    ("Beta", "beta text " * 40),
    ("Gamma", "gamma text " * 40),
]


async def vectors_of(url_id: uuid.UUID) -> dict:
    async with transaction() as s:
        rows = await s.execute(
            select(Embedding.chunk_id, Embedding.model, Embedding.created_at)
            .join(Chunk, Chunk.id == Embedding.chunk_id)
            .where(Chunk.url_id == url_id)
        )
        return {(r.chunk_id, r.model): r.created_at for r in rows}


async def embed_jobs_for(url_id: uuid.UUID) -> list[tuple[str, str]]:
    async with transaction() as s:
        rows = await s.execute(
            text(
                "SELECT queue_name, status FROM procrastinate_jobs"
                " WHERE task_name = :task AND args -> 'url_ids' ? :url"
            ),
            {"task": service.EMBED_TASK, "url": str(url_id)},
        )
        return [tuple(r) for r in rows]


async def test_hand_off_commits_with_the_chunks(pages, committed) -> None:
    """The embedding job is written by the transaction that stores the chunks (no queue
    connection involved: the queue is not even open here)."""
    pages.routes["/doc"] = respond(200, page("Doc", *SECTIONS))
    _, project = await committed.user_and_project()
    (url_id,) = await committed.add_urls(project, [pages.url("/doc")])
    assert await pipeline.ingest_url(url_id) == "chunked"
    assert await embed_jobs_for(url_id) == [("embedding", "todo")]


async def test_a_store_that_fails_leaves_neither_chunks_nor_hand_off(
    pages, committed, monkeypatch
) -> None:
    pages.routes["/doc"] = respond(200, page("Doc", *SECTIONS))
    _, project = await committed.user_and_project()
    (url_id,) = await committed.add_urls(project, [pages.url("/doc")])
    real = service.hand_off

    async def then_fail(session, url_ids) -> None:
        await real(session, url_ids)
        raise RuntimeError("the commit never comes")

    monkeypatch.setattr(service, "hand_off", then_fail)
    with pytest.raises(RuntimeError):
        await pipeline.ingest_url(url_id)
    assert await embed_jobs_for(url_id) == []
    async with transaction() as s:
        assert (await s.get(Url, url_id)).status == "fetching"  # claimed, never stored
        assert not await s.scalar(select(func.count()).where(Chunk.url_id == url_id))


async def test_worker_ingests_to_ready_and_reuses_vectors(pages, committed, running_worker) -> None:
    pages.routes["/doc"] = respond(200, page("Doc", *SECTIONS))
    _, project = await committed.user_and_project(chunk_size=128, chunk_overlap=16)
    (url_id,) = await committed.add_urls(project, [pages.url("/doc")])

    async def ready() -> bool:
        async with transaction() as s:
            return (await s.get(Url, url_id)).status == "ready"

    await wait_for(ready, 30)
    before = await vectors_of(url_id)
    async with transaction() as s:
        chunk_count = await s.scalar(
            select(func.count()).select_from(Chunk).where(Chunk.url_id == url_id)
        )
        assert (
            await s.scalar(
                select(text("search_model")).select_from(text("projects")).where(text("id = :p")),
                {"p": project.id},
            )
        ) == "hashing-v1-384"
    assert len(before) == chunk_count > 1

    pages.routes["/doc"] = respond(
        200, page("Doc", SECTIONS[0], ("Beta", "new words " * 30), SECTIONS[2])
    )
    assert await pipeline.ingest_url(url_id) == "chunked"
    await wait_for(ready, 30)
    after = await vectors_of(url_id)
    kept = set(before) & set(after)
    assert kept and all(after[k] == before[k] for k in kept)  # unchanged chunks: not re-embedded
    assert set(after) - set(before)  # changed ones got new vectors
    async with transaction() as s:
        assert await s.scalar(
            select(func.count()).select_from(Embedding).join(Chunk).where(Chunk.url_id == url_id)
        ) == len(after)


async def test_job_embeds_stale_then_all(pages, committed) -> None:
    pages.routes["/doc"] = respond(200, page("Doc", *SECTIONS))
    _, project = await committed.user_and_project(chunk_size=128, chunk_overlap=16)
    (url_id,) = await committed.add_urls(project, [pages.url("/doc")])
    assert await pipeline.ingest_url(url_id) == "chunked"  # no worker: nothing embedded yet
    async with transaction() as s:
        job = VectorizationJob(project_id=project.id, scope="stale", model="hashing-v1-384")
        s.add(job)
    assert await service.run_job(job.id, final_attempt=False) == "succeeded"
    async with transaction() as s:
        row = await s.get(VectorizationJob, job.id)
        assert row.status == "succeeded" and row.total == row.done > 0 and row.finished_at
        assert (await s.get(Url, url_id)).status == "ready"
    first = await vectors_of(url_id)
    async with transaction() as s:
        again = VectorizationJob(project_id=project.id, scope="all", model="hashing-v1-384")
        s.add(again)
    assert await service.run_job(again.id, final_attempt=False) == "succeeded"
    assert set(await vectors_of(url_id)) == set(first)


async def test_unreachable_provider_fails_the_job_and_the_api_stays_up(pages, committed) -> None:
    from src.vectorization.exceptions import ProviderUnavailable

    pages.routes["/doc"] = respond(200, page("Doc", *SECTIONS))
    _, project = await committed.user_and_project()
    async with transaction() as s:
        await s.execute(
            text("UPDATE projects SET settings = settings || CAST(:e AS jsonb) WHERE id = :p"),
            {
                "e": '{"embedding": {"provider": "openai", "model": "m", "dimensions": 8}}',
                "p": project.id,
            },
        )
    (url_id,) = await committed.add_urls(project, [pages.url("/doc")])
    assert await pipeline.ingest_url(url_id) == "chunked"
    from src.vectorization.config import vectorization_settings

    vectorization_settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # nothing listens
    vectorization_settings.EMBEDDING_MAX_RETRIES = 0
    service.providers.get_provider.cache_clear()
    try:
        async with transaction() as s:
            job = VectorizationJob(project_id=project.id, scope="stale", model="openai:m:8")
            s.add(job)
        with pytest.raises(ProviderUnavailable):
            await service.run_job(job.id, final_attempt=False)
        async with transaction() as s:
            row = await s.get(VectorizationJob, job.id)
            assert (row.status, row.error_code) == ("queued", "provider_unavailable")  # retried
        with pytest.raises(ProviderUnavailable):
            await service.run_job(job.id, final_attempt=True)
        async with transaction() as s:
            assert (await s.get(VectorizationJob, job.id)).status == "failed"
            assert (await s.get(Url, url_id)).status == "chunked"
    finally:
        vectorization_settings.OPENAI_BASE_URL = "https://api.openai.com/v1"
        vectorization_settings.EMBEDDING_MAX_RETRIES = 5
        service.providers.get_provider.cache_clear()


async def test_model_switch_keeps_old_vectors_until_complete(pages, committed) -> None:
    pages.routes["/doc"] = respond(200, page("Doc", *SECTIONS))
    _, project = await committed.user_and_project(chunk_size=128, chunk_overlap=16)
    (url_id,) = await committed.add_urls(project, [pages.url("/doc")])
    await pipeline.ingest_url(url_id)
    await service.embed_urls([url_id])
    async with transaction() as s:
        await s.execute(
            text("UPDATE projects SET settings = settings || CAST(:e AS jsonb) WHERE id = :p"),
            {"e": '{"embedding": {"provider": "hashing", "dimensions": 256}}', "p": project.id},
        )
        job = VectorizationJob(project_id=project.id, scope="stale", model="hashing-v1-256")
        s.add(job)
    models = {m for _, m in await vectors_of(url_id)}
    assert models == {"hashing-v1-384"}
    assert await service.run_job(job.id, final_attempt=False) == "succeeded"
    async with transaction() as s:
        current = await s.scalar(
            text("SELECT search_model FROM projects WHERE id = :p"), {"p": project.id}
        )
    assert current == "hashing-v1-256"
    assert {m for _, m in await vectors_of(url_id)} == {"hashing-v1-256"}  # old set deleted


async def test_dedicated_queue_workers_split_the_stages(pages, committed, queue) -> None:
    """`projex worker --queue ingestion` stops at `chunked` and leaves the embedding job queued
    on the `embedding` queue; a worker on that queue alone then makes the URL `ready`."""
    import asyncio
    import contextlib

    from src import worker

    pages.routes["/doc"] = respond(200, page("Doc", *SECTIONS))
    _, project = await committed.user_and_project(chunk_size=128, chunk_overlap=16)
    (url_id,) = await committed.add_urls(project, [pages.url("/doc")])

    async def status() -> str:
        async with transaction() as s:
            return (await s.get(Url, url_id)).status

    async def embed_jobs() -> list[tuple[str, str]]:
        async with transaction() as s:
            rows = await s.execute(
                text(
                    "SELECT queue_name, status::text FROM procrastinate_jobs"
                    " WHERE task_name = 'vectorization:embed_urls'"
                )
            )
            return [tuple(r) for r in rows]

    @contextlib.asynccontextmanager
    async def running(queues: list[str]):
        task = asyncio.create_task(
            worker.run_worker(concurrency=2, queues=queues, install_signal_handlers=False)
        )
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async with running([worker.INGESTION_QUEUE]):
        await wait_for(lambda: _equals(status, "chunked"), 30)
        await asyncio.sleep(1.5)  # a worker that took every queue would embed it meanwhile
        assert await status() == "chunked"
        assert await embed_jobs() == [("embedding", "todo")]
    assert await vectors_of(url_id) == {}

    async with running([worker.EMBEDDING_QUEUE]):
        await wait_for(lambda: _equals(status, "ready"), 30)
    assert len(await vectors_of(url_id)) > 1


async def _equals(read, expected: str) -> bool:
    return await read() == expected
