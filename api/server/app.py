"""The FastAPI application: `create_app(settings)`; `appraisal serve` runs it with uvicorn.

One `AppraisalLedger` per process, opened in the lifespan (or handed in by a test) and closed on
shutdown. Routes are plain `def` (the ledger is synchronous; FastAPI runs them in its
threadpool).

Queries are answered from the read models, kept by the projection of `settings.projection`: a
daemon thread of this server started in the lifespan, inline before each read (tests), or a
separate `appraisal project` worker.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import pages
from api.http import docs, logs, problems, reads, writes
from api.http.auth import Credentials, Throttle
from api.http.guard import Guard
from api.http.read_side import Queries, ReadProgress
from api.ledger import AppraisalLedger
from api.settings import Settings

DESCRIPTION = """\
绩效考核台账 — the appraisal ledger over HTTP: every command of COMMANDS.md at a resource-style
path (the same bodies), the year's results, explanations, public breakdowns, histories, appeals and
the audit trail.

**认证 Authentication**: `Authorization: Bearer <token>`, a token from
`appraisal token create --person ID [--grant admin|recorder|inspector]`. The actor of every
command is the token's person (a body's `actor` is ignored).

**错误 Errors**: `application/problem+json` (RFC 9457) with `field` and `rule`: 401 no valid
token, 403 not allowed, 404 unknown, 409 conflict, 413 body over 2 MiB, 422 invalid input (JSON nested
over 32 deep: `body-depth`), 429 too many failed tokens from one address (Retry-After), 503 store
unavailable.

**读己所写 Read your writes**: a command's answer carries its log `position`; pass it as
`?position=` to any query, which waits (bounded) until the read side has caught up, or answers 503
with `Retry-After` (also at once when too many requests are waiting). A query without it answers
from what the read side holds: something it does not hold is 404.

**幂等 Idempotency**: give commands an `id` (or an `Idempotency-Key` header): sending it again
records nothing and answers the first answer (200 instead of 201).
"""

TAGS = [
    {"name": "commands 命令", "description": "Every change is a command (COMMANDS.md)."},
    {"name": "queries 查询", "description": "Results, explanations, breakdowns, histories, appeals, audit."},
    {"name": "service 服务", "description": "Health."},
]


def settle_collector() -> None:
    """What a server makes at startup (the application, its routes, the ledger's schemes) lives as
    long as the process: freeze it out of the cyclic collector's passes. Requests make short-lived
    objects that reference counting frees; the collector's youngest generation runs after 50,000
    allocations instead of 700. (`scripts/bench http`: about 10-20% more ledger writes per second
    and p99 from about 145 to 92 ms.)"""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def start_projection(settings: Settings) -> tuple[threading.Thread, threading.Event]:
    """The read-model projection in a daemon thread of this server, on its own ledger."""
    from projections.worker import start_in_background

    return start_in_background(lambda: AppraisalLedger(settings.db), interval=settings.projection_interval_seconds)


def create_app(settings: Settings | None = None, *, ledger: AppraisalLedger | None = None) -> FastAPI:
    settings = settings or Settings()

    def open_state(app: FastAPI, store: AppraisalLedger) -> None:
        app.state.ledger = store
        app.state.credentials = Credentials(store, cache_seconds=settings.token_cache_seconds)
        app.state.queries = Queries(store, inline=settings.projection == "inline")
        app.state.progress = ReadProgress(app.state.queries, poll=settings.wait_poll_seconds,
                                          limit=settings.wait_limit)
        if settings.bench_raw_endpoint:
            from api.http.bench_baseline import RawTable

            app.state.raw_table = RawTable(store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = None
        if ledger is None:
            store = AppraisalLedger(settings.db)
            try:
                open_state(app, store)
            except BaseException:
                store.close()
                raise
        projection = None
        if settings.projection == "background":
            projection = start_projection(settings)
        app.state.projection = projection  # (thread, stop event), for health checks and tests
        if ledger is None:  # a server process of its own (not a test's application)
            settle_collector()
        try:
            yield
        finally:
            if projection is not None:
                thread, stop = projection
                stop.set()
                thread.join(timeout=15)
            app.state.queries.close()  # its connections; opened again if the app is started again
            if store is not None:  # a handed-in ledger is closed by its owner
                store.close()

    app = FastAPI(title="Appraisal Ledger 绩效考核台账", version="1", description=DESCRIPTION,
                  openapi_tags=TAGS, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.throttle = Throttle(settings.auth_failures_max, settings.auth_failures_window_seconds)
    problems.install(app)
    # Routes are tried in order. The commands (POST and PUT only, none on a page's path and method)
    # and the queries (GET) come first: a command or a query walks past no page route (each one
    # passed costs a request a few µs). A query on a path shared with a page (GET /audit) leaves a
    # browser's request to the page (api/http/reads.py `QueryRoute`). The bench's raw endpoint,
    # when mounted, comes before everything, so that the baseline is never the dearer to route.
    if settings.bench_raw_endpoint:
        from api.http import bench_baseline

        app.include_router(bench_baseline.router)
    app.include_router(writes.router)
    app.include_router(reads.router)
    app.include_router(pages.router)
    app.include_router(docs.router)  # /docs and /redoc, every asset from this server
    app.add_middleware(Guard, max_bytes=settings.body_max_bytes, max_depth=settings.body_max_depth)
    app.add_middleware(logs.RequestLog)  # the outermost: it logs what the guard refuses too
    if ledger is not None:
        open_state(app, ledger)
    return app


def app_from_env() -> FastAPI:
    """For `uvicorn --factory api.server.app:app_from_env` (settings from the environment)."""
    settings = Settings()
    logs.configure(settings.log_format, settings.log_level)
    return create_app(settings)
