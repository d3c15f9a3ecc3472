"""Embeddings: which model a project uses, storing vectors, the ingestion hand-off, jobs."""

import hashlib
import re
import struct
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from src.database import get_engine, transaction
from src.log import get_logger
from src.pagination import LimitOffset, Page
from src.projects.models import Project
from src.projects.service import ProjectAccess
from src.system import metrics
from src.urls.models import Url
from src.vectorization import providers
from src.vectorization.config import vectorization_settings
from src.vectorization.constants import HNSW_INDEX_PREFIX, JobScope, JobStatus
from src.vectorization.exceptions import JobNotFound, ProviderUnavailable
from src.vectorization.models import Embedding, VectorizationJob
from src.vectorization.schemas import EmbeddingSettings, JobRead, VectorizeRequest
from src.worker import defer_after_commit, defer_in_transaction

log = get_logger(__name__)

EMBED_TASK = "vectorization:embed_urls"
JOB_TASK = "vectorization:run_job"


# --- which model -----------------------------------------------------------------------------


def embedding_settings(project_settings: dict[str, Any]) -> EmbeddingSettings:
    override = project_settings.get("embedding")
    if override:
        return EmbeddingSettings.model_validate(override)
    s = vectorization_settings
    return EmbeddingSettings(
        provider=s.EMBEDDING_PROVIDER, model=s.EMBEDDING_MODEL, dimensions=s.EMBEDDING_DIMENSIONS
    )


def provider_for(project_settings: dict[str, Any]) -> providers.EmbeddingProvider:
    cfg = embedding_settings(project_settings)
    return providers.get_provider(cfg.provider, cfg.model, cfg.dimensions)


def provider_for_model(
    model_id: str, project_settings: dict[str, Any]
) -> providers.EmbeddingProvider:
    """The provider that made `model_id` vectors (the project's current one, or the one it
    is switching away from)."""
    current = provider_for(project_settings)
    if current.model_id == model_id:
        return current
    if model_id.startswith("hashing-v1-"):
        return providers.get_provider("hashing", None, int(model_id.rsplit("-", 1)[1]))
    kind, _, rest = model_id.partition(":")
    model, _, dims = rest.rpartition(":")
    name = {"openai": "openai", "bedrock": "bedrock", "st": "sentence-transformers"}.get(kind)
    if name is None or not dims.isdigit():
        raise ProviderUnavailable(f"no provider for model {model_id!r}")
    return providers.get_provider(name, model or None, int(dims))


def index_name(model_id: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", model_id.lower()).strip("_")
    if len(slug) > 40:
        slug = slug[:30] + "_" + hashlib.sha1(model_id.encode()).hexdigest()[:8]  # noqa: S324
    return HNSW_INDEX_PREFIX + slug


_ensured: set[str] = set()


async def ensure_index(model_id: str, dimensions: int) -> None:
    """The partial HNSW expression index for one (model, dimension); made once, concurrently."""
    name = index_name(model_id)
    if name in _ensured:
        return
    engine = get_engine()
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        exists = await conn.scalar(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name})
        if not exists:
            literal = model_id.replace("'", "''")
            await conn.execute(
                text(
                    f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON embeddings USING hnsw '
                    f"((embedding::vector({int(dimensions)})) vector_cosine_ops) "
                    f"WHERE model = '{literal}'"
                )
            )
            log.info("embeddings.index_created", index=name, model=model_id)
    _ensured.add(name)


# --- storing vectors ---------------------------------------------------------------------------


_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_COPY_TRAILER = struct.pack("!h", -1)


def _copy_payload(rows: Sequence[dict[str, Any]]) -> bytes:
    """PostgreSQL binary COPY data for `(chunk_id uuid, model text, project_id uuid,
    embedding vector)` rows. Encoded here (pgvector's binary form: int16 dimensions, int16
    unused, big-endian float4s), so the connection needs no vector codec and asyncpg no type
    introspection round trips."""
    parts = [_COPY_HEADER]
    for r in rows:
        model = r["model"].encode()
        vector = np.asarray(r["embedding"], dtype=">f4").ravel()
        size = vector.size
        parts.append(
            struct.pack("!hi16si", 4, 16, r["chunk_id"].bytes, len(model))
            + model
            + struct.pack("!i16sihh", 16, r["project_id"].bytes, 4 + 4 * size, size, 0)
            + vector.tobytes()
        )
    parts.append(_COPY_TRAILER)
    return b"".join(parts)


async def store_embeddings(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Upsert `{chunk_id, model, project_id, embedding}` rows: binary COPY into a
    transaction-local staging table, then one INSERT … ON CONFLICT DO UPDATE."""
    if not rows:
        return
    connection = await session.connection()
    # The asyncpg adapter opens its transaction with the first statement it runs: run one,
    # so the raw COPY below is part of the session's transaction.
    await connection.exec_driver_sql("SELECT 1")
    driver = (await connection.get_raw_connection()).driver_connection
    await driver.execute(
        "CREATE TEMP TABLE IF NOT EXISTS embeddings_stage "
        "(chunk_id uuid, model text, project_id uuid, embedding vector) "
        "ON COMMIT DELETE ROWS"
    )
    await driver.copy_to_table(
        "embeddings_stage",
        source=memoryview(_copy_payload(rows)),  # bytes would be taken for a file path
        columns=["chunk_id", "model", "project_id", "embedding"],
        format="binary",
    )
    await driver.execute(
        "INSERT INTO embeddings (chunk_id, model, project_id, embedding) "
        "SELECT chunk_id, model, project_id, embedding FROM embeddings_stage "
        "ON CONFLICT (chunk_id, model) DO UPDATE "
        "SET embedding = EXCLUDED.embedding, created_at = now()"
    )
    await driver.execute("TRUNCATE embeddings_stage")


_PENDING_CHUNKS = text(
    """
    SELECT c.id, c.text, c.project_id, p.settings
    FROM chunks c JOIN urls u ON u.id = c.url_id JOIN projects p ON p.id = c.project_id
    WHERE c.url_id = ANY(:ids) AND p.deleted_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.chunk_id = c.id AND e.model = :model)
    ORDER BY c.url_id, c.ordinal
    """
)


async def embed_chunks(
    *, project_settings: dict[str, Any], chunks: list[tuple[uuid.UUID, str, uuid.UUID]]
) -> int:
    """Embed `(chunk_id, text, project_id)` with the project's provider and store them."""
    if not chunks:
        return 0
    provider = provider_for(project_settings)
    await ensure_index(provider.model_id, provider.dimensions)
    size = vectorization_settings.EMBEDDING_BATCH_SIZE * 4
    for start in range(0, len(chunks), size):
        part = chunks[start : start + size]
        started = time.perf_counter()
        vectors = await provider.embed([text_ for _, text_, _ in part])
        providers.check_dimensions(vectors, provider.dimensions, provider.model_id)
        async with transaction() as session:
            await store_embeddings(
                session,
                [
                    {"chunk_id": cid, "model": provider.model_id, "project_id": pid, "embedding": v}
                    for (cid, _, pid), v in zip(part, vectors, strict=True)
                ],
            )
        metrics.EMBEDDINGS_WRITTEN.labels(provider.model_id).inc(len(part))
        metrics.EMBED_LATENCY.labels(provider.name).observe(time.perf_counter() - started)
        log.info(
            "embeddings.stored",
            provider=provider.name,
            model=provider.model_id,
            chunks=len(part),
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
    return len(chunks)


async def embed_urls(url_ids: list[uuid.UUID]) -> int:
    """Hand-off from ingestion: embed the URLs' chunks that lack a vector, then mark the
    URLs ready. Unchanged chunks (same id) keep their vectors and are never re-embedded."""
    async with transaction() as session:
        projects = (
            await session.execute(
                select(Project.id, Project.settings)
                .join(Url, Url.project_id == Project.id)
                .where(Url.id.in_(url_ids), Project.deleted_at.is_(None))
                .distinct()
            )
        ).all()
    total = 0
    for project_id, settings in projects:
        provider = provider_for(settings)
        async with transaction() as session:
            rows = (
                await session.execute(_PENDING_CHUNKS, {"ids": url_ids, "model": provider.model_id})
            ).all()
        part = [(r.id, r.text, r.project_id) for r in rows if r.project_id == project_id]
        total += await embed_chunks(project_settings=settings, chunks=part)
        await mark_ready(project_id=project_id, model=provider.model_id, url_ids=url_ids)
    return total


_MARK_READY = text(
    """
    UPDATE urls u SET status = 'ready', status_changed_at = now()
    WHERE u.project_id = :pid AND u.status = 'chunked'
      AND (CAST(:ids AS uuid[]) IS NULL OR u.id = ANY(:ids))
      AND NOT EXISTS (
        SELECT 1 FROM chunks c
        WHERE c.url_id = u.id
          AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.chunk_id = c.id AND e.model = :model))
    RETURNING u.id
    """
)


async def mark_ready(*, project_id: uuid.UUID, model: str, url_ids: list[uuid.UUID] | None) -> int:
    async with transaction() as session:
        ready = (
            await session.scalars(_MARK_READY, {"pid": project_id, "ids": url_ids, "model": model})
        ).all()
        await _maybe_switch_model(session, project_id, model)
    return len(ready)


async def _maybe_switch_model(session: AsyncSession, project_id: uuid.UUID, model: str) -> None:
    """Search keeps the old model until every chunk has a vector of the new one; then it
    switches and the old vectors are deleted."""
    current = await session.scalar(select(Project.search_model).where(Project.id == project_id))
    if current == model:
        return
    missing = await session.scalar(
        text(
            "SELECT count(*) FROM chunks c WHERE c.project_id = :pid AND NOT EXISTS "
            "(SELECT 1 FROM embeddings e WHERE e.chunk_id = c.id AND e.model = :model)"
        ),
        {"pid": project_id, "model": model},
    )
    if current is not None and missing:
        return
    await session.execute(
        update(Project)
        .where(Project.id == project_id)
        .values(search_model=model)
        .execution_options(synchronize_session=False)
    )
    if current is not None:
        await session.execute(
            delete(Embedding).where(Embedding.project_id == project_id, Embedding.model != model)
        )
        log.info("embeddings.model_switched", project_id=project_id, old=current, new=model)


async def hand_off(session: AsyncSession, url_ids: list[uuid.UUID]) -> None:
    """Queue embedding of freshly chunked URLs in the transaction that stores their chunks:
    the jobs exist exactly when the chunks do (a URL can never stay `chunked` because a
    worker died between its commit and the enqueue)."""
    ids = [str(u) for u in url_ids]
    await defer_in_transaction(
        session, EMBED_TASK, [{"url_ids": ids[i : i + 64]} for i in range(0, len(ids), 64)]
    )


# --- jobs ---------------------------------------------------------------------------------------


def _job_read(job: VectorizationJob) -> JobRead:
    duration = None
    if job.started_at and job.finished_at:
        duration = (job.finished_at - job.started_at).total_seconds()
    return JobRead.model_validate(
        {
            **{c.key: getattr(job, c.key) for c in VectorizationJob.__table__.columns},
            "duration_seconds": duration,
        }
    )


async def create_job(
    *,
    session: AsyncSession,
    access: ProjectAccess,
    data: VectorizeRequest,
    url_ids: list[uuid.UUID] | None = None,
) -> JobRead:
    provider = provider_for(access.project.settings)
    job = VectorizationJob(
        project_id=access.project.id,
        created_by=access.principal.user_id,
        scope=data.scope.value,
        url_ids=url_ids or data.url_ids,
        model=provider.model_id,
        status=JobStatus.QUEUED.value,
    )
    session.add(job)
    await session.flush()
    defer_after_commit(session, JOB_TASK, job_id=str(job.id))
    return _job_read(job)


async def list_jobs(
    *, session: AsyncSession, access: ProjectAccess, page: LimitOffset
) -> Page[JobRead]:
    where = VectorizationJob.project_id == access.project.id
    total = await session.scalar(select(func.count()).select_from(VectorizationJob).where(where))
    rows = await session.scalars(
        select(VectorizationJob)
        .where(where)
        .order_by(VectorizationJob.created_at.desc(), VectorizationJob.id)
        .limit(page.limit)
        .offset(page.offset)
    )
    return Page(
        items=[_job_read(j) for j in rows], total=total or 0, limit=page.limit, offset=page.offset
    )


async def get_job(*, session: AsyncSession, access: ProjectAccess, job_id: uuid.UUID) -> JobRead:
    job = await session.scalar(
        select(VectorizationJob).where(
            VectorizationJob.id == job_id, VectorizationJob.project_id == access.project.id
        )
    )
    if job is None:
        raise JobNotFound()
    return _job_read(job)


async def cancel_job(*, session: AsyncSession, access: ProjectAccess, job_id: uuid.UUID) -> JobRead:
    job = await session.scalar(
        select(VectorizationJob)
        .where(VectorizationJob.id == job_id, VectorizationJob.project_id == access.project.id)
        .with_for_update()
    )
    if job is None:
        raise JobNotFound()
    if job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
        job.status = JobStatus.CANCELLED.value
        job.finished_at = datetime.now(UTC)
        await session.flush()
    return _job_read(job)


_JOB_CHUNKS = text(
    """
    SELECT c.id, c.text, c.project_id FROM chunks c
    WHERE c.project_id = :pid
      AND (CAST(:ids AS uuid[]) IS NULL OR c.url_id = ANY(:ids))
      AND (:all OR NOT EXISTS (SELECT 1 FROM embeddings e
                               WHERE e.chunk_id = c.id AND e.model = :model))
    ORDER BY c.url_id, c.ordinal
    """
)


async def run_job(job_id: uuid.UUID, *, final_attempt: bool) -> str:
    """Embed the job's chunks in batches; cancellable between batches; survives restarts
    (a re-run only embeds what is still missing, unless the scope is `all`)."""
    async with transaction() as session:
        job = await session.scalar(
            select(VectorizationJob).where(VectorizationJob.id == job_id).with_for_update()
        )
        if job is None or job.status in (
            JobStatus.CANCELLED,
            JobStatus.SUCCEEDED,
            JobStatus.FAILED,
        ):
            return "skipped"
        project = await session.get(Project, job.project_id)
        if project is None or project.deleted_at is not None:
            job.status, job.finished_at = JobStatus.CANCELLED.value, datetime.now(UTC)
            return "skipped"
        job.status = JobStatus.RUNNING.value
        job.started_at = job.started_at or datetime.now(UTC)
        settings, model, scope, url_ids = project.settings, job.model, job.scope, job.url_ids
        rows = (
            await session.execute(
                _JOB_CHUNKS,
                {"pid": project.id, "ids": url_ids, "all": scope == JobScope.ALL, "model": model},
            )
        ).all()
        job.total = len(rows) if scope == JobScope.ALL or job.total == 0 else job.total
    chunks = [(r.id, r.text, r.project_id) for r in rows]
    size = vectorization_settings.EMBEDDING_BATCH_SIZE * 4
    try:
        for start in range(0, len(chunks), size):
            async with transaction() as session:
                status = await session.scalar(
                    select(VectorizationJob.status).where(VectorizationJob.id == job_id)
                )
            if status == JobStatus.CANCELLED:
                return "cancelled"
            part = chunks[start : start + size]
            await embed_chunks(project_settings=settings, chunks=part)
            async with transaction() as session:
                await session.execute(
                    update(VectorizationJob)
                    .where(VectorizationJob.id == job_id)
                    .values(done=VectorizationJob.done + len(part))
                )
    except ProviderUnavailable as exc:
        async with transaction() as session:
            await session.execute(
                update(VectorizationJob)
                .where(VectorizationJob.id == job_id)
                .values(
                    status=JobStatus.FAILED if final_attempt else JobStatus.QUEUED,
                    error_code=exc.code,
                    error_message=str(exc)[:1000],
                    finished_at=func.now() if final_attempt else None,
                )
            )
        raise
    await mark_ready(project_id=project.id, model=model, url_ids=url_ids)
    async with transaction() as session:
        await session.execute(
            update(VectorizationJob)
            .where(VectorizationJob.id == job_id, VectorizationJob.status == JobStatus.RUNNING)
            .values(
                status=JobStatus.SUCCEEDED,
                finished_at=func.now(),
                error_code=None,
                error_message=None,
            )
        )
    return "succeeded"
