"""The one place where failures become HTTP answers: problem+json (RFC 9457) naming the field and
the rule. Never a 200 with an error inside.

| cause                                                     | status |
|-----------------------------------------------------------|--------|
| malformed body, a rule of SCORING.md broken (invalid)      | 422    |
| the caller may not do this (role, rater, appellant)        | 403    |
| no or bad bearer token                                     | 401    |
| something named does not exist (not_found)                 | 404    |
| clash with the record (conflict), a reused command id      | 409    |
| a write conflict that survived the bounded retries         | 409    |
| a body too large (413), nested too deep (422): api/http/guard.py | 413, 422 |
| too many failed sign-ins or bad tokens from one address    | 429 (Retry-After) |
| the store is unavailable; a position not reached in time   | 503 (Retry-After) |
"""

from __future__ import annotations

import sqlite3
from typing import Any

import structlog
from eventsourcing.persistence import IntegrityError as StoreIntegrityError
from eventsourcing.persistence import InterfaceError as StoreInterfaceError
from eventsourcing.persistence import OperationalError as StoreOperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.commands import COMMAND_TYPES
from domain.errors import DomainError
from domain.numbers import NUMBER_FORMAT

try:
    import psycopg
    import psycopg_pool

    _PG_UNAVAILABLE: tuple[type[Exception], ...] = (psycopg.OperationalError, psycopg.InterfaceError,
                                                        psycopg_pool.PoolTimeout)
    _PG_CONFLICT: tuple[type[Exception], ...] = (psycopg.errors.IntegrityError,)
except ImportError:  # pragma: no cover
    _PG_UNAVAILABLE, _PG_CONFLICT = (), ()

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://appraisal-ledger/problems/"
# Every problem answer: never cached, never sniffed as anything but JSON (the 500s of the server's
# last handler too, which no middleware sees).
PROBLEM_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
STORE_UNAVAILABLE: tuple[type[Exception], ...] = (StoreOperationalError, StoreInterfaceError, sqlite3.OperationalError, *_PG_UNAVAILABLE)
WRITE_CONFLICTS: tuple[type[Exception], ...] = (StoreIntegrityError, sqlite3.IntegrityError, *_PG_CONFLICT)
DOMAIN_STATUS = {"invalid": 422, "not_found": 404, "conflict": 409}
# Refusals about *who* the caller is rather than what they sent: the caller may not do this.
FORBIDDEN_RULES = frozenset({"appeal-by-subject", "rater-roles", "independent-decision"})
TITLES = {
    400: "Bad request 请求有误", 401: "Not authenticated 未认证", 403: "Forbidden 无权操作",
    404: "Not found 未找到", 405: "Method not allowed 方法不允许", 409: "Conflict 冲突",
    413: "Too large 请求过大", 415: "Unsupported media type 不支持的媒体类型",
    422: "Refused 拒绝: invalid input 输入无效", 429: "Too many attempts 尝试过多", 500: "Internal error 内部错误",
    501: "Not implemented 未实现", 503: "Unavailable 暂不可用",
}

log = structlog.get_logger("appraisal.http")


class Problem(Exception):
    """An HTTP failure with the field and the rule it concerns."""

    def __init__(self, status: int, rule: str, detail: str, field: str = "",
                 headers: dict[str, str] | None = None, title: str | None = None) -> None:
        self.status = status
        self.rule = rule
        self.detail = detail
        self.field = field
        self.headers = headers or {}
        self.title = title or TITLES.get(status, "Error")
        super().__init__(detail)

    def body(self) -> dict[str, Any]:
        return {"type": PROBLEM_BASE + self.rule, "title": self.title, "status": self.status,
                "detail": self.detail, "field": self.field, "rule": self.rule}


def from_domain(error: DomainError) -> Problem:
    status = DOMAIN_STATUS.get(error.status, 422)
    if status == 422 and error.rule in FORBIDDEN_RULES:
        status = 403
    return Problem(status, error.rule or "invalid", error.message, error.field)


def conflict_problem() -> Problem:
    return Problem(409, "concurrency-conflict",
                   "other commands kept changing the same records; nothing was recorded: send the "
                   "command again (with the same id it is recorded at most once)",
                   headers={"Retry-After": "1"})


def unavailable_problem() -> Problem:
    return Problem(503, "store-unavailable", "the event store is unavailable; nothing was recorded",
                   headers={"Retry-After": "2"})


def respond(problem: Problem, request: Request | None = None) -> JSONResponse:
    if request is not None:
        entry = getattr(request.state, "log", None)
        if isinstance(entry, dict):
            entry.update(outcome="refused" if problem.status < 500 else "failed",
                         rule=problem.rule, field=problem.field)
    return JSONResponse(problem.body(), status_code=problem.status, headers={**PROBLEM_HEADERS, **problem.headers},
                        media_type=PROBLEM_JSON)


def _validation_problem(error: RequestValidationError) -> Problem:
    first = error.errors()[0] if error.errors() else {}
    loc = [str(part) for part in first.get("loc", ())]
    source = loc[0] if loc else "body"
    # A body that is a union of command models names the chosen member (its type): drop it.
    field = ".".join(part for part in loc[1:] if part not in COMMAND_TYPES) or "(body)"
    kind = first.get("type", "")
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    if kind == "missing":
        message = "required"
    elif kind == "extra_forbidden":
        message = "unknown field"
    elif kind == "json_invalid":
        field, message = "(body)", "not valid JSON"
    elif kind in ("union_tag_invalid", "union_tag_not_found"):  # POST /commands: no command of that type
        field = "type"
    rule = "command-fields" if source == "body" else "request-parameters"
    if kind == NUMBER_FORMAT:
        rule = "number-format"
    return Problem(422, rule, message, field)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into problem+json."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return respond(exc, request)

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return respond(from_domain(exc), request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return respond(_validation_problem(exc), request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        rule = {404: "no-such-resource", 405: "method-not-allowed"}.get(exc.status_code, "http")
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 400 and "parsing the body" in detail:  # not UTF-8, not JSON
            return respond(Problem(422, "command-fields", "not valid JSON", "(body)"), request)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no resource at {request.url.path}"
        return respond(Problem(exc.status_code, rule, detail, headers=dict(exc.headers or {})), request)

    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("store_unavailable", error=type(exc).__name__)
        return respond(unavailable_problem(), request)

    async def _conflict(request: Request, exc: Exception) -> JSONResponse:
        return respond(conflict_problem(), request)

    for kind in STORE_UNAVAILABLE:
        app.add_exception_handler(kind, _unavailable)
    for kind in WRITE_CONFLICTS:
        app.add_exception_handler(kind, _conflict)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette answers with this, then re-raises for the server to log the traceback.
        return respond(Problem(500, "internal", "an unexpected error; it was logged"), request)
