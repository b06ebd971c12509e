"""Dependencies of the routes, as `Annotated` aliases: the ledger, the settings, the query side,
the authenticated caller, and the read position (read-your-writes).

They are `async def`: FastAPI runs a plain `def` dependency on a worker thread, and every such hop
costs each request a thread switch (and a turn at the GIL); one that reads the store hops to a
worker thread for that read only, and the read position's wait holds no thread at all."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.http.auth import Credentials, Principal, Throttle, unauthenticated
from api.http.problems import Problem
from api.http.read_side import Queries, ReadProgress
from api.ledger import AppraisalLedger
from api.settings import Settings

bearer = HTTPBearer(auto_error=False, scheme_name="token", description=(
    "令牌 — a bearer token from `appraisal token create --person ID [--grant admin|recorder|inspector]`"))


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_ledger(request: Request) -> AppraisalLedger:
    return request.app.state.ledger


async def get_queries(request: Request) -> Queries:
    return request.app.state.queries


async def get_credentials(request: Request) -> Credentials:
    return request.app.state.credentials


SettingsDep = Annotated[Settings, Depends(get_settings)]
LedgerDep = Annotated[AppraisalLedger, Depends(get_ledger)]
QueriesDep = Annotated[Queries, Depends(get_queries)]
CredentialsDep = Annotated[Credentials, Depends(get_credentials)]


def log_entry(request: Request) -> dict[str, Any]:
    """The request's log line, filled in by the routes and written by the middleware."""
    entry = getattr(request.state, "log", None)
    if not isinstance(entry, dict):
        entry = {}
        request.state.log = entry
    return entry


BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def client_address(request: Request) -> str:
    """The address failures are counted by: the peer's (behind a proxy, uvicorn's
    `--forwarded-allow-ips` makes it the client's)."""
    return request.client.host if request.client else "unknown"


def throttled(request: Request) -> Throttle:
    """The app's throttle of failed sign-ins and bad tokens, the caller's address checked first."""
    throttle: Throttle = request.app.state.throttle
    throttle.check(client_address(request))
    return throttle


async def caller(request: Request, sent: HTTPAuthorizationCredentials | None) -> Principal:
    """The caller. A token seen in the last few seconds is answered from memory on the event loop;
    any other is looked up in the store on a worker thread. (The credentials come straight from the
    application's state: every dependency FastAPI resolves costs each request its turn.)"""
    credentials: Credentials = request.app.state.credentials
    header = request.headers.get("authorization")
    if not header:
        raise unauthenticated("token-missing", "send `Authorization: Bearer <token>`; create a token "
                              "with `appraisal token create --person ID`")
    throttle = throttled(request)
    try:
        if sent is None:
            raise unauthenticated("token-malformed", "the Authorization header must be `Bearer <token>`")
        principal = credentials.cached(sent.credentials)
        if principal is None:
            principal = await run_in_threadpool(credentials.verify, sent.credentials)
    except Problem:
        throttle.failed(client_address(request))
        raise
    log_entry(request)["actor"] = principal.person
    return principal


async def authenticate(request: Request, sent: BearerDep) -> Principal:
    return await caller(request, sent)


PrincipalDep = Annotated[Principal, Depends(authenticate)]


async def read_position(request: Request,
                        position: Annotated[int | None, Query(
                            ge=0, le=2**62, description="等待读模型追上此日志位置(命令应答中的 position)后再读 — "
                            "wait (bounded) until the read side has caught up with this log position (a "
                            "command answer's `position`); 503 with Retry-After when it has not in time or "
                            "too many requests are waiting, 422 when the log has no such position")] = None) -> int:
    """Read-your-writes. A position past the end of the log was never answered to anyone: 422. One
    in the log that the read side has not reached yet is waited for, within `wait_seconds`, on the
    event loop (`ReadProgress`: no thread is held while waiting). The reads go to a worker thread.
    Without one, the answer's position is the read side's last reading (`ReadProgress.reading`, at
    most `wait_poll_seconds` old): the read side had reached it before the documents are read.
    (The ledger, the settings and the reading come straight from the application's state, as the
    caller's credentials do: every query takes this dependency.)"""
    state = request.app.state
    ledger: AppraisalLedger = state.ledger
    settings: Settings = state.settings
    progress: ReadProgress = state.progress
    if position is None or position == 0:
        return await progress.reading()
    end = await run_in_threadpool(ledger.event_count)
    if position > end:
        raise Problem(422, "position-beyond-log", f"the log ends at position {end}: {position} was "
                      "never the answer to a command", field="position")
    reached = await progress.reach(position, settings.wait_seconds)
    if reached < position:
        raise Problem(503, "position-not-reached", f"the read side is at position {reached}, not yet "
                      f"{position}; try again shortly", field="position", headers={"Retry-After": "1"})
    log_entry(request)["position"] = reached
    return reached


PositionDep = Annotated[int, Depends(read_position)]
