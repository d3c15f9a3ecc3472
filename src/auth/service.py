"""Login, token rotation, brute-force throttling and API keys. Never commits."""

import asyncio
import math
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from src.auth import utils
from src.auth.config import auth_settings
from src.auth.exceptions import (
    ApiKeyNotFound,
    InvalidCredentials,
    InvalidRefreshToken,
    InvalidToken,
    RefreshTokenReused,
    TooManyApiKeys,
    TooManyLoginAttempts,
)
from src.auth.models import ApiKey, LoginThrottle, RefreshToken
from src.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, Principal, TokenPair
from src.pagination import LimitOffset, Page
from src.projects import service as projects_service
from src.users import service as users_service
from src.users.constants import Role
from src.users.exceptions import InvalidCurrentPassword
from src.users.models import User
from src.users.schemas import PasswordChange, UserCreate


async def register(*, session: AsyncSession, data: UserCreate) -> User:
    return await users_service.create_user(session=session, data=data)


# --- login and brute-force protection ---------------------------------------------------


def _throttle_keys(email: str, client: str) -> tuple[str, str]:
    return f"acct:{email.strip().lower()}", f"addr:{client}"


async def _refuse_if_locked(session: AsyncSession, keys: tuple[str, ...]) -> None:
    locked_until = await session.scalar(
        select(func.max(LoginThrottle.locked_until)).where(
            LoginThrottle.key.in_(keys), LoginThrottle.locked_until > func.now()
        )
    )
    if locked_until is not None:
        wait = max(1, math.ceil((locked_until - datetime.now(UTC)).total_seconds()))
        raise TooManyLoginAttempts(
            f"Too many failed attempts; retry in {wait} seconds.",
            headers={"Retry-After": str(wait)},
        )


_RECORD_FAILURE = text(
    """
    WITH p AS (
      SELECT CAST(:key AS text) AS key, CAST(:threshold AS int) AS threshold,
             make_interval(secs => CAST(:window AS double precision)) AS win,
             CAST(:base AS double precision) AS base, CAST(:cap AS double precision) AS cap
    )
    INSERT INTO login_throttles AS t (key, failures, window_started_at, locked_until)
    SELECT p.key, 1, now(),
           CASE WHEN p.threshold <= 1 THEN now() + make_interval(secs => p.base) END
    FROM p
    ON CONFLICT (key) DO UPDATE SET
      failures = CASE WHEN t.window_started_at < now() - (SELECT win FROM p)
                      THEN 1 ELSE t.failures + 1 END,
      window_started_at = CASE WHEN t.window_started_at < now() - (SELECT win FROM p)
                               THEN now() ELSE t.window_started_at END,
      locked_until = (
        SELECT CASE WHEN n.n >= p.threshold
                    THEN now() + make_interval(secs => least(p.base * power(2, n.n - p.threshold),
                                                             p.cap))
               END
        FROM p, LATERAL (SELECT CASE WHEN t.window_started_at < now() - p.win
                                     THEN 1 ELSE t.failures + 1 END AS n) AS n
      )
    """
)


async def _record_failure(session: AsyncSession, key: str, threshold: int) -> None:
    await session.execute(
        _RECORD_FAILURE,
        {
            "key": key,
            "threshold": threshold,
            "window": auth_settings.LOGIN_WINDOW_SECONDS,
            "base": auth_settings.LOGIN_LOCK_BASE_SECONDS,
            "cap": auth_settings.LOGIN_LOCK_MAX_SECONDS,
        },
    )


async def login(*, session: AsyncSession, email: str, password: str, client: str) -> TokenPair:
    account_key, client_key = _throttle_keys(email, client)
    await _refuse_if_locked(session, (account_key, client_key))
    user = await users_service.get_by_email(session=session, email=email.strip())
    ok, new_hash = await asyncio.to_thread(
        utils.verify_password, password, user.password_hash if user else None
    )
    if user is None or not ok or not user.is_active:
        await _record_failure(session, account_key, auth_settings.LOGIN_MAX_FAILURES)
        await _record_failure(session, client_key, auth_settings.LOGIN_CLIENT_MAX_FAILURES)
        raise InvalidCredentials()
    if new_hash:  # argon2 parameters were raised since this hash was made
        user.password_hash = new_hash
    await session.execute(LoginThrottle.__table__.delete().where(LoginThrottle.key == account_key))
    return await issue_tokens(session=session, user=user)


# --- tokens -------------------------------------------------------------------------------


async def issue_tokens(
    *, session: AsyncSession, user: User, family_id: uuid.UUID | None = None
) -> TokenPair:
    refresh = utils.new_refresh_token()
    session.add(
        RefreshToken(
            user_id=user.id,
            family_id=family_id or uuid.uuid4(),
            token_hash=utils.sha256_hex(refresh),
            expires_at=datetime.now(UTC) + timedelta(days=auth_settings.REFRESH_TOKEN_EXPIRE_DAYS),
        )
    )
    await session.flush()
    access, expires_in = utils.create_access_token(user_id=user.id)
    return TokenPair(access_token=access, refresh_token=refresh, expires_in=expires_in)


async def _revoke_family(session: AsyncSession, family_id: uuid.UUID) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )


async def refresh(*, session: AsyncSession, refresh_token: str) -> TokenPair:
    """Rotate: the presented token is spent; presenting a spent token revokes its family."""
    row = await session.scalar(
        select(RefreshToken)
        .where(RefreshToken.token_hash == utils.sha256_hex(refresh_token))
        .with_for_update()
    )
    now = datetime.now(UTC)
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise InvalidRefreshToken()
    if row.used_at is not None:
        await _revoke_family(session, row.family_id)
        raise RefreshTokenReused()
    user = await users_service.get_by_id(session=session, user_id=row.user_id)
    if user is None or not user.is_active:
        raise InvalidRefreshToken()
    row.used_at = now
    return await issue_tokens(session=session, user=user, family_id=row.family_id)


async def logout(*, session: AsyncSession, refresh_token: str) -> None:
    family_id = await session.scalar(
        select(RefreshToken.family_id).where(
            RefreshToken.token_hash == utils.sha256_hex(refresh_token)
        )
    )
    if family_id is not None:
        await _revoke_family(session, family_id)


async def revoke_all_refresh_tokens(*, session: AsyncSession, user_id: uuid.UUID) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )


async def change_password(*, session: AsyncSession, user: User, data: PasswordChange) -> None:
    """Checks the current password, stores the new hash, ends every session of the user."""
    ok, _ = await asyncio.to_thread(
        utils.verify_password, data.current_password, user.password_hash
    )
    if not ok:
        raise InvalidCurrentPassword()
    if data.new_password.strip().lower() == user.email:
        raise InvalidCurrentPassword("password must not be the email address")
    user.password_hash = await asyncio.to_thread(utils.hash_password, data.new_password)
    user.password_changed_at = datetime.now(UTC)
    await revoke_all_refresh_tokens(session=session, user_id=user.id)
    await session.flush()


async def user_from_access_token(*, session: AsyncSession, token: str) -> User:
    claims = utils.decode_access_token(token)
    if claims is None:
        raise InvalidToken()
    user = await users_service.get_by_id(session=session, user_id=uuid.UUID(claims["sub"]))
    if user is None or not user.is_active:
        raise InvalidToken()
    # Tokens minted before the last password change are void.
    if float(claims["iat"]) < user.password_changed_at.timestamp():
        raise InvalidToken()
    return user


def principal_for_user(user: User) -> Principal:
    return Principal(user_id=user.id, is_admin=user.role == Role.ADMIN, scopes=None)


# --- API keys -----------------------------------------------------------------------------


async def create_api_key(*, session: AsyncSession, user: User, data: ApiKeyCreate) -> ApiKeyCreated:
    active = await session.scalar(
        select(func.count()).where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
    )
    if (active or 0) >= auth_settings.API_KEYS_PER_USER:
        raise TooManyApiKeys(f"at most {auth_settings.API_KEYS_PER_USER} active keys per user")
    if data.project_id is not None:
        await _check_project_binding(session=session, user=user, project_id=data.project_id)
    key, prefix = utils.new_api_key()
    row = ApiKey(
        user_id=user.id,
        name=data.name,
        prefix=prefix,
        key_hash=utils.sha256_hex(key),
        scopes=[s.value for s in data.scopes],
        project_id=data.project_id,
        expires_at=data.expires_at,
    )
    session.add(row)
    await session.flush()
    await session.refresh(row)
    return ApiKeyCreated(**ApiKeyRead.model_validate(row).model_dump(), key=key)


async def _check_project_binding(
    *, session: AsyncSession, user: User, project_id: uuid.UUID
) -> None:
    """A key may be bound only to a project its owner can see (404 otherwise)."""
    await projects_service.require_visible(
        session=session, principal=principal_for_user(user), project_id=project_id
    )


def _live_key_filter():
    return and_(
        ApiKey.revoked_at.is_(None),
        or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > func.now()),
    )


async def list_api_keys(
    *, session: AsyncSession, user: User, page: LimitOffset
) -> Page[ApiKeyRead]:
    where = and_(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
    total = await session.scalar(select(func.count()).select_from(ApiKey).where(where))
    rows = await session.scalars(
        select(ApiKey)
        .where(where)
        .order_by(ApiKey.created_at.desc(), ApiKey.id)
        .limit(page.limit)
        .offset(page.offset)
    )
    return Page(
        items=[ApiKeyRead.model_validate(r) for r in rows],
        total=total or 0,
        limit=page.limit,
        offset=page.offset,
    )


async def revoke_api_key(*, session: AsyncSession, user: User, key_id: uuid.UUID) -> None:
    revoked = await session.scalar(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=func.now())
        .returning(ApiKey.id)
    )
    if revoked is None:
        raise ApiKeyNotFound()


async def principal_from_api_key(*, session: AsyncSession, raw_key: str) -> Principal:
    row = (
        await session.execute(
            select(ApiKey, User.role)
            .join(User, User.id == ApiKey.user_id)
            .where(
                ApiKey.key_hash == utils.sha256_hex(raw_key),
                _live_key_filter(),
                User.is_active.is_(True),
            )
        )
    ).one_or_none()
    if row is None:
        raise InvalidToken("Unknown, revoked or expired API key.")
    key, role = row
    resolution = timedelta(seconds=auth_settings.API_KEY_LAST_USED_RESOLUTION_SECONDS)
    now = datetime.now(UTC)
    if key.last_used_at is None or now - key.last_used_at >= resolution:
        # Coalesced: at most one write per key per resolution window, not one per request.
        await session.execute(
            update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=func.now())
        )
    return Principal(
        user_id=key.user_id,
        is_admin=role == Role.ADMIN,
        scopes=frozenset(key.scopes),
        project_id=key.project_id,
        api_key_id=key.id,
    )
