import uuid
from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import Field, HttpUrl, model_validator

from src.schemas import ApiModel
from src.urls.constants import MAX_URL_LENGTH, MAX_URLS_PER_REQUEST, CrawlStatus, UrlStatus

RawUrl = Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH * 2)]
Glob = Annotated[str, Field(min_length=1, max_length=500)]


class UrlBatchCreate(ApiModel):
    urls: Annotated[list[RawUrl], Field(min_length=1, max_length=MAX_URLS_PER_REQUEST)]


class UrlIntakeResult(ApiModel):
    input: str
    result: Literal["created", "duplicate", "rejected"]
    id: uuid.UUID | None = None
    url: str | None = Field(default=None, description="normalised URL")
    reason: str | None = Field(default=None, description="rejection code")
    detail: str | None = None


class UrlBatchResult(ApiModel):
    created: int
    duplicates: int
    rejected: int
    items: list[UrlIntakeResult]


class UrlRead(ApiModel):
    id: uuid.UUID
    project_id: uuid.UUID
    url: str
    status: UrlStatus
    source: str
    title: str | None
    language: str | None
    content_type: str | None
    http_status: int | None
    error_code: str | None
    error_message: str | None
    attempts: int
    chunk_count: int
    crawl_id: uuid.UUID | None
    fetched_at: datetime | None
    ingested_at: datetime | None
    created_at: datetime
    updated_at: datetime


class UrlListParams(ApiModel):
    status: UrlStatus | None = None
    q: Annotated[str | None, Field(max_length=500, description="substring of URL or title")] = None


class CrawlCreate(ApiModel):
    start_url: Annotated[HttpUrl, Field(max_length=MAX_URL_LENGTH)] | None = None
    sitemap_url: Annotated[HttpUrl, Field(max_length=MAX_URL_LENGTH)] | None = None
    max_depth: Annotated[int, Field(ge=0, le=5)] | None = None
    max_pages: Annotated[int, Field(ge=1, le=10_000)] | None = None
    same_site: bool | None = None
    include: Annotated[list[Glob], Field(max_length=50)] | None = None
    exclude: Annotated[list[Glob], Field(max_length=50)] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.start_url is None) == (self.sitemap_url is None):
            raise ValueError("give exactly one of start_url or sitemap_url")
        return self


class CrawlCounts(ApiModel):
    pending: int = 0
    fetching: int = 0
    chunked: int = 0
    ready: int = 0
    failed: int = 0


class CrawlRead(ApiModel):
    id: uuid.UUID
    project_id: uuid.UUID
    start_url: str | None
    sitemap_url: str | None
    params: dict
    status: CrawlStatus
    urls_added: int
    duplicates: int
    rejected: int
    pages_seen: int
    error_message: str | None
    urls: CrawlCounts
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
