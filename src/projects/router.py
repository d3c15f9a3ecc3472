import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from src.auth.constants import Scope
from src.auth.dependencies import require_scopes
from src.auth.schemas import Principal
from src.database import SessionDep
from src.pagination import Page, PageParams
from src.projects import service
from src.projects.dependencies import (
    EditableProject,
    ExpectedVersion,
    MemberOfProject,
    OwnedProject,
    ReadableProject,
    etag_for,
)
from src.projects.exceptions import BoundApiKeyCannotCreate
from src.projects.schemas import (
    MemberCreate,
    MemberRead,
    ProjectCreate,
    ProjectListParams,
    ProjectRead,
    ProjectUpdate,
)

router = APIRouter(prefix="/projects", tags=["projects"])

ProjectWriter = Annotated[Principal, require_scopes(Scope.PROJECTS_WRITE)]
ProjectReader = Annotated[Principal, require_scopes(Scope.PROJECTS_READ)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ProjectRead)
async def create_project(
    data: ProjectCreate, principal: ProjectWriter, session: SessionDep, response: Response
) -> ProjectRead:
    """Create a project owned by the caller."""
    if principal.project_id is not None:
        raise BoundApiKeyCannotCreate()
    access = await service.create_project(session=session, principal=principal, data=data)
    project = await service.read_project(session=session, access=access)
    response.headers["ETag"] = etag_for(project.version)
    return project


@router.get("", response_model=Page[ProjectRead])
async def list_projects(
    principal: ProjectReader,
    session: SessionDep,
    page: PageParams,
    params: Annotated[ProjectListParams, Query()],
) -> Page[ProjectRead]:
    """Projects the caller owns or is a member of, with per-project ingestion stats."""
    return await service.list_projects(
        session=session, principal=principal, params=params, page=page
    )


@router.get("/{project_id}", response_model=ProjectRead)
async def get_project(
    access: ReadableProject, session: SessionDep, response: Response
) -> ProjectRead:
    """One project with its stats; the `ETag` header carries its version for `If-Match`."""
    project = await service.read_project(session=session, access=access)
    response.headers["ETag"] = etag_for(project.version)
    return project


@router.patch("/{project_id}", response_model=ProjectRead)
async def update_project(
    data: ProjectUpdate,
    access: EditableProject,
    version: ExpectedVersion,
    session: SessionDep,
    response: Response,
) -> ProjectRead:
    """Rename, describe or change settings (editor+). `If-Match` guards against lost updates."""
    project = await service.update_project(
        session=session, access=access, data=data, expected_version=version
    )
    response.headers["ETag"] = etag_for(project.version)
    return project


@router.delete("/{project_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_project(
    access: OwnedProject, version: ExpectedVersion, session: SessionDep
) -> None:
    """Delete a project (owner). It vanishes now; its data is purged after the retention."""
    await service.delete_project(session=session, access=access, expected_version=version)


@router.get("/{project_id}/members", response_model=Page[MemberRead])
async def list_members(
    access: ReadableProject, session: SessionDep, page: PageParams
) -> Page[MemberRead]:
    """Members and their roles (the owner included)."""
    return await service.list_members(session=session, access=access, page=page)


@router.post(
    "/{project_id}/members", status_code=status.HTTP_201_CREATED, response_model=MemberRead
)
async def add_member(data: MemberCreate, access: OwnedProject, session: SessionDep) -> MemberRead:
    """Add an existing user by email as viewer or editor (owner)."""
    return await service.add_member(session=session, access=access, data=data)


@router.delete("/{project_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_member(user_id: uuid.UUID, access: MemberOfProject, session: SessionDep) -> None:
    """Remove a member (owner), or leave the project (any member, own id)."""
    await service.remove_member(session=session, access=access, user_id=user_id)
