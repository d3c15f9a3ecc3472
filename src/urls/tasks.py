"""Queue tasks of the urls domain: thin wrappers around pipeline.py."""

import uuid

import procrastinate
from procrastinate.retry import BaseRetryStrategy, RetryDecision

from src.urls import pipeline
from src.urls.config import fetch_settings

blueprint = procrastinate.Blueprint()


class IngestRetry(BaseRetryStrategy):
    """Exponential backoff for transient fetch failures, honouring Retry-After."""

    def get_retry_decision(self, *, exception: BaseException, job) -> RetryDecision | None:
        if not isinstance(exception, pipeline.TransientIngestError):
            return None
        if job.attempts + 1 >= fetch_settings.INGEST_MAX_ATTEMPTS:
            return None
        wait = fetch_settings.INGEST_RETRY_BASE_SECONDS * 2**job.attempts
        if exception.retry_after:
            wait = max(wait, min(exception.retry_after, 3600))
        return RetryDecision(retry_in={"seconds": wait})


@blueprint.task(name="ingest_url", pass_context=True, retry=IngestRetry())
async def ingest_url(context: procrastinate.JobContext, url_id: str) -> None:
    await pipeline.ingest_url(
        uuid.UUID(url_id),
        attempt=context.job.attempts + 1,
        max_attempts=fetch_settings.INGEST_MAX_ATTEMPTS,
    )


@blueprint.task(name="run_crawl", retry=3)
async def run_crawl(crawl_id: str) -> None:
    await pipeline.run_crawl(uuid.UUID(crawl_id))


@blueprint.periodic(cron="*/10 * * * *")
@blueprint.task(name="recrawl_due", queueing_lock="recrawl_due")
async def recrawl_due(timestamp: int) -> None:
    await pipeline.recrawl_due()


@blueprint.periodic(cron="17 * * * *")
@blueprint.task(name="purge_deleted_projects", queueing_lock="purge_deleted_projects")
async def purge_deleted_projects(timestamp: int) -> None:
    await pipeline.purge_deleted_projects()
