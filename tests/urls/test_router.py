"""URL intake, reads, deletes, snapshots and crawl requests through the API (rolled back)."""

import uuid

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from src.aws.service import get_store
from src.chunks import service as chunks_service
from src.chunks.chunker import chunk_document
from src.chunks.models import Chunk
from src.urls.extract import extract_text
from src.urls.models import Url
from src.urls.service import snapshot_prefix
from tests.factories import add_member, bearer, create_api_key, create_project, create_user

P = "/api/v1/projects"


async def url_count(session: AsyncSession, project_id) -> int:
    return await session.scalar(
        select(func.count()).select_from(Url).where(Url.project_id == project_id)
    )


async def test_intake_answers_per_item_in_order(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    owner = await create_user(session)
    project = await create_project(session, owner)
    inputs = [
        "https://Example.com/a?utm_source=x#top",
        "https://example.com/a",
        "ftp://example.com/f",
        "http://127.0.0.1:8080/",
        "http://169.254.169.254/latest",
        "http://0xa9fea9fe/latest",  # the same address, written as one hex number
        "http://1.2.3.4.5/",
        "https://u:p@example.com/",
        "https://example.com/" + "x" * 2100,
        "not a url",
        "https://example.com/b",
    ]
    response = await client.post(
        f"{P}/{project.id}/urls", json={"urls": inputs}, headers=bearer(owner)
    )
    assert response.status_code == 202, response.text
    body = response.json()
    results = [(i["result"], i["reason"]) for i in body["items"]]
    assert results == [
        ("created", None),
        ("duplicate", None),
        ("rejected", "unsupported_scheme"),
        ("created", None),  # loopback is in FETCH_ALLOWED_NETWORKS for the suite
        ("rejected", "private_address"),
        ("rejected", "private_address"),
        ("rejected", "invalid_host"),
        ("rejected", "credentials_in_url"),
        ("rejected", "too_long"),
        ("rejected", "unsupported_scheme"),
        ("created", None),
    ]
    assert body["items"][0]["id"] == body["items"][1]["id"]
    assert body["items"][0]["url"] == "https://example.com/a"
    assert (body["created"], body["duplicates"], body["rejected"]) == (3, 1, 7)
    again = await client.post(
        f"{P}/{project.id}/urls", json={"urls": ["https://example.com/b"]}, headers=bearer(owner)
    )
    assert again.json()["items"][0]["result"] == "duplicate"
    assert await url_count(session, project.id) == 3


async def test_bulk_limits(client: httpx.AsyncClient, session: AsyncSession) -> None:
    owner = await create_user(session)
    project = await create_project(session, owner)
    too_many = [f"https://example.com/{i}" for i in range(1001)]
    for body in ({"urls": too_many}, {"urls": []}, {"urls": "https://example.com"}, {}):
        response = await client.post(f"{P}/{project.id}/urls", json=body, headers=bearer(owner))
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"
    assert await url_count(session, project.id) == 0
    ok = await client.post(
        f"{P}/{project.id}/urls", json={"urls": too_many[:1000]}, headers=bearer(owner)
    )
    assert ok.status_code == 202 and ok.json()["created"] == 1000


async def test_roles_and_scopes_for_urls(client: httpx.AsyncClient, session: AsyncSession) -> None:
    owner = await create_user(session)
    viewer = await create_user(session)
    editor = await create_user(session)
    stranger = await create_user(session)
    project = await create_project(session, owner)
    await add_member(session, project, viewer, "viewer")
    await add_member(session, project, editor, "editor")
    path = f"{P}/{project.id}/urls"
    body = {"urls": ["https://example.com/x"]}
    denied = await client.post(path, json=body, headers=bearer(viewer))
    assert denied.status_code == 403 and denied.json()["code"] == "project_role_insufficient"
    hidden = await client.post(path, json=body, headers=bearer(stranger))
    assert hidden.status_code == 404 and hidden.json()["code"] == "project_not_found"
    reader_key = (await create_api_key(client, owner, "projects:read"))["key"]
    no_scope = await client.post(path, json=body, headers={"X-API-Key": reader_key})
    assert no_scope.status_code == 403 and no_scope.json()["code"] == "scope_missing"
    assert await url_count(session, project.id) == 0
    assert (await client.post(path, json=body, headers=bearer(editor))).status_code == 202
    writer_key = (await create_api_key(client, owner, "urls:write", project_id=project.id))["key"]
    assert (
        await client.post(
            path, json={"urls": ["https://example.com/y"]}, headers={"X-API-Key": writer_key}
        )
    ).status_code == 202
    assert (await client.get(path, headers=bearer(viewer))).json()["total"] == 2
    assert (await client.get(path, headers=bearer(stranger))).status_code == 404


async def seed_chunks(session: AsyncSession, project_id, url_id, text: str) -> list:
    drafts = chunk_document(extract_text(text.encode()), chunk_size=64, chunk_overlap=8)
    await chunks_service.replace_chunks(
        session=session, project_id=project_id, url_id=url_id, drafts=drafts
    )
    await session.commit()
    return drafts


async def test_url_pages_count_their_own_chunks(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """Pages are cut before chunks are counted: each row's count is its own, the order is
    newest first and stable across pages, and another project's chunks never count."""
    owner = await create_user(session)
    project = await create_project(session, owner)
    other = await create_project(session, owner)
    urls = [f"https://docs.example/p{i}" for i in range(5)]
    added = (
        await client.post(f"{P}/{project.id}/urls", headers=bearer(owner), json={"urls": urls})
    ).json()["items"]
    ids = [uuid.UUID(i["id"]) for i in added]
    for n, url_id in enumerate(ids):
        if n:
            await seed_chunks(session, project.id, url_id, "\n\n".join(["words " * 80] * n))
    (elsewhere,) = (
        await client.post(f"{P}/{other.id}/urls", headers=bearer(owner), json={"urls": urls[:1]})
    ).json()["items"]
    await seed_chunks(session, other.id, uuid.UUID(elsewhere["id"]), "other " * 400)
    actual = dict(
        (
            await session.execute(
                select(Chunk.url_id, func.count())
                .where(Chunk.project_id == project.id)
                .group_by(Chunk.url_id)
            )
        ).all()
    )
    assert len(set(actual.values())) == 4  # the counts differ from URL to URL

    seen = []
    for offset in (0, 2, 4):
        page = (
            await client.get(
                f"{P}/{project.id}/urls",
                params={"limit": 2, "offset": offset},
                headers=bearer(owner),
            )
        ).json()
        assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == offset
        for item in page["items"]:
            assert item["chunk_count"] == actual.get(uuid.UUID(item["id"]), 0)
        seen += [i["id"] for i in page["items"]]
    assert sorted(seen) == sorted(str(i) for i in ids) and len(seen) == 5
    whole = (
        await client.get(f"{P}/{project.id}/urls", params={"limit": 5}, headers=bearer(owner))
    ).json()
    assert [i["id"] for i in whole["items"]] == seen  # pages follow the list's order
    one = (await client.get(f"{P}/{project.id}/urls/{ids[0]}", headers=bearer(owner))).json()
    assert one["chunk_count"] == 0  # its twin in the other project has chunks
    # The project stats sum the same per-URL counts, each project its own.
    listed = (await client.get(P, headers=bearer(owner))).json()["items"]
    totals = {item["id"]: item["stats"]["chunks"] for item in listed}
    other_chunks = await session.scalar(
        select(func.count()).select_from(Chunk).where(Chunk.project_id == other.id)
    )
    assert other_chunks > 0
    assert totals == {str(project.id): sum(actual.values()), str(other.id): other_chunks}


async def test_list_filter_get_and_delete(client: httpx.AsyncClient, session: AsyncSession) -> None:
    owner = await create_user(session)
    project = await create_project(session, owner)
    added = (
        await client.post(
            f"{P}/{project.id}/urls",
            headers=bearer(owner),
            json={"urls": ["https://docs.example/indexes", "https://docs.example/joins"]},
        )
    ).json()["items"]
    first = uuid.UUID(added[0]["id"])
    url = await session.get(Url, first)
    url.status, url.title = "chunked", "Index Types"
    url.snapshot_key = f"{snapshot_prefix(project.id, first)}h.raw"
    await session.commit()
    await get_store().put(url.snapshot_key, b"<p>snap</p>", "text/html")
    await seed_chunks(session, project.id, first, "Alpha beta gamma.\n\nDelta epsilon.")

    listed = (
        await client.get(
            f"{P}/{project.id}/urls", params={"status": "chunked"}, headers=bearer(owner)
        )
    ).json()
    assert [i["id"] for i in listed["items"]] == [str(first)] and listed["items"][0][
        "chunk_count"
    ] >= 1
    by_title = (
        await client.get(f"{P}/{project.id}/urls", params={"q": "index"}, headers=bearer(owner))
    ).json()
    assert by_title["total"] == 1
    bad_status = await client.get(
        f"{P}/{project.id}/urls", params={"status": "done"}, headers=bearer(owner)
    )
    assert bad_status.status_code == 422
    got = (await client.get(f"{P}/{project.id}/urls/{first}", headers=bearer(owner))).json()
    assert got["title"] == "Index Types" and got["status"] == "chunked"
    project_read = (await client.get(f"{P}/{project.id}", headers=bearer(owner))).json()
    assert (
        project_read["stats"]["urls"]["chunked"] == 1
        and project_read["stats"]["urls"]["pending"] == 1
    )
    assert project_read["stats"]["chunks"] >= 1

    snapshot = await client.get(f"{P}/{project.id}/urls/{first}/snapshot", headers=bearer(owner))
    assert snapshot.status_code == 200 and snapshot.content == b"<p>snap</p>"
    assert snapshot.headers["content-disposition"].startswith("attachment")
    assert snapshot.headers["content-security-policy"] == "sandbox"
    not_yet = await client.get(
        f"{P}/{project.id}/urls/{added[1]['id']}/snapshot", headers=bearer(owner)
    )
    assert not_yet.status_code == 404 and not_yet.json()["code"] == "snapshot_not_found"

    assert (
        await client.delete(f"{P}/{project.id}/urls/{first}", headers=bearer(owner))
    ).status_code == 204
    assert (await client.get(f"{P}/{project.id}/urls/{first}", headers=bearer(owner))).json()[
        "code"
    ] == "url_not_found"
    remaining = await session.scalar(
        select(func.count()).select_from(Chunk).where(Chunk.url_id == first)
    )
    assert remaining == 0
    import pytest

    from src.aws.exceptions import ObjectNotFound

    with pytest.raises(ObjectNotFound):
        await get_store().get(f"{snapshot_prefix(project.id, first)}h.raw")


async def test_other_projects_urls_are_404(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    alice = await create_user(session)
    mallory = await create_user(session)
    alices = await create_project(session, alice)
    mallorys = await create_project(session, mallory)
    url_id = (
        await client.post(
            f"{P}/{alices.id}/urls", json={"urls": ["https://a.example/"]}, headers=bearer(alice)
        )
    ).json()["items"][0]["id"]
    for method, path in [
        ("GET", f"{P}/{alices.id}/urls/{url_id}"),
        ("DELETE", f"{P}/{alices.id}/urls/{url_id}"),
        ("POST", f"{P}/{alices.id}/urls/{url_id}/refetch"),
        ("GET", f"{P}/{alices.id}/urls/{url_id}/snapshot"),
        ("GET", f"{P}/{alices.id}/chunks"),
    ]:
        response = await client.request(method, path, headers=bearer(mallory))
        assert response.status_code == 404, path
    # Through her own project id, Alice's URL id is not reachable either.
    own = await client.get(f"{P}/{mallorys.id}/urls/{url_id}", headers=bearer(mallory))
    assert own.status_code == 404 and own.json()["code"] == "url_not_found"
    assert await url_count(session, alices.id) == 1


async def test_refetch_answers_202(client: httpx.AsyncClient, session: AsyncSession) -> None:
    owner = await create_user(session)
    project = await create_project(session, owner)
    url_id = (
        await client.post(
            f"{P}/{project.id}/urls", json={"urls": ["https://a.example/"]}, headers=bearer(owner)
        )
    ).json()["items"][0]["id"]
    response = await client.post(f"{P}/{project.id}/urls/{url_id}/refetch", headers=bearer(owner))
    assert response.status_code == 202 and response.json()["id"] == url_id
    missing = await client.post(
        f"{P}/{project.id}/urls/{uuid.uuid4()}/refetch", headers=bearer(owner)
    )
    assert missing.status_code == 404


async def test_chunks_reads(client: httpx.AsyncClient, session: AsyncSession) -> None:
    owner = await create_user(session)
    project = await create_project(session, owner)
    items = (
        await client.post(
            f"{P}/{project.id}/urls",
            headers=bearer(owner),
            json={"urls": ["https://a.example/1", "https://a.example/2"]},
        )
    ).json()["items"]
    one, two = uuid.UUID(items[0]["id"]), uuid.UUID(items[1]["id"])
    drafts = await seed_chunks(
        session, project.id, one, "\n\n".join(f"Para {i} " * 30 for i in range(4))
    )
    await seed_chunks(session, project.id, two, "Solo paragraph.")
    listed = (
        await client.get(
            f"{P}/{project.id}/chunks", params={"url_id": str(one)}, headers=bearer(owner)
        )
    ).json()
    assert listed["total"] == len(drafts) and [c["ordinal"] for c in listed["items"]] == list(
        range(len(drafts))
    )
    assert listed["items"][0]["url"] == {
        "id": str(one),
        "url": "https://a.example/1",
        "title": None,
    }
    chunk_id = listed["items"][0]["id"]
    got = await client.get(f"{P}/{project.id}/chunks/{chunk_id}", headers=bearer(owner))
    assert got.status_code == 200 and got.json()["token_count"] > 0
    assert (await client.get(f"{P}/{project.id}/chunks", headers=bearer(owner))).json()[
        "total"
    ] == len(drafts) + 1
    assert (
        await client.get(f"{P}/{project.id}/chunks/{uuid.uuid4()}", headers=bearer(owner))
    ).json()["code"] == "chunk_not_found"


async def test_crawl_requests_are_validated(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    owner = await create_user(session)
    viewer = await create_user(session)
    project = await create_project(session, owner)
    await add_member(session, project, viewer, "viewer")
    path = f"{P}/{project.id}/crawls"
    for body in (
        {},
        {"start_url": "https://a.example/", "sitemap_url": "https://a.example/s.xml"},
        {"start_url": "https://a.example/", "max_depth": 6},
        {"start_url": "https://a.example/", "max_pages": 10_001},
        {"start_url": "ftp://a.example/"},
    ):
        response = await client.post(path, json=body, headers=bearer(owner))
        assert response.status_code == 422, body
    assert (
        await client.post(path, json={"start_url": "https://a.example/"}, headers=bearer(viewer))
    ).status_code == 403
    created = await client.post(
        path, json={"start_url": "https://a.example/", "max_pages": 50}, headers=bearer(owner)
    )
    assert created.status_code == 202
    crawl = created.json()
    assert crawl["status"] == "queued"
    assert crawl["params"] == {
        "max_depth": 2,
        "max_pages": 50,
        "same_site": True,
        "include": [],
        "exclude": [],
    }
    got = await client.get(f"{path}/{crawl['id']}", headers=bearer(viewer))
    assert got.status_code == 200 and got.json()["id"] == crawl["id"]
