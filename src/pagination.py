"""Page[T] and the capped limit/offset query parameters every list endpoint uses."""

from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query

from src.schemas import ApiModel

T = TypeVar("T")

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


class Page(ApiModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class LimitOffset(ApiModel):
    limit: int = DEFAULT_PAGE_SIZE
    offset: int = 0


def limit_offset(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> LimitOffset:
    return LimitOffset(limit=limit, offset=offset)


PageParams = Annotated[LimitOffset, Depends(limit_offset)]
