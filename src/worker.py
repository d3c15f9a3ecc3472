"""The job queue: one procrastinate App on the same PostgreSQL as the data.

Every API process opens it to enqueue; `projex worker` (and `projex serve` unless
`--no-worker`) runs workers. Jobs are enqueued after the request's commit
(`defer_after_commit`), and a reconciler loop re-queues work whose enqueue or worker died;
or, for jobs without a queueing lock, inside the transaction itself (`defer_in_transaction`:
visible at commit, gone on rollback).
Domain tasks live in `<domain>/tasks.py` on procrastinate Blueprints, registered here.
"""

import asyncio
import contextlib
import gc
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import procrastinate
from pydantic import Field, field_validator
from pydantic_settings import NoDecode
from sqlalchemy import Text, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from src.config import ProjexSettings, split_csv
from src.log import get_logger

log = get_logger(__name__)

# Each domain's tasks run on their own queue, so stages can get dedicated workers
# (`projex worker --queue embedding` on the machines with the model or the API quota).
INGESTION_QUEUE = "ingestion"  # urls: fetch → snapshot → extract → chunk, crawls, upkeep
EMBEDDING_QUEUE = "embedding"  # vectorization: embed chunks, vectorization jobs
QUEUES = (INGESTION_QUEUE, EMBEDDING_QUEUE)


class WorkerSettings(ProjexSettings):
    WORKER_CONCURRENCY: int = Field(default=4, ge=1, le=256)
    WORKER_HEARTBEAT_SECONDS: float = Field(default=10.0, gt=0, le=600)
    WORKER_STALLED_AFTER_SECONDS: float = Field(default=30.0, gt=0, le=3600)
    WORKER_SHUTDOWN_GRACE_SECONDS: float = Field(default=20.0, ge=0, le=3600)
    RECONCILE_INTERVAL_SECONDS: float = Field(default=30.0, gt=0, le=3600)
    QUEUE_POOL_MAX_SIZE: int = Field(default=8, ge=1, le=200)
    # Queues a worker takes jobs from (comma-separated); empty = every queue.
    WORKER_QUEUES: Annotated[list[str], NoDecode] = Field(default_factory=list)

    _split = field_validator("WORKER_QUEUES", mode="before")(split_csv)

    @field_validator("WORKER_QUEUES")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(QUEUES))
        if unknown:
            raise ValueError(f"unknown queue(s) {unknown}; known: {', '.join(QUEUES)}")
        return value


worker_settings = WorkerSettings()

queue_app = procrastinate.App(connector=procrastinate.PsycopgConnector())
_open = False


def register_tasks() -> None:
    from src.urls import tasks as urls_tasks
    from src.vectorization import tasks as vectorization_tasks

    if "urls:ingest_urls" not in queue_app.tasks:
        queue_app.add_tasks_from(urls_tasks.blueprint, namespace="urls")
        queue_app.add_tasks_from(vectorization_tasks.blueprint, namespace="vectorization")


def libpq_url(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def open_queue(database_url: str) -> None:
    """Open the queue's psycopg pool (procrastinate needs psycopg 3; SQLAlchemy keeps asyncpg)."""
    global _open
    register_tasks()
    connector = procrastinate.PsycopgConnector(
        conninfo=libpq_url(database_url), min_size=1, max_size=worker_settings.QUEUE_POOL_MAX_SIZE
    )
    # The URL is known only at start-up (embedded server): attach the connector now.
    queue_app.connector = connector
    queue_app.job_manager.connector = connector
    await queue_app.open_async()
    _open = True


async def close_queue() -> None:
    global _open
    if _open:
        await queue_app.close_async()
    _open = False


AfterCommit = Callable[[], Awaitable[None]]


def after_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run `callback` once the session's transaction has committed (see database.transaction)."""
    session.info.setdefault("after_commit", []).append(callback)


def defer_after_commit(
    session: AsyncSession, task_name: str, *, queueing_lock: str | None = None, **kwargs: Any
) -> None:
    """Enqueue a job after commit: never a job for a row that was rolled back. If the enqueue
    itself fails, the reconciler re-queues the row later."""

    async def enqueue() -> None:
        await defer(task_name, queueing_lock=queueing_lock, **kwargs)

    after_commit(session, enqueue)


def defer_many_after_commit(
    session: AsyncSession,
    task_name: str,
    jobs: list[tuple[str | None, dict[str, Any]]],
    *,
    delay_seconds: float | None = None,
) -> None:
    """Enqueue many jobs (each `(queueing_lock, kwargs)`) in one round trip after commit.

    Only a queueing lock: at most one queued job per key. (procrastinate's execution `lock`
    makes every fetch scan all queued jobs; the pipeline is idempotent and serialises its
    writes on the row instead.)"""
    if not jobs:
        return

    async def enqueue() -> None:
        await defer_many(task_name, jobs, delay_seconds=delay_seconds)

    after_commit(session, enqueue)


# procrastinate's own enqueue function (the one its connector calls), run in the caller's
# transaction: no queueing lock (a conflict would abort the caller's transaction).
_DEFER_IN_TRANSACTION = text(
    """
    SELECT unnest(procrastinate_defer_jobs_v1(ARRAY(
      SELECT ROW(:queue, :task, :priority, NULL, NULL, a::jsonb, NULL)
             ::procrastinate_job_to_defer_v1
      FROM unnest(:args) AS a)))
    """
).bindparams(bindparam("args", type_=ARRAY(Text)))


async def defer_in_transaction(
    session: AsyncSession, task_name: str, jobs: list[dict[str, Any]]
) -> None:
    """Enqueue jobs (the task's kwargs, one dict each) inside the session's transaction:
    workers see them when it commits and a rollback removes them, so no hand-off can be lost
    between a commit and an enqueue, and it costs one statement instead of a round of the
    queue's own connection pool."""
    if not jobs:
        return
    register_tasks()
    job = queue_app.tasks[task_name].configure().job
    await session.execute(
        _DEFER_IN_TRANSACTION,
        {
            "queue": job.queue,
            "task": job.task_name,
            "priority": job.priority,
            "args": [json.dumps(kwargs) for kwargs in jobs],
        },
    )


async def defer_many(
    task_name: str,
    jobs: list[tuple[str | None, dict[str, Any]]],
    *,
    delay_seconds: float | None = None,
) -> None:
    if not _open:
        log.debug("queue.not_open", task=task_name)
        return
    task = queue_app.tasks[task_name]
    options: dict[str, Any] = {}
    if delay_seconds:
        options["schedule_in"] = {"seconds": int(delay_seconds + 0.999)}
    built = [
        task.configure(queueing_lock=lock, **options).job.evolve(task_kwargs=kwargs)
        for lock, kwargs in jobs
    ]
    try:
        await queue_app.job_manager.batch_defer_jobs_async(jobs=built)
    except procrastinate.exceptions.AlreadyEnqueued:
        for job in built:  # some are queued already: the rest one by one
            with contextlib.suppress(procrastinate.exceptions.AlreadyEnqueued):
                await queue_app.job_manager.defer_job_async(job=job)
    except Exception as exc:  # the reconciler will re-queue; the request already succeeded
        log.warning("queue.defer_failed", task=task_name, jobs=len(jobs), error=type(exc).__name__)


async def defer(task_name: str, *, queueing_lock: str | None = None, **kwargs: Any) -> int | None:
    if not _open:
        log.debug("queue.not_open", task=task_name)
        return None
    task = queue_app.tasks[task_name]
    try:
        return await task.configure(queueing_lock=queueing_lock).defer_async(**kwargs)
    except procrastinate.exceptions.AlreadyEnqueued:
        return None
    except Exception as exc:  # the reconciler will re-queue; the request already succeeded
        log.warning("queue.defer_failed", task=task_name, error=type(exc).__name__)
        return None


# --- running workers -----------------------------------------------------------------------


def settle_heap() -> None:
    """Call once start-up is done. Moves every object alive now (modules, ORM mappers,
    schemas: ~180k) out of the collector's sight, so a full collection no longer walks them
    (measured ~100 ms each in a worker), and collects the young generation less often: the
    pipeline allocates many short-lived objects per page (~0.1 ms per page less GC)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


async def retry_stalled_jobs() -> int:
    """Jobs left `doing` by a worker whose heartbeat stopped (killed, OOM) go back to `todo`."""
    manager = queue_app.job_manager
    stalled = await manager.get_stalled_jobs(
        seconds_since_heartbeat=worker_settings.WORKER_STALLED_AFTER_SECONDS
    )
    for job in stalled:
        await manager.retry_job(job)
        log.warning("queue.stalled_job_retried", job_id=job.id, task=job.task_name)
    await manager.prune_stalled_workers(worker_settings.WORKER_STALLED_AFTER_SECONDS)
    return len(list(stalled))


async def reconcile_loop(stop: asyncio.Event) -> None:
    from src.urls import pipeline

    while not stop.is_set():
        try:
            await retry_stalled_jobs()
            await pipeline.reconcile()
        except Exception as exc:
            log.warning("reconcile.failed", error=f"{type(exc).__name__}: {exc}"[:300])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), worker_settings.RECONCILE_INTERVAL_SECONDS)


# A dedicated `projex worker` process runs nothing but jobs, so CPU-bound job steps run on
# its event loop: handing them to a helper thread made the two threads trade the GIL (a
# futex round trip and a context switch each time) hundreds of times a second. `projex
# serve`'s in-process worker shares its loop with the API and keeps them on a thread.
_cpu_on_loop = False


def cpu_on_loop() -> bool:
    """Whether CPU-bound job steps run on this process's event loop (dedicated workers)."""
    return _cpu_on_loop


def serves(queue: str, queues: list[str] | None = None) -> bool:
    """Whether a worker listening to `queues` (None: WORKER_QUEUES; empty: all) runs `queue`."""
    queues = worker_settings.WORKER_QUEUES if queues is None else queues
    return not queues or queue in queues


async def run_worker(
    *,
    concurrency: int | None = None,
    queues: list[str] | None = None,
    install_signal_handlers: bool = True,
    dedicated: bool = False,
) -> None:
    """Run jobs until cancelled or signalled; a reconciler loop runs beside them.

    `queues` (default WORKER_QUEUES; empty = all) limits the worker to some stages.
    `dedicated`: this process does nothing else (`projex worker`), see cpu_on_loop()."""
    global _cpu_on_loop
    _cpu_on_loop = dedicated
    queues = worker_settings.WORKER_QUEUES if queues is None else queues
    stop = asyncio.Event()
    reconciler = asyncio.create_task(reconcile_loop(stop))
    try:
        await queue_app.run_worker_async(
            queues=queues or None,
            concurrency=concurrency or worker_settings.WORKER_CONCURRENCY,
            install_signal_handlers=install_signal_handlers,
            update_heartbeat_interval=worker_settings.WORKER_HEARTBEAT_SECONDS,
            stalled_worker_timeout=worker_settings.WORKER_STALLED_AFTER_SECONDS,
            shutdown_graceful_timeout=worker_settings.WORKER_SHUTDOWN_GRACE_SECONDS,
            delete_jobs="successful",
        )
    finally:
        stop.set()
        await reconciler
