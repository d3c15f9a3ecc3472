"""Push endpoints for ingestion clients: pre-extracted documents and pre-computed vectors.

Both become URL rows (`source` document/vector, unique `external_id` per project), so
listing, chunk reads, deletes and search treat them like fetched pages.
"""

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from src.chunks import service as chunks_service
from src.chunks.chunker import ChunkDraft, chunk_document, count_tokens
from src.chunks.models import Chunk
from src.projects.schemas import ProjectSettings
from src.projects.service import ProjectAccess
from src.urls.constants import UrlStatus
from src.urls.extract import extract_text
from src.urls.models import Url
from src.urls.utils import UrlRejected, normalise_url
from src.vectorization import service
from src.vectorization.config import vectorization_settings
from src.vectorization.constants import JobScope
from src.vectorization.exceptions import BatchTooLarge, DimensionMismatch
from src.vectorization.schemas import (
    DocumentIn,
    DocumentsPushResult,
    PushResult,
    VectorizeRequest,
    VectorsPush,
    VectorsPushResult,
)


def _document_url(doc: DocumentIn) -> str:
    """The document's own URL when it gives a valid one, else a stable URN."""
    if doc.url:
        try:
            return normalise_url(doc.url)
        except UrlRejected:
            pass
    return f"urn:projex:document:{doc.external_id}"


_URLS = Url.__table__


async def _upsert_rows(
    session: AsyncSession, project_id: uuid.UUID, rows: list[dict[str, Any]]
) -> dict[str, tuple[uuid.UUID, str | None]]:
    """Insert-or-fetch URL rows by external_id: {external_id: (id, previous content hash)}."""
    ids = [r["external_id"] for r in rows]
    existing = {
        r.external_id: (r.id, r.content_hash)
        for r in (
            await session.execute(
                select(Url.external_id, Url.id, Url.content_hash).where(
                    Url.project_id == project_id, Url.external_id.in_(ids)
                )
            )
        ).all()
    }
    fresh = [r for r in rows if r["external_id"] not in existing]
    for start in range(0, len(fresh), 2000):  # PostgreSQL caps a statement at 32,767 parameters
        created = await session.execute(
            insert(Url)
            .values([{**r, "project_id": project_id} for r in fresh[start : start + 2000]])
            .on_conflict_do_nothing()
            .returning(Url.external_id, Url.id)
        )
        for row in created:
            existing[row.external_id] = (row.id, None)
    return existing


async def push_documents(
    *, session: AsyncSession, access: ProjectAccess, documents: list[DocumentIn]
) -> DocumentsPushResult:
    if len(documents) > vectorization_settings.DOCUMENTS_MAX_PER_REQUEST:
        raise BatchTooLarge(
            f"at most {vectorization_settings.DOCUMENTS_MAX_PER_REQUEST} documents per request"
        )
    project = access.project
    settings = ProjectSettings.model_validate(project.settings)
    latest: dict[str, DocumentIn] = {d.external_id: d for d in documents}  # last one wins
    hashes = {k: hashlib.sha256(d.text.encode()).hexdigest() for k, d in latest.items()}
    rows = [
        {
            "external_id": k,
            "url": _document_url(d),
            "source": "document",
            "status": UrlStatus.PENDING.value,
            "title": d.title,
            "meta": d.metadata,
        }
        for k, d in latest.items()
    ]
    known = await _upsert_rows(session, project.id, rows)
    changed = [k for k in latest if known.get(k) and known[k][1] != hashes[k]]

    def chunk_all() -> dict[str, list[ChunkDraft]]:
        out = {}
        for key in changed:
            doc = extract_text(latest[key].text.encode(), "utf-8", markdown=True)
            doc.title = latest[key].title or doc.title
            out[key] = chunk_document(
                doc, chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap
            )
        return out

    drafts = await asyncio.to_thread(chunk_all) if changed else {}
    await chunks_service.replace_chunks_many(
        session=session, items=[(project.id, known[k][0], drafts[k]) for k in changed]
    )
    if changed:
        await session.execute(
            update(_URLS)
            .where(_URLS.c.id == bindparam("u"))
            .values(
                content_hash=bindparam("h"),
                title=bindparam("t"),
                status=UrlStatus.CHUNKED.value,
                ingested_at=func.now(),
                status_changed_at=func.now(),
                error_code=None,
                error_message=None,
            ),
            [{"u": known[k][0], "h": hashes[k], "t": latest[k].title} for k in changed],
        )
    items = []
    for doc in documents:
        url_id, previous = known.get(doc.external_id, (None, None))
        if url_id is None:
            items.append(
                PushResult(external_id=doc.external_id, result="rejected", reason="url_taken")
            )
        elif doc.external_id not in changed:
            items.append(PushResult(external_id=doc.external_id, result="unchanged", url_id=url_id))
        else:
            items.append(
                PushResult(
                    external_id=doc.external_id,
                    url_id=url_id,
                    result="updated" if previous else "created",
                )
            )
    job_id = None
    if changed:
        job = await service.create_job(
            session=session,
            access=access,
            data=VectorizeRequest(scope=JobScope.STALE),
            url_ids=[known[k][0] for k in changed],
        )
        job_id = job.id
    return DocumentsPushResult(job_id=job_id, items=items)


async def push_vectors(
    *, session: AsyncSession, access: ProjectAccess, data: VectorsPush
) -> VectorsPushResult:
    """Upsert pre-computed vectors, one chunk each, without calling any provider."""
    limit = vectorization_settings.VECTORS_MAX_PER_REQUEST
    if len(data.vectors) > limit:
        raise BatchTooLarge(f"at most {limit} vectors per request")
    provider = service.provider_for(access.project.settings)
    if data.model != provider.model_id or data.dimensions != provider.dimensions:
        raise DimensionMismatch(
            f"this project embeds with {provider.model_id} ({provider.dimensions} dimensions); "
            f"got {data.model} ({data.dimensions})"
        )
    for item in data.vectors:
        if len(item.embedding) != data.dimensions:
            raise DimensionMismatch(
                f"{item.external_id}: {len(item.embedding)} dimensions, declared {data.dimensions}"
            )
    project = access.project
    now = datetime.now(UTC)
    latest = {v.external_id: v for v in data.vectors}
    hashes = {k: hashlib.sha256(v.chunk_text.encode()).hexdigest() for k, v in latest.items()}
    rows = [
        {
            "external_id": k,
            "url": f"urn:projex:vector:{k}",
            "source": "vector",
            "status": UrlStatus.READY.value,
            "meta": v.metadata,
            "content_hash": hashes[k],  # new rows are complete at insert: no update pass
            "ingested_at": now,
        }
        for k, v in latest.items()
    ]
    known = await _upsert_rows(session, project.id, rows)
    fresh = {k for k in latest if known[k][1] is None}
    changed = [k for k in latest if k in fresh or known[k][1] != hashes[k]]
    await chunks_service.replace_chunks_many(
        session=session,
        items=[
            (
                project.id,
                known[k][0],
                [
                    ChunkDraft(
                        ordinal=0,
                        text=latest[k].chunk_text,
                        headings=[],
                        char_start=0,
                        char_end=len(latest[k].chunk_text),
                        token_count=count_tokens(latest[k].chunk_text),
                        content_hash=hashes[k],
                    )
                ],
            )
            for k in changed
        ],
    )
    updated = [k for k in changed if k not in fresh]
    if updated:
        await session.execute(
            update(_URLS)
            .where(_URLS.c.id == bindparam("u"))
            .values(
                content_hash=bindparam("h"),
                status=UrlStatus.READY.value,
                ingested_at=func.now(),
                status_changed_at=func.now(),
            ),
            [{"u": known[k][0], "h": hashes[k]} for k in updated],
        )
    chunk_of = dict(
        (
            await session.execute(
                select(Chunk.url_id, Chunk.id).where(
                    Chunk.url_id.in_([known[k][0] for k in latest])
                )
            )
        ).all()
    )
    await service.ensure_index(provider.model_id, provider.dimensions)
    await service.store_embeddings(
        session,
        [
            {
                "chunk_id": chunk_of[known[k][0]],
                "model": provider.model_id,
                "project_id": project.id,
                "embedding": v.embedding,
            }
            for k, v in latest.items()
        ],
    )
    await session.execute(
        text("UPDATE projects SET search_model = :m WHERE id = :p AND search_model IS NULL"),
        {"m": provider.model_id, "p": project.id},
    )
    items = [
        PushResult(
            external_id=v.external_id,
            url_id=known[v.external_id][0],
            result="created"
            if known[v.external_id][1] is None
            else ("updated" if v.external_id in changed else "unchanged"),
        )
        for v in data.vectors
    ]
    return VectorsPushResult(model=provider.model_id, items=items)
