import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import RedirectResponse, StreamingResponse

from src.aws import service as storage
from src.database import SessionDep
from src.pagination import Page, PageParams
from src.projects.dependencies import ReadableProject
from src.urls import service
from src.urls.dependencies import UrlEditableProject
from src.urls.schemas import (
    CrawlCreate,
    CrawlRead,
    UrlBatchCreate,
    UrlBatchResult,
    UrlListParams,
    UrlRead,
)

router = APIRouter(prefix="/projects/{project_id}", tags=["urls"])


@router.post("/urls", status_code=status.HTTP_202_ACCEPTED, response_model=UrlBatchResult)
async def add_urls(
    data: UrlBatchCreate, access: UrlEditableProject, session: SessionDep
) -> UrlBatchResult:
    """Add 1–1000 URLs; one result per input, in order: created, duplicate or rejected."""
    return await service.add_urls(session=session, access=access, raw_urls=data.urls)


@router.get("/urls", response_model=Page[UrlRead])
async def list_urls(
    access: ReadableProject,
    session: SessionDep,
    page: PageParams,
    params: Annotated[UrlListParams, Query()],
) -> Page[UrlRead]:
    """The project's URLs with status, errors and chunk counts; filter by status or text."""
    return await service.list_urls(session=session, access=access, params=params, page=page)


@router.get("/urls/{url_id}", response_model=UrlRead)
async def get_url(url_id: uuid.UUID, access: ReadableProject, session: SessionDep) -> UrlRead:
    """One URL with its ingestion status."""
    return await service.get_url(session=session, access=access, url_id=url_id)


@router.delete("/urls/{url_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_url(url_id: uuid.UUID, access: UrlEditableProject, session: SessionDep) -> None:
    """Remove a URL with its chunks and snapshots."""
    await service.delete_url(session=session, access=access, url_id=url_id)


@router.post("/urls/{url_id}/refetch", status_code=status.HTTP_202_ACCEPTED, response_model=UrlRead)
async def refetch_url(
    url_id: uuid.UUID, access: UrlEditableProject, session: SessionDep
) -> UrlRead:
    """Fetch again now (conditional: an unchanged page costs no re-chunking)."""
    return await service.refetch_url(session=session, access=access, url_id=url_id)


@router.get(
    "/urls/{url_id}/snapshot",
    response_class=Response,
    responses={
        200: {"description": "The raw page as fetched", "content": {"*/*": {}}},
        307: {"description": "Redirect to a short-lived presigned S3 URL"},
    },
)
async def get_snapshot(url_id: uuid.UUID, access: ReadableProject, session: SessionDep) -> Response:
    """The stored raw page: a short-lived presigned URL (S3) or streamed (file store).
    Served as an attachment in a sandbox so stored HTML never runs in this origin."""
    key, content_type = await service.snapshot_location(
        session=session, access=access, url_id=url_id
    )
    store = storage.get_store()
    filename = f"{url_id}.snapshot"
    presigned = await store.presigned_url(key, filename=filename, content_type=content_type)
    if presigned is not None:
        return RedirectResponse(presigned, status_code=status.HTTP_307_TEMPORARY_REDIRECT)
    body = await store.get(key)  # raises ObjectNotFound (404) before any byte is sent
    return StreamingResponse(
        iter([body]),
        media_type=content_type,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Content-Security-Policy": "sandbox",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post("/crawls", status_code=status.HTTP_202_ACCEPTED, response_model=CrawlRead)
async def create_crawl(
    data: CrawlCreate, access: UrlEditableProject, session: SessionDep
) -> CrawlRead:
    """Discover pages from a start URL (links, up to max_depth ≤ 5) or a sitemap (indexes and
    gzip too), up to max_pages ≤ 10,000, filtered by same_site and include/exclude globs."""
    return await service.create_crawl(session=session, access=access, data=data)


@router.get("/crawls/{crawl_id}", response_model=CrawlRead)
async def get_crawl(crawl_id: uuid.UUID, access: ReadableProject, session: SessionDep) -> CrawlRead:
    """A crawl's status and counts of the URLs it added, by status."""
    return await service.get_crawl(session=session, access=access, crawl_id=crawl_id)
