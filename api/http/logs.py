"""Logging at the edge with structlog: one line per request with the request id, the actor, the
command type, the outcome (and the rule of a refusal) and the latency. JSON in production,
readable console lines in development; the server's own loggers (uvicorn) go through the same
renderer.

Never logged: tokens (no header is logged), bodies and query strings (a rating's score lives
there), refusal messages (they may quote a score), and local variables of tracebacks.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
import uuid
from typing import Any

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def configure(log_format: str = "console", level: str = "INFO") -> None:
    """Our loggers (`structlog.get_logger`) render each line and write it to standard error
    directly: through the standard library's logging, a request's line cost about 50 µs of the
    event loop's time, written directly about 8. Other libraries' loggers (uvicorn) go through
    the standard library to the same renderer."""
    threshold = logging.getLevelNamesMapping().get(level.upper())
    if threshold is None:
        raise ValueError(f"log level {level!r} (APPRAISAL_LOG_LEVEL): one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    stamps: list[Any] = [structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name,
                         structlog.processors.TimeStamper(fmt="iso", utc=True)]
    if log_format == "json":
        renderers: list[Any] = [structlog.processors.format_exc_info,
                                structlog.processors.JSONRenderer(serializer=_json_line)]
    else:
        renderers = [structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback,
                                                   colors=sys.stderr.isatty())]
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, *stamps, *renderers],
        logger_factory=_StderrLogger,
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        cache_logger_on_first_use=False,
    )
    handler = _StderrHandler()
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderers],
        foreign_pre_chain=[structlog.contextvars.merge_contextvars, *stamps]))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(threshold)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # the middleware logs each request


def _json_line(event: dict[str, Any], **options: Any) -> str:
    """A line of JSON, UTF-8 as is (orjson; what it refuses, such as an integer beyond 64 bits, by json)."""
    try:
        return orjson.dumps(event, default=options.get("default")).decode()
    except TypeError:
        return json.dumps(event, ensure_ascii=False, **options)


log = structlog.get_logger("appraisal.http")
_WRITE = threading.Lock()


class _StderrLogger:
    """structlog's `PrintLogger`, writing to whatever `sys.stderr` is at the time (a test's
    capture, a redirected stream), one whole line per write."""

    def __init__(self, name: str | None = None, *_: Any) -> None:
        self.name = name or ""

    def msg(self, message: str) -> None:
        with _WRITE:
            sys.stderr.write(message + "\n")

    log = debug = info = warn = warning = error = err = critical = exception = fatal = failure = msg


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time (a test's capture, a redirected stream)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


class RequestLog:
    """ASGI middleware: a request id for every request (from `X-Request-ID` when it is sane), the
    line the routes fill in (`request.state.log`), written when the answer has gone out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        sent_id = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = sent_id if REQUEST_ID.match(sent_id) else uuid.uuid4().hex
        entry: dict[str, Any] = {"request_id": request_id, "method": scope.get("method"),
                                 "path": scope.get("path")}
        scope.setdefault("state", {})["log"] = entry
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            entry.setdefault("outcome", "failed")
            raise
        finally:
            entry.setdefault("outcome", "ok" if status < 400 else "refused" if status < 500 else "failed")
            latency_ms = round((time.perf_counter() - started) * 1000, 2)
            level = "error" if status >= 500 else "info"
            getattr(log, level)("request", status=status, latency_ms=latency_ms, **entry)
