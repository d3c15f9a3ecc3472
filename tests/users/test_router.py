"""Profile, password change and admin management, with two real accounts (BOLA)."""

import uuid

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from src.auth.models import RefreshToken
from src.users.constants import Role
from src.users.models import User
from tests.factories import PASSWORD, bearer, create_user, unique_email

ME = "/api/v1/users/me"


async def test_get_and_update_my_name(client: httpx.AsyncClient, session: AsyncSession) -> None:
    user = await create_user(session, full_name="Old")
    response = await client.patch(ME, json={"full_name": "New Name"}, headers=bearer(user))
    assert response.status_code == 200
    assert response.json()["full_name"] == "New Name"
    assert (await client.get(ME, headers=bearer(user))).json()["full_name"] == "New Name"


async def test_email_change_needs_the_current_password(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    new_email = unique_email("new")
    missing = await client.patch(ME, json={"email": new_email}, headers=bearer(user))
    assert missing.status_code == 422 and missing.json()["code"] == "validation_error"
    wrong = await client.patch(
        ME, json={"email": new_email, "current_password": "nope nope nope"}, headers=bearer(user)
    )
    assert wrong.status_code == 403 and wrong.json()["code"] == "invalid_current_password"
    assert (await client.get(ME, headers=bearer(user))).json()["email"] == user.email
    ok = await client.patch(
        ME, json={"email": new_email.upper(), "current_password": PASSWORD}, headers=bearer(user)
    )
    assert ok.status_code == 200 and ok.json()["email"] == new_email


async def test_email_change_to_a_taken_email_is_409(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    alice = await create_user(session)
    bob = await create_user(session)
    response = await client.patch(
        ME, json={"email": alice.email.upper(), "current_password": PASSWORD}, headers=bearer(bob)
    )
    assert response.status_code == 409 and response.json()["code"] == "email_taken"
    assert (await client.get(ME, headers=bearer(bob))).json()["email"] == bob.email


async def test_password_change_revokes_sessions(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    tokens = (
        await client.post("/api/v1/auth/login", data={"username": user.email, "password": PASSWORD})
    ).json()
    old_access = {"Authorization": f"Bearer {tokens['access_token']}"}
    wrong = await client.post(
        f"{ME}/password",
        json={"current_password": "not it at all", "new_password": "a brand new password"},
        headers=old_access,
    )
    assert wrong.status_code == 403 and wrong.json()["code"] == "invalid_current_password"
    weak = await client.post(
        f"{ME}/password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=old_access,
    )
    assert weak.status_code == 422

    changed = await client.post(
        f"{ME}/password",
        json={"current_password": PASSWORD, "new_password": "a brand new password"},
        headers=old_access,
    )
    assert changed.status_code == 204
    assert (await client.get(ME, headers=old_access)).status_code == 401
    refresh = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refresh.status_code == 401
    live = await session.scalar(
        select(func.count())
        .select_from(RefreshToken)
        .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
    )
    assert live == 0
    old_login = await client.post(
        "/api/v1/auth/login", data={"username": user.email, "password": PASSWORD}
    )
    assert old_login.status_code == 401
    new_login = await client.post(
        "/api/v1/auth/login", data={"username": user.email, "password": "a brand new password"}
    )
    assert new_login.status_code == 200
    fresh = {"Authorization": f"Bearer {new_login.json()['access_token']}"}
    assert (await client.get(ME, headers=fresh)).status_code == 200


async def test_admin_routes_are_403_for_users(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    other = await create_user(session)
    for method, path in [
        ("GET", "/api/v1/users"),
        ("GET", f"/api/v1/users/{other.id}"),
        ("PATCH", f"/api/v1/users/{other.id}"),
    ]:
        response = await client.request(
            method,
            path,
            headers=bearer(user),
            json={"role": "admin"} if method == "PATCH" else None,
        )
        assert response.status_code == 403, path
        assert response.json()["code"] == "admin_required"
    assert (await session.get(User, other.id)).role == "user"
    assert (await client.get("/api/v1/users")).status_code == 401


async def test_admin_lists_searches_and_filters(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    admin = await create_user(session, role=Role.ADMIN)
    tag = uuid.uuid4().hex[:8]
    a = await create_user(session, email=f"alpha-{tag}@example.com", full_name="Alpha")
    b = await create_user(session, email=f"beta-{tag}@example.com", full_name=f"Beta {tag}")
    b.is_active = False
    await session.commit()

    found = (await client.get("/api/v1/users", params={"q": tag}, headers=bearer(admin))).json()
    assert found["total"] == 2 and {u["id"] for u in found["items"]} == {str(a.id), str(b.id)}
    inactive = (
        await client.get(
            "/api/v1/users", params={"q": tag, "is_active": "false"}, headers=bearer(admin)
        )
    ).json()
    assert [u["id"] for u in inactive["items"]] == [str(b.id)]
    admins = (
        await client.get(
            "/api/v1/users", params={"role": "admin", "limit": 100}, headers=bearer(admin)
        )
    ).json()
    assert str(admin.id) in {u["id"] for u in admins["items"]}
    paged = (
        await client.get(
            "/api/v1/users", params={"q": tag, "limit": 1, "offset": 1}, headers=bearer(admin)
        )
    ).json()
    assert paged["total"] == 2 and len(paged["items"]) == 1 and paged["limit"] == 1
    too_big = await client.get("/api/v1/users", params={"limit": 1000}, headers=bearer(admin))
    assert too_big.status_code == 422
    wildcard = (await client.get("/api/v1/users", params={"q": "%"}, headers=bearer(admin))).json()
    assert wildcard["total"] == 0  # LIKE wildcards are matched literally


async def test_admin_promotes_and_deactivates(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    admin = await create_user(session, role=Role.ADMIN)
    user = await create_user(session)
    got = await client.get(f"/api/v1/users/{user.id}", headers=bearer(admin))
    assert got.status_code == 200 and got.json()["email"] == user.email
    promoted = await client.patch(
        f"/api/v1/users/{user.id}", json={"role": "admin"}, headers=bearer(admin)
    )
    assert promoted.json()["role"] == "admin"
    off = await client.patch(
        f"/api/v1/users/{user.id}", json={"is_active": False}, headers=bearer(admin)
    )
    assert off.json()["is_active"] is False
    assert (await client.get(ME, headers=bearer(user))).status_code == 401
    missing = await client.get(f"/api/v1/users/{uuid.uuid4()}", headers=bearer(admin))
    assert missing.status_code == 404 and missing.json()["code"] == "user_not_found"
    bad_role = await client.patch(
        f"/api/v1/users/{user.id}", json={"role": "root"}, headers=bearer(admin)
    )
    assert bad_role.status_code == 422


async def test_admin_cannot_lock_themselves_out(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    admin = await create_user(session, role=Role.ADMIN)
    for change in ({"role": "user"}, {"is_active": False}):
        response = await client.patch(
            f"/api/v1/users/{admin.id}", json=change, headers=bearer(admin)
        )
        assert response.status_code == 409 and response.json()["code"] == "cannot_modify_self"
    await session.refresh(admin)
    assert admin.role == "admin" and admin.is_active


async def test_profiles_are_per_user(client: httpx.AsyncClient, session: AsyncSession) -> None:
    alice = await create_user(session, full_name="Alice")
    bob = await create_user(session, full_name="Bob")
    await client.patch(ME, json={"full_name": "Bobby"}, headers=bearer(bob))
    assert (await client.get(ME, headers=bearer(alice))).json()["full_name"] == "Alice"
    # There is no user-facing route to another user's profile.
    assert (await client.get(f"/api/v1/users/{alice.id}", headers=bearer(bob))).status_code == 403
