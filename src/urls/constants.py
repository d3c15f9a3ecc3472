from enum import StrEnum


class UrlStatus(StrEnum):
    PENDING = "pending"
    FETCHING = "fetching"
    CHUNKED = "chunked"
    READY = "ready"
    FAILED = "failed"


class UrlSource(StrEnum):
    API = "api"
    CRAWL = "crawl"
    DOCUMENT = "document"


class CrawlStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


MAX_URL_LENGTH = 2048
MAX_URLS_PER_REQUEST = 1000
