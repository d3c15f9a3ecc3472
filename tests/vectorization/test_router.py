"""Push endpoints, jobs and search through the API (each test rolled back)."""

import json
import uuid

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from src.chunks.models import Chunk
from src.urls.models import Url
from src.vectorization.config import vectorization_settings
from src.vectorization.models import Embedding
from src.vectorization.providers import HashingProvider
from tests.factories import add_member, bearer, create_api_key, create_project, create_user

P = "/api/v1/projects"
MODEL = "hashing-v1-384"


async def counts(session: AsyncSession, project_id) -> tuple[int, int, int]:
    urls = await session.scalar(
        select(func.count()).select_from(Url).where(Url.project_id == project_id)
    )
    chunks = await session.scalar(
        select(func.count()).select_from(Chunk).where(Chunk.project_id == project_id)
    )
    vectors = await session.scalar(
        select(func.count()).select_from(Embedding).where(Embedding.project_id == project_id)
    )
    return urls, chunks, vectors


def vector_items(texts: dict[str, str]) -> list[dict]:
    embedder = HashingProvider(384)
    return [
        {
            "external_id": k,
            "chunk_text": t,
            "embedding": embedder.embed_sync([t])[0],
            "metadata": {"lang": "en", "n": i},
        }
        for i, (k, t) in enumerate(texts.items())
    ]


TEXTS = {
    "idx": "B-tree indexes handle equality and range queries on sortable data.",
    "hash": "Hash indexes store a 32-bit hash code and only support equality comparisons.",
    "vac": "VACUUM reclaims storage occupied by dead tuples and can freeze old transaction ids.",
    "wal": "Write-ahead logging ensures durability: changes are logged before data files change.",
}


async def push(client: httpx.AsyncClient, project, headers, items, **over) -> httpx.Response:
    body = {"model": MODEL, "dimensions": 384, "vectors": items, **over}
    return await client.post(f"{P}/{project.id}/vectors", json=body, headers=headers)


async def test_vectors_push_then_search_all_modes(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    owner = await create_user(session)
    project = await create_project(session, owner)
    response = await push(client, project, bearer(owner), vector_items(TEXTS))
    assert response.status_code == 200, response.text
    assert [i["result"] for i in response.json()["items"]] == ["created"] * 4
    assert await counts(session, project.id) == (4, 4, 4)

    for mode in ("semantic", "fulltext", "hybrid"):
        found = await client.post(
            f"{P}/{project.id}/search",
            headers=bearer(owner),
            json={"query": "hash index equality", "mode": mode, "top_k": 2},
        )
        assert found.status_code == 200, found.text
        body = found.json()
        assert body["items"], mode
        top = body["items"][0]
        assert top["text"] == TEXTS["hash"], mode
        assert top["url"]["url"] == "urn:projex:vector:hash" and top["rank"] == 1
        assert set(top["scores"]) == {"semantic", "fulltext", "fused"}
    filtered = await client.post(
        f"{P}/{project.id}/search",
        headers=bearer(owner),
        json={"query": "index", "mode": "fulltext", "filters": {"metadata": {"n": 0}}},
    )
    assert [h["url"]["url"] for h in filtered.json()["items"]] == ["urn:projex:vector:idx"]
    prefix = await client.post(
        f"{P}/{project.id}/search",
        headers=bearer(owner),
        json={
            "query": "index",
            "mode": "semantic",
            "filters": {"url_prefix": "urn:projex:vector:va"},
        },
    )
    assert [h["url"]["url"] for h in prefix.json()["items"]] == ["urn:projex:vector:vac"]

    again = await push(
        client, project, bearer(owner), vector_items({"hash": TEXTS["hash"], "new": "x y"})
    )
    assert [i["result"] for i in again.json()["items"]] == ["unchanged", "created"]
    assert await counts(session, project.id) == (5, 5, 5)


async def test_fulltext_ranks_pages_missing_some_question_words(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    owner = await create_user(session)
    project = await create_project(session, owner)
    await push(client, project, bearer(owner), vector_items(TEXTS))
    # "tuples" and "freeze" appear, "autovacuum" and "wraparound" do not: still found first.
    found = await client.post(
        f"{P}/{project.id}/search",
        headers=bearer(owner),
        json={
            "query": "how does autovacuum freeze dead tuples before wraparound",
            "mode": "fulltext",
        },
    )
    assert found.json()["items"][0]["url"]["url"] == "urn:projex:vector:vac"


async def test_vector_push_bad_input_writes_nothing(
    client: httpx.AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await create_user(session)
    project = await create_project(session, owner)
    items = vector_items(TEXTS)
    wrong_model = await push(client, project, bearer(owner), items, model="other", dimensions=384)
    assert wrong_model.status_code == 422 and wrong_model.json()["code"] == "dimension_mismatch"
    wrong_dims = await push(
        client, project, bearer(owner), items, model="hashing-v1-384", dimensions=768
    )
    assert wrong_dims.status_code == 422 and wrong_dims.json()["code"] == "dimension_mismatch"
    short = [dict(items[0], embedding=items[0]["embedding"][:100])]
    one_bad = await push(client, project, bearer(owner), short)
    assert one_bad.status_code == 422 and one_bad.json()["code"] == "dimension_mismatch"
    nan = dict(items[0], embedding=[float("nan"), *items[0]["embedding"][1:]])
    body = json.dumps({"model": MODEL, "dimensions": 384, "vectors": [nan]})  # NaN literal
    bad_nan = await client.post(
        f"{P}/{project.id}/vectors",
        content=body,
        headers={**bearer(owner), "content-type": "application/json"},
    )
    assert bad_nan.status_code == 422
    monkeypatch.setattr(vectorization_settings, "VECTORS_MAX_PER_REQUEST", 3)
    too_many = await push(client, project, bearer(owner), items)
    assert too_many.status_code == 413 and too_many.json()["code"] == "batch_too_large"
    assert await counts(session, project.id) == (0, 0, 0)


async def test_documents_push_is_idempotent(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    owner = await create_user(session)
    project = await create_project(session, owner)
    docs = [
        {
            "external_id": "guide",
            "title": "Guide",
            "text": "# Intro\n\nHello there.\n\n# Usage\n\nRun it.",
            "metadata": {"team": "docs"},
        },
        {"external_id": "faq", "url": "https://example.com/faq", "text": "Questions and answers."},
    ]
    first = await client.post(
        f"{P}/{project.id}/documents", json={"documents": docs}, headers=bearer(owner)
    )
    assert first.status_code == 202, first.text
    body = first.json()
    assert [i["result"] for i in body["items"]] == ["created", "created"] and body["job_id"]
    urls, chunks, _ = await counts(session, project.id)
    assert urls == 2 and chunks >= 3
    same = await client.post(
        f"{P}/{project.id}/documents", json={"documents": docs}, headers=bearer(owner)
    )
    assert [i["result"] for i in same.json()["items"]] == ["unchanged", "unchanged"]
    assert same.json()["job_id"] is None
    guide_chunks = set(
        (
            await session.scalars(
                select(Chunk.id).join(Url, Url.id == Chunk.url_id).where(Url.external_id == "guide")
            )
        ).all()
    )
    docs[0]["text"] = "# Intro\n\nHello there.\n\n# Usage\n\nRun it twice."
    changed = await client.post(
        f"{P}/{project.id}/documents", json={"documents": docs[:1]}, headers=bearer(owner)
    )
    assert changed.json()["items"][0]["result"] == "updated"
    after = set(
        (
            await session.scalars(
                select(Chunk.id).join(Url, Url.id == Chunk.url_id).where(Url.external_id == "guide")
            )
        ).all()
    )
    assert guide_chunks & after and after - guide_chunks  # intro kept its id, usage is new
    listed = (await client.get(f"{P}/{project.id}/urls", headers=bearer(owner))).json()
    assert {i["url"] for i in listed["items"]} == {
        "urn:projex:document:guide",
        "https://example.com/faq",
    }


async def test_push_permissions(
    client: httpx.AsyncClient, session: AsyncSession, monkeypatch
) -> None:
    owner = await create_user(session)
    viewer = await create_user(session)
    stranger = await create_user(session)
    project = await create_project(session, owner)
    await add_member(session, project, viewer, "viewer")
    docs = {"documents": [{"external_id": "a", "text": "hello"}]}
    assert (
        await client.post(f"{P}/{project.id}/documents", json=docs, headers=bearer(viewer))
    ).status_code == 403
    assert (
        await client.post(f"{P}/{project.id}/documents", json=docs, headers=bearer(stranger))
    ).status_code == 404
    search_key = (await create_api_key(client, owner, "search"))["key"]
    denied = await client.post(
        f"{P}/{project.id}/documents", json=docs, headers={"X-API-Key": search_key}
    )
    assert denied.status_code == 403 and denied.json()["code"] == "scope_missing"
    ingest_key = (
        await create_api_key(client, owner, "vectorization:write", project_id=project.id)
    )["key"]
    assert (
        await client.post(
            f"{P}/{project.id}/documents", json=docs, headers={"X-API-Key": ingest_key}
        )
    ).status_code == 202
    monkeypatch.setattr(vectorization_settings, "DOCUMENTS_MAX_PER_REQUEST", 1)
    big = {"documents": [{"external_id": "x", "text": "a"}, {"external_id": "y", "text": "b"}]}
    too_many = await client.post(f"{P}/{project.id}/documents", json=big, headers=bearer(owner))
    assert too_many.status_code == 413
    assert await counts(session, project.id) == (1, 1, 0)


async def test_search_validation_and_access(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    owner = await create_user(session)
    viewer = await create_user(session)
    stranger = await create_user(session)
    project = await create_project(session, owner)
    await add_member(session, project, viewer, "viewer")
    path = f"{P}/{project.id}/search"
    for body in (
        {"query": ""},
        {"query": "   "},
        {"query": "x", "top_k": 0},
        {"query": "x", "top_k": 101},
        {"query": "x", "mode": "magic"},
        {},
    ):
        response = await client.post(path, json=body, headers=bearer(owner))
        assert response.status_code == 422, body
        assert response.json()["code"] == "validation_error"
    for mode in ("semantic", "fulltext", "hybrid"):  # an empty project answers normally
        empty = await client.post(
            path, json={"query": "anything", "mode": mode}, headers=bearer(viewer)
        )
        assert empty.status_code == 200 and empty.json()["items"] == []
    assert (
        await client.post(path, json={"query": "x"}, headers=bearer(stranger))
    ).status_code == 404
    reader_key = (await create_api_key(client, owner, "projects:read"))["key"]
    denied = await client.post(path, json={"query": "x"}, headers={"X-API-Key": reader_key})
    assert denied.status_code == 403 and denied.json()["code"] == "scope_missing"
    search_key = (await create_api_key(client, owner, "search"))["key"]
    assert (
        await client.post(path, json={"query": "x"}, headers={"X-API-Key": search_key})
    ).status_code == 200


async def test_vectorize_jobs(client: httpx.AsyncClient, session: AsyncSession) -> None:
    owner = await create_user(session)
    other = await create_user(session)
    project = await create_project(session, owner)
    others = await create_project(session, other)
    created = await client.post(
        f"{P}/{project.id}/vectorize", json={"scope": "all"}, headers=bearer(owner)
    )
    assert created.status_code == 202
    job = created.json()
    assert job["status"] == "queued" and job["scope"] == "all" and job["model"] == MODEL
    listed = (
        await client.get(f"{P}/{project.id}/vectorization/jobs", headers=bearer(owner))
    ).json()
    assert [j["id"] for j in listed["items"]] == [job["id"]]
    cancelled = await client.post(
        f"{P}/{project.id}/vectorization/jobs/{job['id']}/cancel", headers=bearer(owner)
    )
    assert cancelled.json()["status"] == "cancelled"
    hidden = await client.get(
        f"{P}/{others.id}/vectorization/jobs/{job['id']}", headers=bearer(other)
    )
    assert hidden.status_code == 404 and hidden.json()["code"] == "job_not_found"
    missing = await client.get(
        f"{P}/{project.id}/vectorization/jobs/{uuid.uuid4()}", headers=bearer(owner)
    )
    assert missing.status_code == 404
    bad = await client.post(
        f"{P}/{project.id}/vectorize", json={"scope": "some"}, headers=bearer(owner)
    )
    assert bad.status_code == 422


async def test_changing_the_model_queues_a_reembedding_job(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    owner = await create_user(session)
    project = await create_project(session, owner)
    patched = await client.patch(
        f"{P}/{project.id}",
        headers=bearer(owner),
        json={"settings": {"embedding": {"provider": "hashing", "dimensions": 256}}},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["settings"]["embedding"]["dimensions"] == 256
    jobs = (await client.get(f"{P}/{project.id}/vectorization/jobs", headers=bearer(owner))).json()
    assert [j["model"] for j in jobs["items"]] == ["hashing-v1-256"]
    bad = await client.patch(
        f"{P}/{project.id}",
        headers=bearer(owner),
        json={"settings": {"embedding": {"provider": "nope"}}},
    )
    assert bad.status_code == 422


async def test_pushed_documents_are_not_refetched(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    owner = await create_user(session)
    project = await create_project(session, owner)
    pushed = await client.post(
        f"{P}/{project.id}/documents",
        headers=bearer(owner),
        json={
            "documents": [
                {"external_id": "d", "url": "https://example.com/d", "text": "hello world"}
            ]
        },
    )
    url_id = pushed.json()["items"][0]["url_id"]
    response = await client.post(f"{P}/{project.id}/urls/{url_id}/refetch", headers=bearer(owner))
    assert response.status_code == 409 and response.json()["code"] == "not_fetchable"
