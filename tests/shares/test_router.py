"""Share links: management, the anonymous read/search surface, and every way a token dies."""

import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from src.shares.config import shares_settings
from src.shares.models import Share
from tests.factories import add_member, bearer, create_project, create_user
from tests.vectorization.test_router import TEXTS, push, vector_items

P = "/api/v1/projects"
S = "/api/v1/shared"


async def share_count(session: AsyncSession, project_id) -> int:
    return await session.scalar(
        select(func.count()).select_from(Share).where(Share.project_id == project_id)
    )


async def make_share(client, project, user, **body) -> dict:
    response = await client.post(
        f"{P}/{project.id}/shares", json={"name": "link", **body}, headers=bearer(user)
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_owner_shares_anonymous_reads_and_searches(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    owner = await create_user(session)
    project = await create_project(session, owner, name="Shared docs")
    await push(client, project, bearer(owner), vector_items(TEXTS))
    share = await make_share(client, project, owner, scopes=["read", "search"])
    token = share["token"]
    assert token.startswith("pjs_") and len(token) >= 4 + 32 and share["prefix"] == token[:12]
    stored = await session.get(Share, share["id"])
    assert stored.token_hash != token and len(stored.token_hash) == 64

    info = await client.get(f"{S}/{token}")
    assert info.status_code == 200
    body = info.json()
    assert body["name"] == "Shared docs" and body["stats"]["urls"]["ready"] == 4
    assert body["stats"]["chunks"] == 4  # one chunk per pushed vector
    assert "owner" not in str(body) and "settings" not in body and owner.email not in info.text
    urls = (await client.get(f"{S}/{token}/urls")).json()
    assert urls["total"] == 4 and set(urls["items"][0]) == {
        "id",
        "url",
        "title",
        "status",
        "fetched_at",
    }
    chunks = (
        await client.get(f"{S}/{token}/chunks", params={"url_id": urls["items"][0]["id"]})
    ).json()
    assert chunks["total"] == 1
    found = await client.post(
        f"{S}/{token}/search", json={"query": "hash index equality", "mode": "fulltext"}
    )
    assert found.status_code == 200 and found.json()["items"][0]["text"] == TEXTS["hash"]
    via_header = await client.get(f"{S}/_/urls", headers={"Authorization": f"Share {token}"})
    assert via_header.status_code == 200 and via_header.json()["total"] == 4
    listed = (await client.get(f"{P}/{project.id}/shares", headers=bearer(owner))).json()
    assert listed["total"] == 1 and "token" not in listed["items"][0]
    assert token not in (await client.get(f"{P}/{project.id}/shares", headers=bearer(owner))).text
    assert (await client.get(f"{P}/{project.id}", headers=bearer(owner))).json()["stats"][
        "active_shares"
    ] == 1


async def test_read_only_link_cannot_search(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    owner = await create_user(session)
    project = await create_project(session, owner)
    token = (await make_share(client, project, owner))["token"]
    response = await client.post(f"{S}/{token}/search", json={"query": "x"})
    assert response.status_code == 403 and response.json()["code"] == "scope_missing"
    assert (await client.get(f"{S}/{token}/urls")).status_code == 200


async def test_dead_tokens_all_look_the_same(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    owner = await create_user(session)
    project = await create_project(session, owner)
    revoked = await make_share(client, project, owner)
    expired = await make_share(
        client, project, owner, expires_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat()
    )
    exhausted = await make_share(client, project, owner, max_uses=2)
    live = await make_share(client, project, owner)
    assert (
        await client.delete(f"{P}/{project.id}/shares/{revoked['id']}", headers=bearer(owner))
    ).status_code == 204
    await session.execute(
        text("UPDATE shares SET expires_at = now() - interval '1 s' WHERE id = :i"),
        {"i": expired["id"]},
    )
    assert (await client.get(f"{S}/{exhausted['token']}")).status_code == 200
    assert (await client.get(f"{S}/{exhausted['token']}/urls")).status_code == 200
    one_off = live["token"][:-1] + ("A" if live["token"][-1] != "A" else "B")
    answers = []
    for token in (
        revoked["token"],
        expired["token"],
        exhausted["token"],
        one_off,
        "pjs_nope",
        "garbage",
    ):
        response = await client.get(f"{S}/{token}")
        assert response.status_code == 404, token
        answers.append(response.json())
    assert all(a == answers[0] for a in answers) and answers[0]["code"] == "share_not_found"
    assert (await client.get(f"{S}/_/urls")).json()["code"] == "share_not_found"  # no header
    assert (await client.get(f"{S}/{live['token']}")).status_code == 200
    await session.execute(
        text("UPDATE projects SET deleted_at = now() WHERE id = :p"), {"p": project.id}
    )
    gone = await client.get(f"{S}/{live['token']}")
    assert gone.status_code == 404 and gone.json()["code"] == "share_not_found"


async def test_bad_share_requests_write_nothing(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    owner = await create_user(session)
    viewer = await create_user(session)
    stranger = await create_user(session)
    project = await create_project(session, owner)
    await add_member(session, project, viewer, "viewer")
    path = f"{P}/{project.id}/shares"
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    for body in (
        {"name": "x", "expires_at": past},
        {"name": "x", "scopes": ["admin"]},
        {"name": "x", "scopes": ["search"]},
        {"name": ""},
        {"name": "x", "max_uses": 0},
    ):
        response = await client.post(path, json=body, headers=bearer(owner))
        assert response.status_code == 422, body
        assert response.json()["code"] == "validation_error"
    denied = await client.post(path, json={"name": "x"}, headers=bearer(viewer))
    assert denied.status_code == 403 and denied.json()["code"] == "project_role_insufficient"
    assert (await client.get(path, headers=bearer(viewer))).status_code == 403
    hidden = await client.post(path, json={"name": "x"}, headers=bearer(stranger))
    assert hidden.status_code == 404 and hidden.json()["code"] == "project_not_found"
    assert await share_count(session, project.id) == 0
    share = await make_share(client, project, owner)
    other = await create_project(session, stranger)
    cross = await client.delete(f"{P}/{other.id}/shares/{share['id']}", headers=bearer(stranger))
    assert cross.status_code == 404
    assert (await session.get(Share, share["id"])).revoked_at is None


async def test_rate_limit_per_token(
    client: httpx.AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await create_user(session)
    project = await create_project(session, owner)
    token = (await make_share(client, project, owner))["token"]
    monkeypatch.setattr(shares_settings, "SHARE_RATE_LIMIT_PER_MINUTE", 3)
    import src.shares.service as share_service

    frozen = share_service.time.time()  # one fixed window, whatever the wall clock does
    monkeypatch.setattr(share_service.time, "time", lambda: frozen)
    statuses = [(await client.get(f"{S}/{token}")).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = await client.get(f"{S}/{token}")
    assert (
        limited.json()["code"] == "share_rate_limited" and int(limited.headers["Retry-After"]) >= 1
    )


async def test_hot_link_usage_is_coalesced(
    client: httpx.AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await create_user(session)
    project = await create_project(session, owner)
    share = await make_share(client, project, owner)
    monkeypatch.setattr(shares_settings, "SHARE_USAGE_FLUSH_SECONDS", 3600)
    for _ in range(5):
        await client.get(f"{S}/{share['token']}")
    row = await session.scalar(
        select(Share.use_count)
        .where(Share.id == share["id"])
        .execution_options(populate_existing=True)
    )
    assert row <= 1  # at most the first use was written; the rest wait for the next flush


def test_share_tokens_are_redacted_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    from src.log import KeyValueFormatter

    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, "http.request", (), None
    )
    record.fields = {"path": "/api/v1/shared/pjs_AbCdEfGhIjKlMnOpQrStUvWxYz012345/urls"}
    line = KeyValueFormatter().format(record)
    assert "pjs_AbCdEfGh" in line and "IjKlMnOpQrStUvWxYz012345" not in line
