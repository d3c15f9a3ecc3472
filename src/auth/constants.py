from enum import StrEnum


class Scope(StrEnum):
    PROJECTS_READ = "projects:read"
    PROJECTS_WRITE = "projects:write"
    URLS_WRITE = "urls:write"
    VECTORIZATION_WRITE = "vectorization:write"
    SEARCH = "search"


ALL_SCOPES = frozenset(Scope)

API_KEY_PREFIX = "pjx_"
API_KEY_HEADER = "X-API-Key"
ACCESS_TOKEN_TYPE = "access"  # noqa: S105 (a claim value, not a secret)
