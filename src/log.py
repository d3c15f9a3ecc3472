"""Structured key=value logging with the request id on every line.

`get_logger(__name__).info("url.fetched", url_id=..., status=...)` writes one line:
`ts=… level=info logger=src.urls.service event=url.fetched request_id=… url_id=… status=…`.
"""

import contextvars
import logging
import re
from datetime import UTC, datetime
from typing import Any

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)

_SAFE = re.compile(r"^[A-Za-z0-9_./:@+-]*$")
# Secrets never reach a log line, whatever a caller passes.
_SECRET_PATTERNS = [
    (re.compile(r"(pj[xs]_[A-Za-z0-9]{4,8})[A-Za-z0-9_-]+"), r"\1…"),
    (re.compile(r"(/shared/)([A-Za-z0-9_-]{4,12})[A-Za-z0-9_-]*"), r"\1\2…"),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1…"),
]


def redact(text: str) -> str:
    for pattern, repl in _SECRET_PATTERNS:
        text = pattern.sub(repl, text)
    return text


def _fmt_value(value: Any) -> str:
    text = redact(str(value))
    if _SAFE.match(text) and text:
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class KeyValueFormatter(logging.Formatter):
    """Formats records as `key=value` pairs; used by logging.ini."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            fields["request_id"] = request_id
        fields.update(getattr(record, "fields", {}) or {})
        line = " ".join(f"{key}={_fmt_value(value)}" for key, value in fields.items())
        if record.exc_info:
            line += "\n" + redact(self.formatException(record.exc_info))
        return line


class EventLogger:
    """A thin wrapper so call sites read `log.info("event.name", key=value)`."""

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)

    def _log(
        self, level: int, event: str, exc_info: bool | BaseException, fields: dict[str, Any]
    ) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, event, extra={"fields": fields}, exc_info=exc_info)

    def debug(self, event: str, **fields: Any) -> None:
        self._log(logging.DEBUG, event, False, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log(logging.INFO, event, False, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log(logging.WARNING, event, False, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log(logging.ERROR, event, False, fields)

    def exception(self, event: str, exc: BaseException | None = None, **fields: Any) -> None:
        """An error with its traceback: the one being handled, or `exc` (e.g. gathered)."""
        self._log(logging.ERROR, event, exc if exc is not None else True, fields)


def get_logger(name: str) -> EventLogger:
    return EventLogger(name)


class AccessLogFormatter(KeyValueFormatter):
    """uvicorn's access records carry (client, method, path, version, status) as args."""

    def format(self, record: logging.LogRecord) -> str:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            client, method, path, _version, status = args
            record.msg, record.args = "http.request", ()
            record.fields = {"client": client, "method": method, "path": path, "status": status}
        return super().format(record)
