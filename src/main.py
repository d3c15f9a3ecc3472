"""Application factory: lifespan, middleware, offline API docs, routers under /api/v1."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from src import worker
from src.auth.router import router as auth_router
from src.chunks.router import router as chunks_router
from src.config import Settings, get_settings
from src.database import dispose_engine, init_engine, resolve_database_url, upgrade_database
from src.exceptions import ERROR_RESPONSES, register_exception_handlers
from src.log import get_logger
from src.middleware import REQUEST_ID_HEADER, BodyGuardMiddleware, RequestIdMiddleware
from src.projects.router import router as projects_router
from src.shares.router import router as shares_router
from src.system import service as system_service
from src.system.metrics import MetricsMiddleware
from src.system.router import metrics_router
from src.system.router import router as system_router
from src.urls.router import router as urls_router
from src.users.router import router as users_router
from src.vectorization.config import vectorization_settings
from src.vectorization.router import router as vectorization_router

log = get_logger(__name__)

API_PREFIX = "/api/v1"
DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"


def api_router() -> APIRouter:
    router = APIRouter(prefix=API_PREFIX, responses=ERROR_RESPONSES)
    for domain_router in (
        system_router,
        auth_router,
        users_router,
        projects_router,
        urls_router,
        chunks_router,
        vectorization_router,
        shares_router,
    ):
        router.include_router(domain_router)
    return router


def make_lifespan(settings: Settings, manage_database: bool):
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        worker_task: asyncio.Task | None = None
        if manage_database:
            url = await asyncio.to_thread(resolve_database_url, settings)
            engine = init_engine(url, settings)
            if settings.embedded_database:
                await upgrade_database(engine)
            await worker.open_queue(url)
            if settings.SERVE_WITH_WORKER:
                worker_task = asyncio.create_task(
                    worker.run_worker(install_signal_handlers=False), name="in-process-worker"
                )
        if vectorization_settings.EMBEDDING_PROVIDER == "hashing":
            log.warning(
                "embeddings.hashing_provider",
                note="the default hashing embedder is lexical (shared words), not semantic; "
                "set EMBEDDING_PROVIDER=openai|bedrock|sentence-transformers for meaning",
            )
        if manage_database:  # the server process (tests build many apps in one process)
            worker.settle_heap()
        log.info(
            "app.started",
            version=system_service.app_version(),
            environment=settings.ENVIRONMENT,
            in_process_worker=worker_task is not None,
        )
        try:
            yield
        finally:
            if worker_task is not None:
                worker_task.cancel()  # procrastinate finishes running jobs within its grace period
                with contextlib.suppress(asyncio.CancelledError):
                    await worker_task
            if manage_database:
                await worker.close_queue()
                await dispose_engine()
            log.info("app.stopped")

    return lifespan


def mount_docs(app: FastAPI) -> None:
    """Swagger UI and ReDoc served from local assets: no CDN, works offline."""
    app.mount("/docs-assets", StaticFiles(directory=DOCS_ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API docs",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon.png",
            swagger_ui_parameters={"persistAuthorization": True},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — ReDoc",
            redoc_js_url="/docs-assets/redoc.standalone.js",
            redoc_favicon_url="/docs-assets/favicon.png",
            with_google_fonts=False,
        )


def create_app(settings: Settings | None = None, *, manage_database: bool = True) -> FastAPI:
    """Build the app. Tests pass `manage_database=False` and bind their own engine."""
    settings = settings or get_settings()
    logging.getLogger("src").setLevel(settings.LOG_LEVEL)
    app = FastAPI(
        title=settings.APP_NAME,
        version=system_service.app_version(),
        summary="URL/chunk vectorization: ingest, chunk, embed and search web pages.",
        docs_url=None,
        redoc_url=None,
        lifespan=make_lifespan(settings, manage_database),
    )
    register_exception_handlers(app)
    app.include_router(api_router())
    app.include_router(metrics_router)
    mount_docs(app)

    # Last added runs first: request id wraps everything, so every answer carries it.
    app.add_middleware(
        BodyGuardMiddleware,
        max_bytes=settings.MAX_BODY_BYTES,
        large_paths=(API_PREFIX + "/projects/", ("/vectors", "/documents")),
        large_max_bytes=vectorization_settings.PUSH_MAX_BODY_BYTES,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.CORS_ORIGINS,
        allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "If-Match", "X-API-Key", REQUEST_ID_HEADER],
        expose_headers=["ETag", "Location", "Retry-After", REQUEST_ID_HEADER],
        max_age=600,
    )
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(MetricsMiddleware)
    return app


app = create_app()
