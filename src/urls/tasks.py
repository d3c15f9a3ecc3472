"""Queue tasks of the urls domain: thin wrappers around pipeline.py."""

import uuid

import procrastinate

from src.urls import pipeline
from src.worker import INGESTION_QUEUE

blueprint = procrastinate.Blueprint()


# Fetch failures are retried per URL by the pipeline (rescheduled with backoff); a job
# retries as a whole only when something unexpected fails (database down, a bug).
JOB_RETRY = procrastinate.RetryStrategy(max_attempts=5, exponential_wait=2)


# Fetching and chunking go before embedding (priority 10 vs 0): pages reach `chunked` fast
# during bulk intake and the vectors follow.
INGEST_PRIORITY = 10


@blueprint.task(
    name="ingest_urls",
    pass_context=True,
    retry=JOB_RETRY,
    priority=INGEST_PRIORITY,
    queue=INGESTION_QUEUE,
)
async def ingest_urls(context: procrastinate.JobContext, url_ids: list[str]) -> None:
    await pipeline.ingest_batch([uuid.UUID(u) for u in url_ids], job_id=context.job.id)


@blueprint.task(name="run_crawl", retry=JOB_RETRY, priority=INGEST_PRIORITY, queue=INGESTION_QUEUE)
async def run_crawl(crawl_id: str) -> None:
    await pipeline.run_crawl(uuid.UUID(crawl_id))


@blueprint.periodic(cron="*/10 * * * *")
@blueprint.task(name="recrawl_due", queueing_lock="recrawl_due", queue=INGESTION_QUEUE)
async def recrawl_due(timestamp: int) -> None:
    await pipeline.recrawl_due()


@blueprint.periodic(cron="17 * * * *")
@blueprint.task(
    name="purge_deleted_projects", queueing_lock="purge_deleted_projects", queue=INGESTION_QUEUE
)
async def purge_deleted_projects(timestamp: int) -> None:
    await pipeline.purge_deleted_projects()
