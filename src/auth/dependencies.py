"""Who is calling: `CurrentUser` (JWT only), `CurrentPrincipal` (JWT or API key),
`require_scopes(...)`, `AdminUser`."""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer

from src.auth import service
from src.auth.constants import API_KEY_HEADER, API_KEY_PREFIX, Scope
from src.auth.exceptions import ScopeMissing, UserTokenRequired
from src.auth.schemas import Principal
from src.auth.utils import client_address
from src.database import SessionDep
from src.exceptions import NotAuthenticated
from src.users.constants import Role
from src.users.exceptions import AdminRequired
from src.users.models import User

oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl="/api/v1/auth/login",
    auto_error=False,
    description="User access token from POST /auth/login (or an API key as `Bearer pjx_…`).",
)
api_key_scheme = APIKeyHeader(
    name=API_KEY_HEADER, auto_error=False, description="API key (`pjx_…`) for machine clients."
)

BearerToken = Annotated[str | None, Depends(oauth2_scheme)]
HeaderApiKey = Annotated[str | None, Depends(api_key_scheme)]


async def get_current_user(session: SessionDep, bearer: BearerToken, api_key: HeaderApiKey) -> User:
    """A user signed in with an access token. API keys cannot manage accounts or keys."""
    if api_key or (bearer and bearer.startswith(API_KEY_PREFIX)):
        raise UserTokenRequired()
    if not bearer:
        raise NotAuthenticated()
    return await service.user_from_access_token(session=session, token=bearer)


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_current_principal(
    session: SessionDep, bearer: BearerToken, api_key: HeaderApiKey
) -> Principal:
    raw_key = api_key or (bearer if bearer and bearer.startswith(API_KEY_PREFIX) else None)
    if raw_key:
        return await service.principal_from_api_key(session=session, raw_key=raw_key)
    if not bearer:
        raise NotAuthenticated()
    user = await service.user_from_access_token(session=session, token=bearer)
    return service.principal_for_user(user)


CurrentPrincipal = Annotated[Principal, Depends(get_current_principal)]


def require_scopes(*scopes: Scope):
    """A principal whose API key (if any) carries every scope named; users pass."""

    async def _require(principal: CurrentPrincipal) -> Principal:
        missing = [s.value for s in scopes if not principal.has_scope(s.value)]
        if missing:
            raise ScopeMissing(f"missing scope(s): {', '.join(missing)}")
        return principal

    return Depends(_require)


async def get_admin_user(user: CurrentUser) -> User:
    if user.role != Role.ADMIN:
        raise AdminRequired()
    return user


AdminUser = Annotated[User, Depends(get_admin_user)]


def get_client_address(request: Request) -> str:
    return client_address(request)


ClientAddress = Annotated[str, Depends(get_client_address)]
