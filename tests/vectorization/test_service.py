"""store_embeddings: the binary COPY it encodes itself lands exactly as given."""

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from src.chunks import service as chunks_service
from src.chunks.chunker import chunk_document
from src.urls.extract import extract_text
from src.urls.models import Url
from src.vectorization import service
from src.vectorization.models import Embedding
from tests.factories import create_project, create_user


async def test_store_embeddings_round_trips_values_and_upserts(session: AsyncSession) -> None:
    project = await create_project(session, await create_user(session))
    url = Url(project_id=project.id, url="https://docs.example/copy")
    session.add(url)
    await session.flush()
    body = ("alpha " * 20 + "\n\n" + "beta " * 20).encode()
    drafts = chunk_document(extract_text(body), chunk_size=16, chunk_overlap=0)
    diff = await chunks_service.replace_chunks(
        session=session, project_id=project.id, url_id=url.id, drafts=drafts
    )
    first, second = diff.inserted[:2]
    vectors = {first: [0.5, -1.25, 3.0e-7], second: [-0.0, 1.0e30, 2.0]}
    rows = [
        {"chunk_id": cid, "model": "test-3", "project_id": project.id, "embedding": vec}
        for cid, vec in vectors.items()
    ]
    rows.append(  # another model beside it, numpy input
        {"chunk_id": first, "model": "other-2", "project_id": project.id, "embedding": np.ones(2)}
    )
    await service.store_embeddings(session, rows)
    await service.store_embeddings(  # upsert: the second write wins
        session, [{**rows[1], "embedding": [4.0, 5.0, 6.0]}]
    )
    stored = {
        (r.chunk_id, r.model): np.float32(r.embedding).tolist()  # float4 in PostgreSQL
        for r in (await session.scalars(select(Embedding))).all()
        if r.chunk_id in vectors
    }
    assert stored == {
        (first, "test-3"): np.float32([0.5, -1.25, 3.0e-7]).tolist(),
        (second, "test-3"): [4.0, 5.0, 6.0],
        (first, "other-2"): [1.0, 1.0],
    }
