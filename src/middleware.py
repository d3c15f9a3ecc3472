"""Pure-ASGI middleware: request id, body-size cap, content-type guard."""

import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from src.exceptions import PayloadTooLarge, UnsupportedMediaType, problem_response
from src.log import request_id_var

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    """Takes a sane incoming X-Request-ID or makes one; echoes it and logs with it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


_BODY_METHODS = {"POST", "PUT", "PATCH"}
_ACCEPTED_TYPES = ("application/json", "application/x-www-form-urlencoded", "multipart/form-data")


def _accepted_content_type(value: str) -> bool:
    media = value.split(";", 1)[0].strip().lower()
    return media in _ACCEPTED_TYPES or (
        media.startswith("application/") and media.endswith("+json")
    )


class BodyGuardMiddleware:
    """Bodies over `max_bytes` → 413 (also while streaming); non-JSON/form bodies → 415."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        large_paths: tuple[str, tuple[str, ...]] | None = None,
        large_max_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.default_max = max_bytes
        self.large_paths = large_paths  # (prefix, suffixes): bulk push endpoints
        self.large_max = large_max_bytes or max_bytes

    def _limit(self, path: str) -> int:
        if self.large_paths:
            prefix, suffixes = self.large_paths
            if path.startswith(prefix) and path.endswith(suffixes):
                return self.large_max
        return self.default_max

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        max_bytes = self._limit(scope["path"])
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            await self._reject(
                PayloadTooLarge(self._too_large_detail(max_bytes)), scope, receive, send
            )
            return
        has_body = (length is not None and length != "0") or "transfer-encoding" in headers
        content_type = headers.get("content-type")
        if has_body and content_type is not None and not _accepted_content_type(content_type):
            exc = UnsupportedMediaType(
                f"Content-Type {content_type.split(';')[0]!r} is not accepted;"
                " send application/json."
            )
            await self._reject(exc, scope, receive, send)
            return

        received = 0
        started = False
        rejected = False

        async def counting_receive() -> Message:
            nonlocal received, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes and not started:
                    # Answer 413 now; the app sees a disconnect and its answer is dropped.
                    rejected = True
                    await self._reject(
                        PayloadTooLarge(self._too_large_detail(max_bytes)), scope, receive, send
                    )
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if rejected:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counting_receive, tracking_send)

    @staticmethod
    def _too_large_detail(max_bytes: int) -> str:
        return f"The request body exceeds {max_bytes} bytes."

    @staticmethod
    async def _reject(
        exc: PayloadTooLarge | UnsupportedMediaType, scope: Scope, receive: Receive, send: Send
    ) -> None:
        response = problem_response(
            status=exc.status_code, code=exc.code, title=exc.title, detail=exc.detail
        )
        await response(scope, receive, send)
