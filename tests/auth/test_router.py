"""Accounts, login, token rotation, brute-force limits (HTTP through the ASGI app)."""

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from jose import jwt
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from src.auth.models import LoginThrottle, RefreshToken
from src.config import get_settings
from src.users.models import User
from tests.factories import PASSWORD, bearer, create_user, unique_email

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/users/me"


async def count_users(session: AsyncSession, email: str) -> int:
    return await session.scalar(
        select(func.count()).select_from(User).where(func.lower(User.email) == email.lower())
    )


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post(LOGIN, data={"username": email, "password": password})


# --- registration --------------------------------------------------------------------------


async def test_register_normalises_email_and_hides_hash(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    email = unique_email("Mixed").replace("mixed", "MiXeD")
    response = await client.post(
        REGISTER, json={"email": email, "password": PASSWORD, "full_name": "Ada"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["email"] == email.lower()
    assert body["role"] == "user" and body["is_active"] is True
    assert "password" not in response.text and "hash" not in response.text
    stored = await session.scalar(
        select(User.password_hash).where(User.id == uuid.UUID(body["id"]))
    )
    assert stored.startswith("$argon2id$")


async def test_duplicate_email_any_case_is_409(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    email = unique_email()
    assert (
        await client.post(REGISTER, json={"email": email, "password": PASSWORD})
    ).status_code == 201
    again = await client.post(REGISTER, json={"email": email.upper(), "password": PASSWORD + "x"})
    assert again.status_code == 409
    assert again.json()["code"] == "email_taken"
    assert await count_users(session, email) == 1


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("short", "at least 10 characters"),
        ("é" * 600, "at most 1024 bytes"),
        ("SAME-AS-EMAIL", "must not be the email"),
    ],
)
async def test_weak_password_is_422_naming_the_rule(
    client: httpx.AsyncClient, session: AsyncSession, password: str, rule: str
) -> None:
    email = unique_email()
    if password == "SAME-AS-EMAIL":
        password = email.upper()
    response = await client.post(REGISTER, json={"email": email, "password": password})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error"
    assert rule in body["detail"]
    assert await count_users(session, email) == 0


@pytest.mark.parametrize("email", ["not-an-email", "a@", "@b.example", "a b@c.example", ""])
async def test_malformed_email_is_422(
    client: httpx.AsyncClient, session: AsyncSession, email: str
) -> None:
    response = await client.post(REGISTER, json={"email": email, "password": PASSWORD})
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert (
        await session.scalar(select(func.count()).select_from(User).where(User.email == email)) == 0
    )


# --- login ---------------------------------------------------------------------------------


async def test_login_returns_token_pair(client: httpx.AsyncClient, session: AsyncSession) -> None:
    user = await create_user(session)
    response = await login(client, user.email.upper())
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 15 * 60
    claims = jwt.get_unverified_claims(body["access_token"])
    assert {"sub", "exp", "iat", "jti", "type"} <= claims.keys() and claims["type"] == "access"
    me = await client.get(ME, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json()["id"] == str(user.id)
    stored = await session.scalar(
        select(RefreshToken.token_hash).where(RefreshToken.user_id == user.id)
    )
    assert stored != body["refresh_token"] and len(stored) == 64  # only the SHA-256 is kept


async def test_unknown_email_and_wrong_password_look_the_same(
    client: httpx.AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    from src.auth import utils

    verified: list[str] = []
    real_verify = utils.password_context.verify_and_update
    real_plain = utils.password_context.verify
    monkeypatch.setattr(
        utils.password_context,
        "verify_and_update",
        lambda p, h: verified.append("user") or real_verify(p, h),
    )
    monkeypatch.setattr(
        utils.password_context, "verify", lambda p, h: verified.append("dummy") or real_plain(p, h)
    )
    user = await create_user(session)
    wrong = await login(client, user.email, "wrong password!!")
    unknown = await login(client, unique_email("ghost"))
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["code"] == "invalid_credentials"
    assert wrong.headers["WWW-Authenticate"] == "Bearer"
    assert verified == ["user", "dummy"]  # both paths spend one argon2 verification


async def test_outdated_hash_is_upgraded_at_login(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    from passlib.hash import argon2

    user = await create_user(session)
    weak = argon2.using(memory_cost=8192, time_cost=1, parallelism=1).hash(PASSWORD)
    user.password_hash = weak
    await session.commit()
    assert (await login(client, user.email)).status_code == 200
    await session.refresh(user)
    assert user.password_hash != weak and "m=8192" not in user.password_hash


async def test_deactivated_user_cannot_login_and_tokens_stop(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    headers = bearer(user)
    assert (await client.get(ME, headers=headers)).status_code == 200
    user.is_active = False
    await session.commit()
    assert (await client.get(ME, headers=headers)).status_code == 401
    assert (await login(client, user.email)).json()["code"] == "invalid_credentials"


# --- bad tokens ----------------------------------------------------------------------------


def forge(claims: dict, *, key: str | None = None, algorithm: str = "HS256") -> str:
    return jwt.encode(
        claims, key or get_settings().SECRET_KEY.get_secret_value(), algorithm=algorithm
    )


def base_claims(user_id: uuid.UUID, **over) -> dict:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "iat": int(now.timestamp()) + 1,
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "jti": uuid.uuid4().hex,
        "type": "access",
    }
    claims.update(over)
    return claims


def alg_none(claims: dict) -> str:
    import base64
    import json

    def b64(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


async def test_bad_tokens_are_401_with_www_authenticate(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    good = forge(base_claims(user.id))
    assert (await client.get(ME, headers={"Authorization": f"Bearer {good}"})).status_code == 200
    tampered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    expired = forge(base_claims(user.id, exp=int(datetime.now(UTC).timestamp()) - 10))
    cases = {
        "missing": {},
        "garbage": {"Authorization": "Bearer not.a.jwt"},
        "tampered": {"Authorization": f"Bearer {tampered}"},
        "expired": {"Authorization": f"Bearer {expired}"},
        "alg none": {"Authorization": f"Bearer {alg_none(base_claims(user.id))}"},
        "other key": {"Authorization": f"Bearer {forge(base_claims(user.id), key='x' * 40)}"},
        "wrong type": {"Authorization": f"Bearer {forge(base_claims(user.id, type='refresh'))}"},
        "unknown user": {"Authorization": f"Bearer {forge(base_claims(uuid.uuid4()))}"},
        "no exp": {
            "Authorization": "Bearer "
            + forge({k: v for k, v in base_claims(user.id).items() if k != "exp"})
        },
    }
    for name, headers in cases.items():
        response = await client.get(ME, headers=headers)
        assert response.status_code == 401, name
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), name
        assert response.json()["code"] in {"not_authenticated", "invalid_token"}, name


async def test_refresh_token_is_not_an_access_token(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    tokens = (await login(client, user.email)).json()
    response = await client.get(ME, headers={"Authorization": f"Bearer {tokens['refresh_token']}"})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


# --- refresh rotation ----------------------------------------------------------------------


async def test_refresh_rotates_and_reuse_revokes_family(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    first = (await login(client, user.email)).json()
    second = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert set(second) == {"access_token", "refresh_token", "token_type", "expires_in"}

    reused = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    assert reused.json()["code"] == "refresh_token_reused"
    assert "WWW-Authenticate" in reused.headers
    # The whole family is revoked, including the newest token; and that stuck (committed).
    newest = await client.post(REFRESH, json={"refresh_token": second["refresh_token"]})
    assert newest.status_code == 401 and newest.json()["code"] == "invalid_refresh_token"
    live = await session.scalar(
        select(func.count())
        .select_from(RefreshToken)
        .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
    )
    assert live == 0


async def test_unknown_and_expired_refresh_tokens_are_401(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    unknown = await client.post(REFRESH, json={"refresh_token": "nope"})
    assert unknown.status_code == 401 and unknown.json()["code"] == "invalid_refresh_token"
    user = await create_user(session)
    tokens = (await login(client, user.email)).json()
    await session.execute(
        text(
            "UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE user_id = :u"
        ),
        {"u": user.id},
    )
    expired = await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
    assert expired.status_code == 401 and expired.json()["code"] == "invalid_refresh_token"


async def test_logout_revokes_the_family(client: httpx.AsyncClient, session: AsyncSession) -> None:
    user = await create_user(session)
    first = (await login(client, user.email)).json()
    second = (await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})).json()
    other_session = (await login(client, user.email)).json()
    assert (
        await client.post(LOGOUT, json={"refresh_token": second["refresh_token"]})
    ).status_code == 204
    assert (
        await client.post(REFRESH, json={"refresh_token": second["refresh_token"]})
    ).status_code == 401
    # Another login (another family) is untouched.
    assert (
        await client.post(REFRESH, json={"refresh_token": other_session["refresh_token"]})
    ).status_code == 200
    assert (await client.post(LOGOUT, json={"refresh_token": "unknown"})).status_code == 204


# --- brute force ---------------------------------------------------------------------------


async def test_five_failures_lock_the_account_with_retry_after(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    for _ in range(5):
        assert (await login(client, user.email, "wrong password!!")).status_code == 401
    locked = await login(client, user.email)  # even the right password waits
    assert locked.status_code == 429
    assert locked.json()["code"] == "too_many_login_attempts"
    assert 1 <= int(locked.headers["Retry-After"]) <= 30
    # The failures were committed despite the 401s.
    row = await session.get(LoginThrottle, f"acct:{user.email}")
    assert row is not None and row.failures == 5

    # The lock is time-bounded: once it lapses, a successful login resets the counter.
    await session.execute(
        text("UPDATE login_throttles SET locked_until = now() - interval '1 s' WHERE key = :k"),
        {"k": f"acct:{user.email}"},
    )
    assert (await login(client, user.email)).status_code == 200
    remaining = await session.scalar(
        select(func.count())
        .select_from(LoginThrottle)
        .where(LoginThrottle.key == f"acct:{user.email}")
    )
    assert remaining == 0


async def test_backoff_grows_exponentially_and_is_capped(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    key = f"acct:{user.email}"
    waits = []
    for _ in range(10):
        await login(client, user.email, "wrong password!!")
        row = (
            await session.execute(
                text(
                    "SELECT extract(epoch FROM locked_until - now()) FROM login_throttles WHERE key = :k"
                ),
                {"k": key},
            )
        ).scalar()
        if row is not None:
            waits.append(round(row))
            await session.execute(
                text(
                    "UPDATE login_throttles SET locked_until = now() - interval '1 s'"
                    " WHERE key = :k"
                ),
                {"k": key},
            )
    assert waits[:4] == [30, 60, 120, 240]
    assert max(waits) == 900


async def test_per_client_counter_spans_accounts(client: httpx.AsyncClient) -> None:
    from src.auth.config import auth_settings

    for _ in range(auth_settings.LOGIN_CLIENT_MAX_FAILURES):
        assert (await login(client, unique_email("spray"), "wrong password!!")).status_code == 401
    blocked = await login(client, unique_email("spray"), "wrong password!!")
    assert blocked.status_code == 429
    assert "Retry-After" in blocked.headers


async def test_x_forwarded_for_is_ignored_without_trusted_proxy(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    for i in range(5):
        await client.post(
            LOGIN,
            data={"username": user.email, "password": "wrong password!!"},
            headers={"X-Forwarded-For": f"203.0.113.{i}"},
        )
    keys = set((await session.scalars(select(LoginThrottle.key))).all())
    assert "addr:127.0.0.1" in keys
    assert not any(k.startswith("addr:203.0.113.") for k in keys)


def test_x_forwarded_for_is_used_behind_a_trusted_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    from starlette.requests import Request

    from src.auth.utils import client_address

    settings = get_settings().model_copy(update={"TRUSTED_PROXIES": ["10.0.0.0/8"]})
    monkeypatch.setattr("src.auth.utils.get_settings", lambda: settings)

    def request(peer: str, xff: str) -> Request:
        return Request(
            {"type": "http", "client": (peer, 1), "headers": [(b"x-forwarded-for", xff.encode())]}
        )

    assert client_address(request("10.1.2.3", "198.51.100.7, 10.9.9.9")) == "198.51.100.7"
    assert client_address(request("198.51.100.8", "1.2.3.4")) == "198.51.100.8"


async def test_nul_in_form_field_is_422_invalid_text(client: httpx.AsyncClient) -> None:
    response = await client.post(LOGIN, data={"username": "a\x00b@example.com", "password": "x"})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_text"
