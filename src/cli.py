"""The `projex` command: serve, worker, migrate, create-admin."""

import argparse
import asyncio
import os
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from src.config import Settings, get_settings

LOGGING_INI = Path(__file__).resolve().parents[1] / "logging.ini"


def fail(message: str, code: int = 2) -> None:
    print(f"projex: {message}", file=sys.stderr)
    raise SystemExit(code)


def settings_error_line(exc: ValidationError) -> str:
    """One line that names the setting, never a traceback."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "invalid settings: " + "; ".join(parts)


def load_settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        fail(settings_error_line(exc))
        raise  # unreachable: fail() exits


def describe_database(settings: Settings) -> str:
    if settings.embedded_database:
        return (
            f"embedded PostgreSQL + pgvector in {settings.EMBEDDED_DATA_DIR} (DATABASE_URL unset)"
        )
    from sqlalchemy.engine import make_url

    return "PostgreSQL at " + make_url(settings.DATABASE_URL).render_as_string(hide_password=True)


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    if args.no_worker:
        os.environ["SERVE_WITH_WORKER"] = "false"
        get_settings.cache_clear()
    settings = load_settings()
    import src.main  # noqa: F401  every domain reads its settings here: errors before the banner

    host = "localhost" if args.host in ("0.0.0.0", "::") else args.host  # noqa: S104
    print(
        f"Projex API on http://{host}:{args.port}  (docs: http://{host}:{args.port}/docs)",
        file=sys.stderr,
    )
    print(f"Database: {describe_database(settings)}", file=sys.stderr)
    uvicorn.run(
        "src.main:app",
        host=args.host,
        port=args.port,
        reload=args.reload,
        log_config=str(LOGGING_INI),
        proxy_headers=bool(settings.TRUSTED_PROXIES),
        forwarded_allow_ips=",".join(settings.TRUSTED_PROXIES) or None,
        timeout_graceful_shutdown=args.graceful_timeout,
        server_header=False,
    )


def cmd_migrate(args: argparse.Namespace) -> None:
    from src.database import (
        downgrade_database,
        make_engine,
        resolve_database_url,
        upgrade_database,
    )

    settings = load_settings()
    if args.downgrade and settings.ENVIRONMENT == "production" and not args.allow_downgrade:
        fail("refusing to downgrade a production database without --allow-downgrade")

    async def run() -> None:
        engine = make_engine(resolve_database_url(settings), settings)
        try:
            if args.downgrade:
                await downgrade_database(engine, args.downgrade)
            else:
                await upgrade_database(engine, args.revision)
        finally:
            await engine.dispose()

    _configure_logging()
    asyncio.run(run())
    action = f"downgraded to {args.downgrade}" if args.downgrade else f"upgraded to {args.revision}"
    print(f"{action} ({describe_database(settings)})", file=sys.stderr)


def _configure_logging(level: str | None = None) -> None:
    import logging
    import logging.config

    logging.config.fileConfig(LOGGING_INI, disable_existing_loggers=False)
    if level:
        logging.getLogger().setLevel(level)
        logging.getLogger("src").setLevel(level)


def cmd_create_admin(args: argparse.Namespace) -> None:
    import getpass

    from sqlalchemy.ext.asyncio import async_sessionmaker

    from src.database import make_engine, resolve_database_url, transaction
    from src.users import service as users_service
    from src.users.schemas import UserCreate

    settings = load_settings()
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password (empty keeps an existing account's password): ")
    else:
        password = ""
    email = args.email.strip().lower()
    try:
        if password:
            UserCreate(email=email, password=password)  # the same policy as registration
    except ValidationError as exc:
        fail("; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()))

    async def run() -> tuple[bool, str]:
        engine = make_engine(resolve_database_url(settings), settings)
        try:
            async with transaction(async_sessionmaker(engine, expire_on_commit=False)) as session:
                user, created = await users_service.ensure_admin(
                    session=session, email=email, password=password or None
                )
                return created, user.email
        finally:
            await engine.dispose()

    try:
        created, stored_email = asyncio.run(run())
    except ValueError as exc:
        fail(str(exc))
        return
    print(f"{'created' if created else 'promoted'} admin {stored_email}", file=sys.stderr)


async def warm_up_embedder() -> None:
    """Load the default embedding provider before taking jobs (a local model takes seconds
    to load; a misconfigured provider is reported now, not in the first job)."""
    from src.vectorization.config import vectorization_settings as vs
    from src.vectorization.exceptions import ProviderUnavailable
    from src.vectorization.providers import get_provider

    if vs.EMBEDDING_PROVIDER not in ("hashing", "sentence-transformers"):
        return  # remote providers: nothing to load, and no call is spent on a probe
    try:
        provider = await asyncio.to_thread(
            get_provider, vs.EMBEDDING_PROVIDER, vs.EMBEDDING_MODEL, vs.EMBEDDING_DIMENSIONS
        )
        await provider.embed(["warm-up"])
    except ProviderUnavailable as exc:
        print(f"projex: embedding provider not usable: {exc}", file=sys.stderr)


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop where it is installed (as uvicorn does for the API): the workers spend
    much of their time in the event loop's socket and callback machinery."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def cmd_worker(args: argparse.Namespace) -> None:
    from sqlalchemy.exc import ProgrammingError

    from src import worker
    from src.database import dispose_engine, init_engine, resolve_database_url, upgrade_database
    from src.system.service import CheckFailed, database_check

    settings = load_settings()
    _configure_logging(settings.LOG_LEVEL)
    worker.register_tasks()  # imports every domain's tasks (and settings): errors first
    concurrency = args.concurrency or worker.worker_settings.WORKER_CONCURRENCY
    queues = args.queue or worker.worker_settings.WORKER_QUEUES
    print(
        f"Projex worker (concurrency {concurrency}, queues {', '.join(queues) or 'all'})"
        f" on {describe_database(settings)}",
        file=sys.stderr,
    )

    async def run() -> None:
        url = resolve_database_url(settings)
        engine = init_engine(url, settings, durable_commits=False)
        if settings.embedded_database:
            await upgrade_database(engine)  # as `projex serve` does: the dev database is ours
        else:
            try:
                await database_check(engine)
            except Exception as exc:  # say what is wrong in one line, before taking jobs
                await dispose_engine()
                reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
                if isinstance(exc, CheckFailed | ProgrammingError):  # old schema, none, no pgvector
                    fail(f"database not ready: {reason}; run `projex migrate` first")
                fail(f"cannot use the database: {reason}")
        await worker.open_queue(url)
        if worker.serves(worker.EMBEDDING_QUEUE, queues):
            await warm_up_embedder()
        if args.metrics_port:
            from prometheus_client import start_http_server

            from src.system.metrics import REGISTRY

            start_http_server(args.metrics_port, addr=args.metrics_host, registry=REGISTRY)
        worker.settle_heap()
        print("Projex worker ready", file=sys.stderr, flush=True)
        try:
            await worker.run_worker(concurrency=args.concurrency, queues=queues, dedicated=True)
        finally:
            await worker.close_queue()
            await dispose_engine()

    run_loop(run())


COMMANDS = {
    "serve": cmd_serve,
    "worker": cmd_worker,
    "migrate": cmd_migrate,
    "create-admin": cmd_create_admin,
}


def build_parser() -> argparse.ArgumentParser:
    from src.worker import QUEUES

    parser = argparse.ArgumentParser(prog="projex", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API (and one in-process worker)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--reload", action="store_true", help="restart on code changes (dev)")
    serve.add_argument("--no-worker", action="store_true", help="API only; run `projex worker`")
    serve.add_argument(
        "--graceful-timeout",
        type=int,
        default=20,
        help="seconds to finish in-flight requests on SIGTERM",
    )

    work = sub.add_parser("worker", help="run queue workers (fetch, extract, chunk, embed)")
    work.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="jobs run at once (default WORKER_CONCURRENCY)",
    )
    work.add_argument(
        "--queue",
        action="append",
        choices=QUEUES,
        help="take jobs from this queue only (repeatable; default WORKER_QUEUES, else all):"
        " ingestion = fetch, extract, chunk, crawls; embedding = vectors",
    )
    work.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve this worker's Prometheus metrics on this port",
    )
    work.add_argument("--metrics-host", default="127.0.0.1")

    migrate = sub.add_parser("migrate", help="apply database migrations (alembic upgrade)")
    migrate.add_argument("--revision", default="head")
    migrate.add_argument("--downgrade", metavar="REVISION", help="downgrade to REVISION")
    migrate.add_argument(
        "--allow-downgrade",
        action="store_true",
        help="required to downgrade when ENVIRONMENT=production",
    )

    admin = sub.add_parser("create-admin", help="create an admin, or promote an existing user")
    admin.add_argument("--email", required=True)
    admin.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    try:
        args = build_parser().parse_args(argv)
        COMMANDS[args.command](args)
    except ValidationError as exc:
        # Each domain reads its settings at import: a bad value is one line, not a traceback.
        if not exc.title.endswith("Settings"):
            raise
        fail(settings_error_line(exc))


if __name__ == "__main__":
    main()
