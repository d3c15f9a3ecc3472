import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from src.chunks import service
from src.chunks.schemas import ChunkListParams, ChunkRead
from src.database import SessionDep
from src.pagination import Page, PageParams
from src.projects.dependencies import ReadableProject

router = APIRouter(prefix="/projects/{project_id}/chunks", tags=["chunks"])


@router.get("", response_model=Page[ChunkRead])
async def list_chunks(
    access: ReadableProject,
    session: SessionDep,
    page: PageParams,
    params: Annotated[ChunkListParams, Query()],
) -> Page[ChunkRead]:
    """The project's chunks in page order, optionally for one URL, each with its URL."""
    return await service.list_chunks(
        session=session, project_id=access.project.id, params=params, page=page
    )


@router.get("/{chunk_id}", response_model=ChunkRead)
async def get_chunk(chunk_id: uuid.UUID, access: ReadableProject, session: SessionDep) -> ChunkRead:
    """One chunk with its heading breadcrumb, offsets and URL."""
    return await service.get_chunk(session=session, project_id=access.project.id, chunk_id=chunk_id)
