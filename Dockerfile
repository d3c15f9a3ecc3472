# Production image: the API by default; the same image runs workers and migrations.
#   docker run IMAGE                       -> projex serve --host 0.0.0.0 --no-worker
#   docker run IMAGE projex worker         -> a queue worker (run as many as you need;
#                                             `--queue ingestion|embedding` dedicates it)
#   docker run IMAGE projex migrate        -> alembic upgrade head (run once per release)
# Needs DATABASE_URL, SECRET_KEY, STORAGE_URL (s3://...) and ENVIRONMENT=production.
FROM python:3.11-slim AS build
RUN pip install --no-cache-dir uv
WORKDIR /app
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY src ./src
COPY alembic ./alembic
COPY alembic.ini logging.ini ./
RUN uv sync --frozen --no-dev

FROM python:3.11-slim
RUN groupadd --system projex && useradd --system --gid projex --home /app projex
WORKDIR /app
COPY --from=build --chown=projex:projex /app /app
ENV PATH="/app/.venv/bin:$PATH" PYTHONUNBUFFERED=1 ENVIRONMENT=production
USER projex
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/api/v1/system/health/live', timeout=2).status == 200 else 1)"
CMD ["projex", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-worker"]
