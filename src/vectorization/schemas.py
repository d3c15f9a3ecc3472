import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, Self

import numpy as np
from pydantic import Field, field_validator, model_validator

from src.schemas import ApiModel
from src.vectorization.config import ProviderName
from src.vectorization.constants import JobScope, JobStatus, SearchMode


class EmbeddingSettings(ApiModel):
    """Per-project override of the embedding provider (global settings when absent)."""

    provider: ProviderName = "hashing"
    model: Annotated[str | None, Field(max_length=200)] = None
    dimensions: Annotated[int, Field(ge=8, le=4096)] = 384


class VectorizeRequest(ApiModel):
    scope: JobScope = JobScope.STALE
    url_ids: Annotated[list[uuid.UUID] | None, Field(max_length=10_000)] = None


class JobRead(ApiModel):
    id: uuid.UUID
    project_id: uuid.UUID
    scope: JobScope
    url_ids: list[uuid.UUID] | None
    model: str
    status: JobStatus
    total: int
    done: int
    failed: int
    error_code: str | None
    error_message: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None = None


class SearchFilters(ApiModel):
    url_ids: Annotated[list[uuid.UUID] | None, Field(max_length=1000)] = None
    url_prefix: Annotated[str | None, Field(max_length=2048)] = None
    metadata: dict[str, Any] | None = None


class SearchRequest(ApiModel):
    query: Annotated[str, Field(min_length=1, max_length=2000)]
    mode: SearchMode = SearchMode.HYBRID
    top_k: Annotated[int, Field(ge=1, le=100)] = 10
    offset: Annotated[int, Field(ge=0, le=1000)] = 0
    filters: SearchFilters = SearchFilters()
    min_score: float | None = None
    semantic_weight: Annotated[float, Field(ge=0, le=10)] = 1.0
    fulltext_weight: Annotated[float, Field(ge=0, le=10)] = 1.5  # tuned: bench/eval_search.py
    rrf_k: Annotated[int, Field(ge=1, le=1000)] = 60

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("query must not be blank")
        return value.strip()


class SearchUrl(ApiModel):
    id: uuid.UUID
    url: str
    title: str | None


class SearchScores(ApiModel):
    semantic: float | None
    fulltext: float | None
    fused: float


class SearchHit(ApiModel):
    chunk_id: uuid.UUID
    text: str
    headings: list[str]
    rank: int
    scores: SearchScores
    url: SearchUrl


class SearchResponse(ApiModel):
    query: str
    mode: SearchMode
    model: str | None
    items: list[SearchHit]


ExternalId = Annotated[str, Field(min_length=1, max_length=500)]


class DocumentIn(ApiModel):
    external_id: ExternalId
    url: Annotated[str | None, Field(max_length=2048)] = None
    title: Annotated[str | None, Field(max_length=500)] = None
    text: Annotated[str, Field(min_length=1, max_length=2_000_000)]
    metadata: dict[str, Any] | None = None


class DocumentsPush(ApiModel):
    documents: Annotated[list[DocumentIn], Field(min_length=1)]


class PushResult(ApiModel):
    external_id: str
    result: Literal["created", "updated", "unchanged", "rejected"]
    url_id: uuid.UUID | None = None
    reason: str | None = None


class DocumentsPushResult(ApiModel):
    job_id: uuid.UUID | None
    items: list[PushResult]


class VectorIn(ApiModel):
    external_id: ExternalId
    chunk_text: Annotated[str, Field(min_length=1, max_length=100_000)]
    embedding: list[float]
    metadata: dict[str, Any] | None = None


class VectorsPush(ApiModel):
    model: Annotated[str, Field(min_length=1, max_length=200)]
    dimensions: Annotated[int, Field(ge=1, le=16_000)]
    vectors: Annotated[list[VectorIn], Field(min_length=1)]

    @model_validator(mode="after")
    def _finite(self) -> Self:
        for item in self.vectors:
            if not np.isfinite(np.asarray(item.embedding, dtype=np.float64)).all():
                raise ValueError(f"{item.external_id}: embedding contains NaN or infinity")
        return self


class VectorsPushResult(ApiModel):
    model: str
    items: list[PushResult]
