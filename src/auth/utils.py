"""Password hashing, token minting/hashing, JWT encode/decode, client address."""

import hashlib
import ipaddress
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request
from jose import JWTError, jwt
from passlib.context import CryptContext

from src.auth.config import auth_settings
from src.auth.constants import ACCESS_TOKEN_TYPE, API_KEY_PREFIX
from src.config import get_settings

password_context = CryptContext(
    schemes=["argon2"],
    argon2__type="ID",
    argon2__memory_cost=auth_settings.ARGON2_MEMORY_KIB,
    argon2__time_cost=auth_settings.ARGON2_TIME_COST,
    argon2__parallelism=auth_settings.ARGON2_PARALLELISM,
)

# Verified when the email is unknown, so both paths cost one argon2 verification.
DUMMY_PASSWORD_HASH = password_context.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return password_context.hash(password)


def verify_password(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    """(matches, new_hash_if_parameters_changed). Always spends one verification."""
    if password_hash is None:
        password_context.verify(password, DUMMY_PASSWORD_HASH)
        return False, None
    return password_context.verify_and_update(password, password_hash)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)  # 256 bits


def new_api_key() -> tuple[str, str]:
    """(full key shown once, display prefix). `pjx_<8 chars>_<256-bit secret>`."""
    prefix = API_KEY_PREFIX + secrets.token_hex(4)
    return f"{prefix}_{secrets.token_urlsafe(32)}", prefix


def create_access_token(*, user_id: uuid.UUID, now: datetime | None = None) -> tuple[str, int]:
    now = now or datetime.now(UTC)
    ttl = timedelta(minutes=auth_settings.ACCESS_TOKEN_EXPIRE_MINUTES)
    claims = {
        "sub": str(user_id),
        "iat": round(now.timestamp(), 3),  # ms precision: compared with password changes
        "exp": int((now + ttl).timestamp()),
        "jti": uuid.uuid4().hex,
        "type": ACCESS_TOKEN_TYPE,
    }
    token = jwt.encode(
        claims,
        get_settings().SECRET_KEY.get_secret_value(),
        algorithm=auth_settings.JWT_ALGORITHM,
    )
    return token, int(ttl.total_seconds())


def decode_access_token(token: str) -> dict[str, Any] | None:
    """Claims of a valid, unexpired access token; None for anything else."""
    try:
        claims = jwt.decode(
            token,
            get_settings().SECRET_KEY.get_secret_value(),
            algorithms=[auth_settings.JWT_ALGORITHM],
            options={
                "require_exp": True,
                "require_iat": True,
                "require_sub": True,
                "require_jti": True,
            },
        )
    except JWTError:
        return None
    if claims.get("type") != ACCESS_TOKEN_TYPE:
        return None
    try:
        uuid.UUID(str(claims["sub"]))
    except ValueError:
        return None
    return claims


def _in_networks(address: str, networks: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in networks)


def client_address(request: Request) -> str:
    """The peer address; X-Forwarded-For only when the peer is a trusted proxy."""
    peer = request.client.host if request.client else "unknown"
    trusted = get_settings().TRUSTED_PROXIES
    if not trusted or not _in_networks(peer, trusted):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):  # rightmost address not added by our own proxies
        if not _in_networks(hop, trusted):
            return hop
    return peer
