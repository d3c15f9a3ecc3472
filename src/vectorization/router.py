import uuid

from fastapi import APIRouter, status

from src.database import SessionDep
from src.pagination import Page, PageParams
from src.projects.dependencies import ReadableProject
from src.vectorization import push, search, service
from src.vectorization.dependencies import SearchableProject, VectorizableProject
from src.vectorization.schemas import (
    DocumentsPush,
    DocumentsPushResult,
    JobRead,
    SearchRequest,
    SearchResponse,
    VectorizeRequest,
    VectorsPush,
    VectorsPushResult,
)

router = APIRouter(prefix="/projects/{project_id}", tags=["vectorization"])


@router.post("/vectorize", status_code=status.HTTP_202_ACCEPTED, response_model=JobRead)
async def vectorize(
    data: VectorizeRequest, access: VectorizableProject, session: SessionDep
) -> JobRead:
    """Embed the project's chunks (`stale`: those without a vector; `all`: every one)."""
    return await service.create_job(session=session, access=access, data=data)


@router.get("/vectorization/jobs", response_model=Page[JobRead])
async def list_jobs(
    access: ReadableProject, session: SessionDep, page: PageParams
) -> Page[JobRead]:
    """Vectorization jobs, newest first, with totals, progress, timings and errors."""
    return await service.list_jobs(session=session, access=access, page=page)


@router.get("/vectorization/jobs/{job_id}", response_model=JobRead)
async def get_job(job_id: uuid.UUID, access: ReadableProject, session: SessionDep) -> JobRead:
    """One vectorization job."""
    return await service.get_job(session=session, access=access, job_id=job_id)


@router.post("/vectorization/jobs/{job_id}/cancel", response_model=JobRead)
async def cancel_job(
    job_id: uuid.UUID, access: VectorizableProject, session: SessionDep
) -> JobRead:
    """Cancel a queued or running job (it stops between batches)."""
    return await service.cancel_job(session=session, access=access, job_id=job_id)


@router.post("/documents", status_code=status.HTTP_202_ACCEPTED, response_model=DocumentsPushResult)
async def push_documents(
    data: DocumentsPush, access: VectorizableProject, session: SessionDep
) -> DocumentsPushResult:
    """Push up to 500 pre-extracted documents, idempotent by `external_id`: the same text is
    no work; new text is re-chunked and only changed chunks are re-embedded (one job)."""
    return await push.push_documents(session=session, access=access, documents=data.documents)


@router.post("/vectors", response_model=VectorsPushResult)
async def push_vectors(
    data: VectorsPush, access: VectorizableProject, session: SessionDep
) -> VectorsPushResult:
    """Upsert up to 10,000 pre-computed vectors for the project's model and dimension,
    without calling any provider."""
    return await push.push_vectors(session=session, access=access, data=data)


@router.post("/search", response_model=SearchResponse)
async def search_project(
    data: SearchRequest, access: SearchableProject, session: SessionDep
) -> SearchResponse:
    """Hybrid (default), semantic or full-text search over what is ready."""
    return await search.search(
        session=session,
        project_id=access.project.id,
        project_settings=access.project.settings,
        search_model=access.project.search_model,
        data=data,
    )
