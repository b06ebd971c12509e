"""Shared by the HTTP tests: the worked example of SCORING.md §10 loaded into a store, the app
on it (its read models caught up before each read: projection `inline`, unless told otherwise),
and one token per role."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from api.http.auth import Credentials
from api.ledger import AppraisalLedger
from api.server.app import create_app
from api.settings import Settings
from tests.builders.worked_example import build

# Who holds which token in these tests (the worked example's people, and two offices).
HOLDERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "admin": ("admin-2", ("admin",)),       # decides appeals; recorded none of the items
    "recorder": ("hr-office", ("recorder",)),
    "inspector": ("p-S1", ("inspector",)),
    "leader": ("p-L1", ()),                 # in charge of d-01: rates p-A and p-H1 as in_charge
    "head": ("p-H1", ()),                   # head of d-01: rates p-A as department_head
    "staff": ("p-A", ()),                   # a member of staff of d-01
    "outsider": ("p-L2", ()),               # a leader in charge of nothing here
}


@dataclass
class World:
    ledger: AppraisalLedger
    app: FastAPI
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def settings(db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"db": db_url, "projection": "inline", "token_cache_seconds": 0, "wait_seconds": 0.2,
                              **overrides}
    return Settings(**values)


@contextmanager
def world(db_url: str, *, load: bool = True, **overrides: Any) -> Iterator[World]:
    ledger = AppraisalLedger(db_url)
    try:
        if load:
            ledger.submit(build())
        app = create_app(settings(db_url, **overrides), ledger=ledger)
        credentials: Credentials = app.state.credentials
        tokens = {role: credentials.create(person, grants, created_by="tests")[0]
                  for role, (person, grants) in HOLDERS.items()}
        yield World(ledger, app, tokens)
    finally:
        ledger.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """The app under a real uvicorn server in a thread: its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
