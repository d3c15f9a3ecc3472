"""API keys: shown once, hashed, scoped, project-bound, revocable; coalesced last_used_at."""

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from src.auth.models import ApiKey
from src.auth.utils import sha256_hex
from tests.factories import bearer, create_api_key, create_project, create_user

KEYS = "/api/v1/auth/api-keys"
P = "/api/v1/projects"


async def test_key_is_shown_once_and_stored_hashed(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    created = await create_api_key(client, user, "projects:read", "search")
    key = created["key"]
    assert key.startswith(created["prefix"] + "_") and created["prefix"].startswith("pjx_")
    assert len(key) >= len("pjx_") + 8 + 43
    assert created["scopes"] == ["projects:read", "search"]
    row = await session.scalar(select(ApiKey).where(ApiKey.prefix == created["prefix"]))
    assert row.key_hash == sha256_hex(key) and key not in str(row.__dict__)
    listed = (await client.get(KEYS, headers=bearer(user))).json()
    assert listed["total"] == 1 and "key" not in listed["items"][0]
    assert key not in (await client.get(KEYS, headers=bearer(user))).text


async def test_key_authenticates_by_header_and_bearer(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    await create_project(session, user, name="visible")
    key = (await create_api_key(client, user, "projects:read"))["key"]
    for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
        response = await client.get(P, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["items"][0]["name"] == "visible"


async def test_key_cannot_manage_accounts(client: httpx.AsyncClient, session: AsyncSession) -> None:
    user = await create_user(session)
    key = (await create_api_key(client, user, *["projects:read", "projects:write"]))["key"]
    for method, path in [("GET", KEYS), ("POST", KEYS), ("GET", "/api/v1/users/me")]:
        response = await client.request(
            method,
            path,
            headers={"X-API-Key": key},
            json={"name": "x", "scopes": ["search"]} if method == "POST" else None,
        )
        assert response.status_code == 403, path
        assert response.json()["code"] == "user_token_required"


async def test_scope_missing_is_403(client: httpx.AsyncClient, session: AsyncSession) -> None:
    user = await create_user(session)
    project = await create_project(session, user)
    key = (await create_api_key(client, user, "search"))["key"]
    listing = await client.get(P, headers={"X-API-Key": key})
    assert listing.status_code == 403 and listing.json()["code"] == "scope_missing"
    reader = (await create_api_key(client, user, "projects:read"))["key"]
    write = await client.patch(
        f"{P}/{project.id}", json={"name": "new"}, headers={"X-API-Key": reader}
    )
    assert write.status_code == 403 and write.json()["code"] == "scope_missing"
    create = await client.post(P, json={"name": "by key"}, headers={"X-API-Key": reader})
    assert create.status_code == 403 and create.json()["code"] == "scope_missing"
    await session.refresh(project)
    assert project.name != "new"


async def test_key_bound_to_another_project_gets_404(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    bound_to = await create_project(session, user)
    other = await create_project(session, user)
    key = (
        await create_api_key(
            client, user, "projects:read", "projects:write", project_id=bound_to.id
        )
    )["key"]
    headers = {"X-API-Key": key}
    assert (await client.get(f"{P}/{bound_to.id}", headers=headers)).status_code == 200
    response = await client.get(f"{P}/{other.id}", headers=headers)
    assert response.status_code == 404 and response.json()["code"] == "project_not_found"
    assert [p["id"] for p in (await client.get(P, headers=headers)).json()["items"]] == [
        str(bound_to.id)
    ]
    create = await client.post(P, json={"name": "escape"}, headers=headers)
    assert create.status_code == 403 and create.json()["code"] == "api_key_bound_to_project"


async def test_key_cannot_exceed_owner_rights(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    owner = await create_user(session)
    stranger = await create_user(session)
    project = await create_project(session, owner)
    bind = await client.post(
        KEYS,
        json={"name": "k", "scopes": ["projects:read"], "project_id": str(project.id)},
        headers=bearer(stranger),
    )
    assert bind.status_code == 404 and bind.json()["code"] == "project_not_found"
    key = (await create_api_key(client, stranger, "projects:read", "projects:write"))["key"]
    assert (await client.get(f"{P}/{project.id}", headers={"X-API-Key": key})).status_code == 404


async def test_revoked_expired_unknown_keys_are_401(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    revoked = await create_api_key(client, user, "projects:read")
    assert (await client.delete(f"{KEYS}/{revoked['id']}", headers=bearer(user))).status_code == 204
    expiring = await create_api_key(
        client,
        user,
        "projects:read",
        expires_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat(),
    )
    await session.execute(
        text("UPDATE api_keys SET expires_at = now() - interval '1 s' WHERE id = :i"),
        {"i": expiring["id"]},
    )
    for key in (revoked["key"], expiring["key"], "pjx_deadbeef_" + "A" * 43):
        response = await client.get(P, headers={"X-API-Key": key})
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_token"
        assert "WWW-Authenticate" in response.headers


async def test_past_expiry_and_unknown_scope_are_422(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    for body in (
        {"name": "k", "scopes": ["projects:read"], "expires_at": past},
        {"name": "k", "scopes": ["root"]},
        {"name": "k", "scopes": []},
        {"name": "", "scopes": ["search"]},
    ):
        response = await client.post(KEYS, json=body, headers=bearer(user))
        assert response.status_code == 422, body
    assert (await client.get(KEYS, headers=bearer(user))).json()["total"] == 0


async def test_last_used_at_is_coalesced(client: httpx.AsyncClient, session: AsyncSession) -> None:
    user = await create_user(session)
    created = await create_api_key(client, user, "projects:read")
    headers = {"X-API-Key": created["key"]}
    await client.get(P, headers=headers)
    first = await session.scalar(select(ApiKey.last_used_at).where(ApiKey.id == created["id"]))
    assert first is not None
    await client.get(P, headers=headers)
    again = await session.scalar(
        select(ApiKey.last_used_at)
        .where(ApiKey.id == created["id"])
        .execution_options(populate_existing=True)
    )
    assert again == first  # no write within the resolution window


async def test_keys_of_another_account_are_invisible(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    alice = await create_user(session)
    bob = await create_user(session)
    alices = await create_api_key(client, alice, "projects:read")
    assert (await client.get(KEYS, headers=bearer(bob))).json()["total"] == 0
    response = await client.delete(f"{KEYS}/{alices['id']}", headers=bearer(bob))
    assert response.status_code == 404 and response.json()["code"] == "api_key_not_found"
    assert (await client.get(P, headers={"X-API-Key": alices["key"]})).status_code == 200
