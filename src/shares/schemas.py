import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field

from src.projects.schemas import UrlStatusCounts
from src.schemas import ApiModel, FutureDatetime
from src.shares.constants import ShareScope


def _scopes(value: list[ShareScope]) -> list[ShareScope]:
    scopes = sorted(set(value))
    if ShareScope.READ not in scopes:
        raise ValueError("scopes must include read")
    return scopes


class ShareCreate(ApiModel):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    scopes: Annotated[
        list[ShareScope], Field(min_length=1, max_length=2), AfterValidator(_scopes)
    ] = [ShareScope.READ]
    expires_at: FutureDatetime = None
    max_uses: Annotated[int | None, Field(ge=1, le=10_000_000)] = None


class ShareRead(ApiModel):
    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[ShareScope]
    created_by: uuid.UUID | None
    created_at: datetime
    expires_at: datetime | None
    max_uses: int | None
    use_count: int
    last_used_at: datetime | None
    revoked: bool


class ShareCreated(ShareRead):
    token: str = Field(description="the share token; shown only in this answer")


class SharedStats(ApiModel):
    urls: UrlStatusCounts
    chunks: int
    last_ingested_at: datetime | None


class SharedProject(ApiModel):
    name: str
    description: str | None
    scopes: list[ShareScope]
    expires_at: datetime | None
    stats: SharedStats


class SharedUrl(ApiModel):
    id: uuid.UUID
    url: str
    title: str | None
    status: str
    fetched_at: datetime | None


class SharedUrlParams(ApiModel):
    status: Annotated[str | None, Field(max_length=16)] = None
