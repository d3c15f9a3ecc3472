from typing import Annotated

from fastapi import APIRouter, Query, status

from src.auth import service as auth_service
from src.auth.dependencies import AdminUser, CurrentUser
from src.database import SessionDep
from src.pagination import Page, PageParams
from src.users import service
from src.users.dependencies import UserById
from src.users.models import User
from src.users.schemas import (
    PasswordChange,
    UserAdminUpdate,
    UserListParams,
    UserRead,
    UserUpdateMe,
)

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me", response_model=UserRead)
async def get_me(user: CurrentUser) -> User:
    """The signed-in user's profile."""
    return user


@router.patch("/me", response_model=UserRead)
async def update_me(data: UserUpdateMe, user: CurrentUser, session: SessionDep) -> User:
    """Change name or email (an email change needs `current_password`)."""
    return await service.update_me(session=session, user=user, data=data)


@router.post("/me/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(data: PasswordChange, user: CurrentUser, session: SessionDep) -> None:
    """Change the password; every refresh token and older access token stops working."""
    await auth_service.change_password(session=session, user=user, data=data)


@router.get("", response_model=Page[UserRead])
async def list_users(
    _: AdminUser,
    session: SessionDep,
    page: PageParams,
    params: Annotated[UserListParams, Query()],
) -> Page[UserRead]:
    """All accounts (admin): `q` searches email and name; filter by role and active."""
    return await service.list_users(session=session, params=params, page=page)


@router.get("/{user_id}", response_model=UserRead)
async def get_user(user: UserById) -> User:
    """One account (admin)."""
    return user


@router.patch("/{user_id}", response_model=UserRead)
async def update_user(
    data: UserAdminUpdate, user: UserById, admin: AdminUser, session: SessionDep
) -> User:
    """Change an account's role, active flag or name (admin)."""
    return await service.admin_update(session=session, actor=admin, user=user, data=data)
