"""Projects and members: CRUD, stats, ETag/If-Match, roles, and BOLA between accounts."""

import uuid

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from src.projects.models import Project, ProjectMember
from tests.factories import add_member, bearer, create_project, create_user

P = "/api/v1/projects"


async def test_create_get_and_list_with_stats(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    owner = await create_user(session)
    created = await client.post(
        P, json={"name": "Docs", "description": "manual"}, headers=bearer(owner)
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["role"] == "owner" and body["version"] == 1
    assert body["settings"]["chunk_size"] == 400
    assert body["stats"] == {
        "urls": {"pending": 0, "fetching": 0, "chunked": 0, "ready": 0, "failed": 0},
        "urls_total": 0,
        "chunks": 0,
        "last_ingested_at": None,
        "active_shares": 0,
    }
    got = await client.get(f"{P}/{body['id']}", headers=bearer(owner))
    assert got.status_code == 200 and got.headers["ETag"] == '"1"'
    listed = (await client.get(P, headers=bearer(owner))).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == body["id"]


async def test_name_unique_per_owner_among_live_projects(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    owner = await create_user(session)
    other = await create_user(session)
    first = (await client.post(P, json={"name": "Same"}, headers=bearer(owner))).json()
    dup = await client.post(P, json={"name": "SAME"}, headers=bearer(owner))
    assert dup.status_code == 409 and dup.json()["code"] == "project_name_taken"
    assert (await client.post(P, json={"name": "Same"}, headers=bearer(other))).status_code == 201
    assert (await client.delete(f"{P}/{first['id']}", headers=bearer(owner))).status_code == 204
    assert (await client.post(P, json={"name": "Same"}, headers=bearer(owner))).status_code == 201


async def test_invalid_project_payloads_are_422_and_write_nothing(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    owner = await create_user(session)
    for body in (
        {"name": ""},
        {"name": "x" * 201},
        {"name": "ok", "settings": {"chunk_size": 10}},
        {"name": "ok", "settings": {"chunk_size": 200, "chunk_overlap": 150}},
        {"name": "ok", "settings": {"crawl": {"max_depth": 6}}},
        {"name": "ok", "settings": {"unknown": 1}},
    ):
        response = await client.post(P, json=body, headers=bearer(owner))
        assert response.status_code == 422, body
        assert response.json()["code"] == "validation_error"
    count = await session.scalar(
        select(func.count()).select_from(Project).where(Project.owner_id == owner.id)
    )
    assert count == 0


async def test_patch_honours_if_match(client: httpx.AsyncClient, session: AsyncSession) -> None:
    owner = await create_user(session)
    project = await create_project(session, owner)
    url = f"{P}/{project.id}"
    etag = (await client.get(url, headers=bearer(owner))).headers["ETag"]
    ok = await client.patch(
        url, json={"description": "v2"}, headers={**bearer(owner), "If-Match": etag}
    )
    assert ok.status_code == 200 and ok.headers["ETag"] == '"2"' and ok.json()["version"] == 2
    stale = await client.patch(
        url, json={"description": "v3"}, headers={**bearer(owner), "If-Match": etag}
    )
    assert stale.status_code == 412 and stale.json()["code"] == "version_conflict"
    assert (await client.get(url, headers=bearer(owner))).json()["description"] == "v2"
    # Without If-Match the write is accepted (last writer wins, documented).
    assert (
        await client.patch(url, json={"description": "v3"}, headers=bearer(owner))
    ).status_code == 200
    garbage = await client.patch(
        url, json={"description": "x"}, headers={**bearer(owner), "If-Match": "nope"}
    )
    assert garbage.status_code == 412


async def test_stale_if_match_on_delete_is_412(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    owner = await create_user(session)
    project = await create_project(session, owner)
    response = await client.delete(
        f"{P}/{project.id}", headers={**bearer(owner), "If-Match": '"7"'}
    )
    assert response.status_code == 412 and response.json()["code"] == "version_conflict"
    await session.refresh(project)
    assert project.deleted_at is None


async def test_settings_patch_merges_and_validates(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    owner = await create_user(session)
    project = await create_project(session, owner)
    url = f"{P}/{project.id}"
    ok = await client.patch(
        url,
        json={"settings": {"chunk_size": 800, "recrawl_interval_hours": 24}},
        headers=bearer(owner),
    )
    assert ok.status_code == 200
    assert (
        ok.json()["settings"]["chunk_size"] == 800 and ok.json()["settings"]["chunk_overlap"] == 60
    )
    bad = await client.patch(url, json={"settings": {"chunk_overlap": 500}}, headers=bearer(owner))
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_settings"
    assert (await client.get(url, headers=bearer(owner))).json()["settings"]["chunk_overlap"] == 60


async def test_deleted_project_vanishes(client: httpx.AsyncClient, session: AsyncSession) -> None:
    owner = await create_user(session)
    project = await create_project(session, owner)
    assert (await client.delete(f"{P}/{project.id}", headers=bearer(owner))).status_code == 204
    assert (await client.get(f"{P}/{project.id}", headers=bearer(owner))).status_code == 404
    assert (await client.get(P, headers=bearer(owner))).json()["total"] == 0
    await session.refresh(project)
    assert project.deleted_at is not None  # soft: purged later


async def test_roles(client: httpx.AsyncClient, session: AsyncSession) -> None:
    owner = await create_user(session)
    editor = await create_user(session)
    viewer = await create_user(session)
    project = await create_project(session, owner)
    await add_member(session, project, editor, "editor")
    await add_member(session, project, viewer, "viewer")
    url = f"{P}/{project.id}"

    assert (await client.get(url, headers=bearer(viewer))).json()["role"] == "viewer"
    denied = await client.patch(url, json={"description": "v"}, headers=bearer(viewer))
    assert denied.status_code == 403 and denied.json()["code"] == "project_role_insufficient"
    assert (
        await client.patch(url, json={"description": "e"}, headers=bearer(editor))
    ).status_code == 200
    no_delete = await client.delete(url, headers=bearer(editor))
    assert no_delete.status_code == 403 and no_delete.json()["code"] == "project_role_insufficient"
    await session.refresh(project)
    assert project.deleted_at is None
    listed = (await client.get(P, headers=bearer(editor))).json()
    assert [p["role"] for p in listed["items"]] == ["editor"]


async def test_members_management(client: httpx.AsyncClient, session: AsyncSession) -> None:
    owner = await create_user(session)
    friend = await create_user(session)
    project = await create_project(session, owner)
    url = f"{P}/{project.id}/members"
    added = await client.post(
        url, json={"email": friend.email.upper(), "role": "viewer"}, headers=bearer(owner)
    )
    assert added.status_code == 201 and added.json()["role"] == "viewer"
    again = await client.post(
        url, json={"email": friend.email, "role": "editor"}, headers=bearer(owner)
    )
    assert again.status_code == 409 and again.json()["code"] == "member_exists"
    ghost = await client.post(
        url, json={"email": "ghost@example.com", "role": "viewer"}, headers=bearer(owner)
    )
    assert ghost.status_code == 404 and ghost.json()["code"] == "user_not_found"
    as_owner = await client.post(
        url, json={"email": friend.email, "role": "owner"}, headers=bearer(owner)
    )
    assert as_owner.status_code == 422
    members = (await client.get(url, headers=bearer(friend))).json()
    assert {m["role"] for m in members["items"]} == {"owner", "viewer"}
    # A viewer cannot add members or remove the owner; it can leave.
    assert (
        await client.post(
            url, json={"email": owner.email, "role": "viewer"}, headers=bearer(friend)
        )
    ).status_code == 403
    assert (await client.delete(f"{url}/{owner.id}", headers=bearer(owner))).json()[
        "code"
    ] == "cannot_remove_owner"
    assert (await client.delete(f"{url}/{friend.id}", headers=bearer(friend))).status_code == 204
    assert (await client.get(f"{P}/{project.id}", headers=bearer(friend))).status_code == 404
    assert (await client.delete(f"{url}/{friend.id}", headers=bearer(owner))).status_code == 404


async def test_other_users_get_404_everywhere(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    alice = await create_user(session)
    mallory = await create_user(session)
    project = await create_project(session, alice)
    base = f"{P}/{project.id}"
    for method, path, body in [
        ("GET", base, None),
        ("PATCH", base, {"name": "pwned"}),
        ("DELETE", base, None),
        ("GET", f"{base}/members", None),
        ("POST", f"{base}/members", {"email": mallory.email, "role": "editor"}),
        ("DELETE", f"{base}/members/{alice.id}", None),
    ]:
        response = await client.request(method, path, json=body, headers=bearer(mallory))
        assert response.status_code == 404, (method, path)
        assert response.json()["code"] == "project_not_found"
    unknown = await client.get(f"{P}/{uuid.uuid4()}", headers=bearer(mallory))
    assert unknown.json() == (await client.get(base, headers=bearer(mallory))).json()
    await session.refresh(project)
    assert project.name != "pwned" and project.deleted_at is None
    members = await session.scalar(
        select(func.count())
        .select_from(ProjectMember)
        .where(ProjectMember.project_id == project.id)
    )
    assert members == 1
    assert (await client.get(P, headers=bearer(mallory))).json()["total"] == 0


async def test_nul_characters_are_refused_not_500(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    owner = await create_user(session)
    body = await client.post(P, json={"name": "a\u0000b"}, headers=bearer(owner))
    assert body.status_code == 422 and body.json()["code"] == "validation_error"
    query = await client.get(P, params={"q": "a\x00b"}, headers=bearer(owner))
    assert query.status_code == 422 and query.json()["code"] == "validation_error"
    count = await session.scalar(
        select(func.count()).select_from(Project).where(Project.owner_id == owner.id)
    )
    assert count == 0
