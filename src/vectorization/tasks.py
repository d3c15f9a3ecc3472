"""Queue tasks of the vectorization domain: thin wrappers around service.py."""

import uuid

import procrastinate

from src.vectorization import service
from src.worker import EMBEDDING_QUEUE

blueprint = procrastinate.Blueprint()

# Provider outages retry with backoff (2, 4, 8, … s); the job records `provider_unavailable`.
RETRY = procrastinate.RetryStrategy(max_attempts=6, exponential_wait=2)


@blueprint.task(name="embed_urls", retry=RETRY, queue=EMBEDDING_QUEUE)
async def embed_urls(url_ids: list[str]) -> None:
    await service.embed_urls([uuid.UUID(u) for u in url_ids])


@blueprint.task(name="run_job", pass_context=True, retry=RETRY, queue=EMBEDDING_QUEUE)
async def run_job(context: procrastinate.JobContext, job_id: str) -> None:
    final = context.job.attempts + 1 >= (RETRY.max_attempts or 1)
    await service.run_job(uuid.UUID(job_id), final_attempt=final)
