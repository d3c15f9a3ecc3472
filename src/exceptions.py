"""AppError and the one place that renders errors as RFC 9457 problem+json."""

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from src.log import get_logger

log = get_logger(__name__)

PROBLEM_JSON = "application/problem+json"


class AppError(Exception):
    status_code = 500
    code = "internal_error"
    title = "Internal error"
    detail: str | None = None
    headers: dict[str, str] | None = None
    commit_transaction = False  # True: the request's writes are kept despite the error

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.detail = detail if detail is not None else self.detail or self.title
        self.headers = headers or self.headers
        self.extra = extra or {}
        super().__init__(self.detail)


class BadRequest(AppError):
    status_code = 400
    code = "bad_request"
    title = "Bad request"


class MalformedJSON(AppError):
    status_code = 400
    code = "malformed_json"
    title = "Malformed JSON body"


class NotAuthenticated(AppError):
    status_code = 401
    code = "not_authenticated"
    title = "Not authenticated"
    headers = {"WWW-Authenticate": "Bearer"}


class PermissionDenied(AppError):
    status_code = 403
    code = "permission_denied"
    title = "Permission denied"


class NotFound(AppError):
    status_code = 404
    code = "not_found"
    title = "Not found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"
    title = "Conflict"


class PreconditionFailed(AppError):
    status_code = 412
    code = "version_conflict"
    title = "The resource changed since you read it"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"
    title = "Payload too large"


class UnsupportedMediaType(AppError):
    status_code = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


class RateLimited(AppError):
    status_code = 429
    code = "rate_limited"
    title = "Too many requests"


class ServiceUnavailable(AppError):
    status_code = 503
    code = "service_unavailable"
    title = "Service unavailable"


class InvalidText(AppError):
    status_code = 422
    code = "invalid_text"
    title = "Text contains characters that cannot be stored"
    detail = "Text must not contain NUL (\\u0000) characters."


def is_invalid_text(exc: BaseException) -> bool:
    """PostgreSQL refused a string (SQLSTATE 22021: NUL byte or invalid UTF-8)."""
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) == "22021"


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"
    title = "Database unavailable"


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str | None = None


class Problem(BaseModel):
    """RFC 9457 problem details, as every error is answered."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldError] | None = None


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "model": Problem,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


# Declared on every /api/v1 route so clients (and schemathesis) know the error shape.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem("Malformed request (e.g. invalid JSON)"),
    401: _problem("Missing or invalid credentials"),
    403: _problem("Known caller without the right (role, scope)"),
    404: _problem("Not found, or not visible to the caller"),
    409: _problem("Conflict with the current state"),
    412: _problem("Stale If-Match"),
    413: _problem("Payload too large"),
    415: _problem("Unsupported media type"),
    422: _problem("Invalid payload or parameters"),
    429: _problem("Rate limited; see Retry-After"),
    503: _problem("A dependency (database, storage, queue) is unavailable"),
}


_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def problem_response(
    *,
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://projex.dev/problems/{code.replace('_', '-')}",
        "title": title,
        "status": status,
        "detail": detail or title,
        "code": code,
    }
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def is_db_unavailable(exc: BaseException) -> bool:
    """The database cannot be reached (refused, dropped, timed out), as opposed to a query
    that the database or driver rejected."""
    if isinstance(exc, PoolTimeoutError | ConnectionError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = exc.orig
        cause = getattr(orig, "__cause__", None) or orig
        name = type(cause).__name__
        return (
            isinstance(cause, ConnectionError | OSError)
            or "Connection" in name
            or ("connection is closed" in str(orig).lower())
        )
    return isinstance(exc, OSError) and exc.errno is not None


def _clean_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cleaned = []
    for err in errors:
        item = {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type")}
        cleaned.append(item)
    return cleaned


def register_exception_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return problem_response(
            status=exc.status_code,
            code=exc.code,
            title=exc.title,
            detail=exc.detail,
            headers=exc.headers,
            extra=exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(err.get("type") == "json_invalid" for err in errors):
            return problem_response(
                status=400,
                code=MalformedJSON.code,
                title=MalformedJSON.title,
                detail="The request body is not valid JSON.",
            )
        return problem_response(
            status=422,
            code="validation_error",
            title="Invalid request",
            detail="; ".join(
                f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}"
                for err in errors[:5]
            ),
            extra={"errors": _clean_errors(errors)},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        detail = exc.detail if isinstance(exc.detail, str) else title
        return problem_response(
            status=status,
            code=_HTTP_CODES.get(status, f"http_{status}"),
            title=title,
            detail=detail,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unhandled(_: Request, exc: Exception) -> JSONResponse:
        if is_db_unavailable(exc):
            log.error("database.unavailable", error=type(exc).__name__)
            return problem_response(
                status=503,
                code=DatabaseUnavailable.code,
                title=DatabaseUnavailable.title,
                detail="The database cannot be reached; try again shortly.",
                headers={"Retry-After": "5"},
            )
        log.exception("request.unhandled_error", error=type(exc).__name__)
        return problem_response(status=500, code="internal_error", title="Internal error")
