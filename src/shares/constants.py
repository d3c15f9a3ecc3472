from enum import StrEnum


class ShareScope(StrEnum):
    READ = "read"
    SEARCH = "search"


SHARE_TOKEN_PREFIX = "pjs_"  # noqa: S105 (a prefix, not a secret)
HEADER_TOKEN_PLACEHOLDER = "_"  # noqa: S105 — /shared/_/… takes the token from `Authorization: Share …`
