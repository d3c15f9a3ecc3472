import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field

from src.schemas import ApiModel


class ChunkUrl(ApiModel):
    id: uuid.UUID
    url: str
    title: str | None


class ChunkRead(ApiModel):
    id: uuid.UUID
    url_id: uuid.UUID
    ordinal: int
    text: str
    headings: list[str]
    char_start: int
    char_end: int
    token_count: int
    content_hash: str
    created_at: datetime
    url: ChunkUrl


class ChunkListParams(ApiModel):
    url_id: Annotated[uuid.UUID | None, Field(description="only chunks of this URL")] = None
