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


async def create_project(
    session: AsyncSession, owner: User, *, name: str | None = None, **settings
):
    from src.auth.service import principal_for_user
    from src.projects import service as projects_service
    from src.projects.schemas import ProjectCreate, ProjectSettings

    access = await projects_service.create_project(
        session=session,
        principal=principal_for_user(owner),
        data=ProjectCreate(
            name=name or f"project-{uuid.uuid4().hex[:8]}", settings=ProjectSettings(**settings)
        ),
    )
    await session.commit()
    return access.project


async def add_member(session: AsyncSession, project, user: User, role: str) -> None:
    from src.projects.models import ProjectMember

    session.add(ProjectMember(project_id=project.id, user_id=user.id, role=role))
    await session.commit()


async def create_api_key(
    client, user: User, *scopes: str, project_id=None, expires_at=None
) -> dict:
    body = {"name": "test key", "scopes": list(scopes) or ["projects:read"]}
    if project_id is not None:
        body["project_id"] = str(project_id)
    if expires_at is not None:
        body["expires_at"] = expires_at
    response = await client.post("/api/v1/auth/api-keys", json=body, headers=bearer(user))
    assert response.status_code == 201, response.text
    return response.json()
