import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field

from src.auth.constants import Scope
from src.schemas import ApiModel, FutureDatetime


class TokenPair(ApiModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int = Field(description="access token lifetime in seconds")


class RefreshRequest(ApiModel):
    refresh_token: Annotated[str, Field(min_length=1, max_length=512)]


def _unique_scopes(value: list[Scope]) -> list[Scope]:
    return sorted(set(value))


class ApiKeyCreate(ApiModel):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    scopes: Annotated[
        list[Scope], Field(min_length=1, max_length=len(Scope)), AfterValidator(_unique_scopes)
    ]
    project_id: uuid.UUID | None = None
    expires_at: FutureDatetime = None


class ApiKeyRead(ApiModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[Scope]
    project_id: uuid.UUID | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="the secret; shown only in this answer")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (JWT, every scope) or an API key (its scopes, maybe one project)."""

    user_id: uuid.UUID
    is_admin: bool
    scopes: frozenset[str] | None  # None: a user token, limited only by the user's rights
    project_id: uuid.UUID | None = None  # an API key bound to one project
    api_key_id: uuid.UUID | None = None

    def has_scope(self, scope: str) -> bool:
        return self.scopes is None or scope in self.scopes

    def can_reach_project(self, project_id: uuid.UUID) -> bool:
        return self.project_id is None or self.project_id == project_id
