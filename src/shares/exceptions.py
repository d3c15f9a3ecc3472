from src.exceptions import Conflict, NotFound, RateLimited


class ShareNotFound(NotFound):
    """Unknown, revoked, expired, exhausted, or of a deleted project: one answer for all."""

    code = "share_not_found"
    title = "Share link not found"


class ShareRateLimited(RateLimited):
    code = "share_rate_limited"
    title = "Too many requests through this share link"


class TooManyShares(Conflict):
    code = "too_many_shares"
    title = "Share link limit reached for this project"
