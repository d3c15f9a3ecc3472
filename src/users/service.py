"""Accounts: creation, lookup, profile, admin management. SQL-first; never commits."""

import asyncio
import uuid
from datetime import UTC, datetime

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from src.auth import utils as auth_utils
from src.database import escape_like
from src.pagination import LimitOffset, Page
from src.users.constants import Role
from src.users.exceptions import CannotModifySelf, EmailTaken, InvalidCurrentPassword
from src.users.models import User
from src.users.schemas import (
    UserAdminUpdate,
    UserCreate,
    UserListParams,
    UserRead,
    UserUpdateMe,
)


async def create_user(*, session: AsyncSession, data: UserCreate, role: Role = Role.USER) -> User:
    password_hash = await asyncio.to_thread(auth_utils.hash_password, data.password)
    stmt = (
        insert(User)
        .values(
            email=data.email, full_name=data.full_name, password_hash=password_hash, role=role.value
        )
        .on_conflict_do_nothing(index_elements=[func.lower(User.email)])
        .returning(User)
    )
    user = (await session.scalars(stmt)).one_or_none()
    if user is None:
        raise EmailTaken()
    return user


async def get_by_email(*, session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(func.lower(User.email) == email.lower()))


async def get_by_id(*, session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


async def update_me(*, session: AsyncSession, user: User, data: UserUpdateMe) -> User:
    if data.email is not None and data.email != user.email:
        ok, _ = await asyncio.to_thread(
            auth_utils.verify_password, data.current_password or "", user.password_hash
        )
        if not ok:
            raise InvalidCurrentPassword()
        user.email = data.email
    if "full_name" in data.model_fields_set:
        user.full_name = data.full_name
    await _flush_unique_email(session)
    return user


async def _flush_unique_email(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        if "uq_users_email_lower" in str(exc.orig):
            raise EmailTaken() from exc
        raise


async def list_users(
    *, session: AsyncSession, params: UserListParams, page: LimitOffset
) -> Page[UserRead]:
    query = select(User)
    if params.q:
        like = "%" + escape_like(params.q) + "%"
        query = query.where(or_(User.email.ilike(like), User.full_name.ilike(like)))
    if params.role is not None:
        query = query.where(User.role == params.role.value)
    if params.is_active is not None:
        query = query.where(User.is_active == params.is_active)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        query.order_by(User.created_at.desc(), User.id).limit(page.limit).offset(page.offset)
    )
    return Page(
        items=[UserRead.model_validate(u) for u in rows],
        total=total or 0,
        limit=page.limit,
        offset=page.offset,
    )


async def admin_update(
    *, session: AsyncSession, actor: User, user: User, data: UserAdminUpdate
) -> User:
    demotes_self = data.role is not None and data.role != Role.ADMIN
    if user.id == actor.id and (demotes_self or data.is_active is False):
        raise CannotModifySelf()
    for field in data.model_fields_set:
        value = getattr(data, field)
        if value is not None:
            setattr(user, field, value.value if isinstance(value, Role) else value)
    await session.flush()
    return user


async def ensure_admin(
    *, session: AsyncSession, email: str, password: str | None
) -> tuple[User, bool]:
    """Create an admin, or promote (and re-activate) an existing account. (user, created)."""
    existing = await get_by_email(session=session, email=email)
    if existing is not None:
        existing.role = Role.ADMIN.value
        existing.is_active = True
        if password:
            existing.password_hash = await asyncio.to_thread(auth_utils.hash_password, password)
            existing.password_changed_at = datetime.now(UTC)
        await session.flush()
        return existing, False
    if not password:
        raise ValueError("a password is needed to create a new admin")
    user = await create_user(
        session=session, data=UserCreate(email=email, password=password), role=Role.ADMIN
    )
    return user, True
