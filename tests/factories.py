"""Build test data through the services, as the application does."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from src.auth import utils as auth_utils
from src.users import service as users_service
from src.users.constants import Role
from src.users.models import User
from src.users.schemas import UserCreate

PASSWORD = "correct horse battery staple"


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.com"


async def create_user(
    session: AsyncSession,
    *,
    email: str | None = None,
    password: str = PASSWORD,
    role: Role = Role.USER,
    full_name: str | None = None,
) -> User:
    user = await users_service.create_user(
        session=session,
        data=UserCreate(email=email or unique_email(), password=password, full_name=full_name),
        role=role,
    )
    await session.commit()  # a SAVEPOINT release inside the test transaction
    return user


def bearer(user: User) -> dict[str, str]:
    token, _ = auth_utils.create_access_token(user_id=user.id)
    return {"Authorization": f"Bearer {token}"}
