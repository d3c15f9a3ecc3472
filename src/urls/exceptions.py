from src.exceptions import Conflict, NotFound


class UrlNotFound(NotFound):
    code = "url_not_found"
    title = "URL not found"


class SnapshotNotFound(NotFound):
    code = "snapshot_not_found"
    title = "No snapshot stored for this URL yet"


class CrawlNotFound(NotFound):
    code = "crawl_not_found"
    title = "Crawl not found"


class NotFetchable(Conflict):
    code = "not_fetchable"
    title = "Pushed documents and vectors have no page to fetch"
