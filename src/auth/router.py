import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.security import OAuth2PasswordRequestForm

from src.auth import service
from src.auth.dependencies import ClientAddress, CurrentUser
from src.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, RefreshRequest, TokenPair
from src.database import SessionDep
from src.pagination import Page, PageParams
from src.users.models import User
from src.users.schemas import UserCreate, UserRead

router = APIRouter(prefix="/auth", tags=["auth"])

LoginForm = Annotated[OAuth2PasswordRequestForm, Depends()]


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=UserRead)
async def register(data: UserCreate, session: SessionDep) -> User:
    """Create an account (public). Emails are unique regardless of case."""
    return await service.register(session=session, data=data)


@router.post("/login", response_model=TokenPair)
async def login(form: LoginForm, session: SessionDep, client: ClientAddress) -> TokenPair:
    """Exchange email (`username`) and password for an access and a refresh token (public)."""
    return await service.login(
        session=session, email=form.username, password=form.password, client=client
    )


@router.post("/refresh", response_model=TokenPair)
async def refresh_tokens(data: RefreshRequest, session: SessionDep) -> TokenPair:
    """Rotate a refresh token (public); a reused token revokes its whole family."""
    return await service.refresh(session=session, refresh_token=data.refresh_token)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(data: RefreshRequest, session: SessionDep) -> None:
    """Revoke the presented refresh token's family (public; idempotent)."""
    await service.logout(session=session, refresh_token=data.refresh_token)


@router.get("/api-keys", response_model=Page[ApiKeyRead])
async def list_api_keys(
    user: CurrentUser, session: SessionDep, page: PageParams
) -> Page[ApiKeyRead]:
    """The caller's active API keys, without secrets."""
    return await service.list_api_keys(session=session, user=user, page=page)


@router.post("/api-keys", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
async def create_api_key(
    data: ApiKeyCreate, user: CurrentUser, session: SessionDep
) -> ApiKeyCreated:
    """Create an API key; the secret `key` is shown only in this answer."""
    return await service.create_api_key(session=session, user=user, data=data)


@router.delete("/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_api_key(key_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> None:
    """Revoke one of the caller's API keys, effective on the next request."""
    await service.revoke_api_key(session=session, user=user, key_id=key_id)
