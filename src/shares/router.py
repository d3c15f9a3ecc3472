import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from src.auth.constants import Scope
from src.chunks.schemas import ChunkListParams, ChunkRead
from src.database import SessionDep
from src.pagination import Page, PageParams
from src.projects.constants import ProjectRole
from src.projects.dependencies import project_access
from src.projects.service import ProjectAccess
from src.shares import service
from src.shares.dependencies import SearchableShare, ValidShare
from src.shares.schemas import (
    ShareCreate,
    ShareCreated,
    SharedProject,
    SharedUrl,
    SharedUrlParams,
    ShareRead,
)
from src.vectorization import search as search_service
from src.vectorization.schemas import SearchRequest, SearchResponse

# Owners and editors manage links (viewers get 403, other users 404).
ShareManager = Annotated[ProjectAccess, project_access(ProjectRole.EDITOR, Scope.PROJECTS_WRITE)]

router = APIRouter(tags=["shares"])


@router.post(
    "/projects/{project_id}/shares",
    status_code=status.HTTP_201_CREATED,
    response_model=ShareCreated,
)
async def create_share(
    data: ShareCreate, access: ShareManager, session: SessionDep
) -> ShareCreated:
    """Create a share link; the `token` is shown only in this answer."""
    return await service.create_share(session=session, access=access, data=data)


@router.get("/projects/{project_id}/shares", response_model=Page[ShareRead])
async def list_shares(
    access: ShareManager, session: SessionDep, page: PageParams
) -> Page[ShareRead]:
    """The project's share links, without tokens."""
    return await service.list_shares(session=session, access=access, page=page)


@router.delete("/projects/{project_id}/shares/{share_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_share(share_id: uuid.UUID, access: ShareManager, session: SessionDep) -> None:
    """Revoke a share link; the next request through it answers 404."""
    await service.revoke_share(session=session, access=access, share_id=share_id)


@router.get("/shared/{token}", response_model=SharedProject)
async def get_shared_project(share: ValidShare, session: SessionDep) -> SharedProject:
    """The shared project's name, description and stats (public, by token; path `_` takes it
    from `Authorization: Share <token>`)."""
    return await service.shared_project(session=session, share=share)


@router.get("/shared/{token}/urls", response_model=Page[SharedUrl])
async def list_shared_urls(
    share: ValidShare,
    session: SessionDep,
    page: PageParams,
    params: Annotated[SharedUrlParams, Query()],
) -> Page[SharedUrl]:
    """The shared project's URLs: url, title, status, fetched_at (public, by token)."""
    return await service.shared_urls(session=session, share=share, params=params, page=page)


@router.get("/shared/{token}/chunks", response_model=Page[ChunkRead])
async def list_shared_chunks(
    share: ValidShare,
    session: SessionDep,
    page: PageParams,
    params: Annotated[ChunkListParams, Query()],
) -> Page[ChunkRead]:
    """The shared project's chunks, optionally of one URL (public, by token)."""
    return await service.shared_chunks(session=session, share=share, params=params, page=page)


@router.post("/shared/{token}/search", response_model=SearchResponse)
async def search_shared(
    data: SearchRequest, share: SearchableShare, session: SessionDep
) -> SearchResponse:
    """Search the shared project, as project search (needs the `search` scope)."""
    return await search_service.search(
        session=session,
        project_id=share.project_id,
        project_settings=share.project_settings,
        search_model=share.search_model,
        data=data,
    )
