"""Logging at the edge with structlog: one line per request with the request id, the actor, the
command type, the outcome (and the rule of a refusal) and the latency. JSON in production,
readable console lines in development; the server's own loggers (uvicorn) go through the same
renderer.

Never logged: tokens (no header is logged), bodies and query strings (a rating's score lives
there), refusal messages (they may quote a score), and local variables of tracebacks.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def configure(log_format: str = "console", level: str = "INFO") -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if log_format == "json":
        renderer: Any = structlog.processors.JSONRenderer(ensure_ascii=False)
        shared.append(structlog.processors.format_exc_info)
    else:
        renderer = structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback,
                                                 colors=sys.stderr.isatty())
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = _StderrHandler()
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        foreign_pre_chain=shared))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # the middleware logs each request


log = structlog.get_logger("appraisal.http")


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
