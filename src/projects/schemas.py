import uuid
from datetime import datetime
from typing import Annotated, Self

from pydantic import ConfigDict, EmailStr, Field, model_validator

from src.projects.constants import ProjectRole
from src.schemas import ApiModel
from src.vectorization.schemas import EmbeddingSettings

Name = Annotated[str, Field(min_length=1, max_length=200)]
Description = Annotated[str, Field(max_length=5000)]
Glob = Annotated[str, Field(min_length=1, max_length=500)]


class CrawlDefaults(ApiModel):
    model_config = ConfigDict(extra="forbid")

    max_depth: Annotated[int, Field(ge=0, le=5)] = 2
    max_pages: Annotated[int, Field(ge=1, le=10_000)] = 500
    same_site: bool = True
    include: Annotated[list[Glob], Field(max_length=50)] = []
    exclude: Annotated[list[Glob], Field(max_length=50)] = []


class ProjectSettings(ApiModel):
    """Per-project knobs, validated ranges. Unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")

    chunk_size: Annotated[int, Field(ge=64, le=2048, description="tokens per chunk")] = 400
    chunk_overlap: Annotated[int, Field(ge=0, le=512, description="tokens shared")] = 60
    recrawl_interval_hours: Annotated[int | None, Field(ge=1, le=24 * 365)] = None
    crawl: CrawlDefaults = CrawlDefaults()
    embedding: EmbeddingSettings | None = Field(
        default=None, description="provider override; the global EMBEDDING_* settings if null"
    )

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Self:
        if self.chunk_overlap >= self.chunk_size // 2:
            raise ValueError("chunk_overlap must be less than half of chunk_size")
        return self


class ProjectSettingsUpdate(ApiModel):
    model_config = ConfigDict(extra="forbid")

    chunk_size: Annotated[int, Field(ge=64, le=2048)] | None = None
    chunk_overlap: Annotated[int, Field(ge=0, le=512)] | None = None
    recrawl_interval_hours: Annotated[int | None, Field(ge=1, le=24 * 365)] = None
    crawl: CrawlDefaults | None = None
    embedding: EmbeddingSettings | None = None


class ProjectCreate(ApiModel):
    name: Name
    description: Description | None = None
    settings: ProjectSettings = ProjectSettings()


class ProjectUpdate(ApiModel):
    name: Name | None = None
    description: Description | None = None
    settings: ProjectSettingsUpdate | None = None


class UrlStatusCounts(ApiModel):
    pending: int = 0
    fetching: int = 0
    chunked: int = 0
    ready: int = 0
    failed: int = 0


class ProjectStats(ApiModel):
    urls: UrlStatusCounts
    urls_total: int
    chunks: int
    last_ingested_at: datetime | None
    active_shares: int | None = None  # shown to owners and editors


class ProjectRead(ApiModel):
    id: uuid.UUID
    name: str
    description: str | None
    owner_id: uuid.UUID
    role: ProjectRole = Field(description="the caller's role in this project")
    settings: ProjectSettings
    version: int
    created_at: datetime
    updated_at: datetime
    stats: ProjectStats


class MemberCreate(ApiModel):
    email: EmailStr
    role: Annotated[ProjectRole, Field(description="viewer or editor")]

    @model_validator(mode="after")
    def _not_owner(self) -> Self:
        if self.role == ProjectRole.OWNER:
            raise ValueError("role must be viewer or editor; a project has one owner")
        return self


class MemberRead(ApiModel):
    user_id: uuid.UUID
    email: str
    full_name: str | None
    role: ProjectRole
    created_at: datetime


class ProjectListParams(ApiModel):
    q: Annotated[str | None, Field(max_length=200)] = None
    role: ProjectRole | None = None
