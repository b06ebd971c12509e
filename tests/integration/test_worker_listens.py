"""The worker's wait on PostgreSQL (projections/worker.py `_waiting`): one LISTEN connection for the
whole run, opened before the first catch-up, so a command committed while the worker was catching
up wakes it at once (a connection opened for each wait missed those until its timeout, and cost a
new connection on every command at an office's peak)."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest

from api.cli.demo import demo_commands
from api.ledger import AppraisalLedger
from projections import worker


def test_a_command_committed_before_the_wait_wakes_it_and_one_connection_serves_every_wait(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    connects: list[Any] = []
    real = psycopg.connect

    def counted(*args: Any, **kwargs: Any) -> Any:
        connects.append(args)
        return real(*args, **kwargs)

    ledger = AppraisalLedger(pg_url)
    try:
        commands = demo_commands(2025, departments=1, staff_per_department=2)
        ledger.submit(commands[:-1])
        monkeypatch.setattr(psycopg, "connect", counted)
        with worker._waiting(ledger) as wait:
            # committed after the listening began and before the wait: as while catching up
            ledger.submit(commands[-1:])
            started = time.monotonic()
            wait(120.0)
            assert time.monotonic() - started < 60, "woken by the NOTIFY, not by the wait's timeout"
            for _ in range(3):
                wait(0.01)
        assert len(connects) == 1
    finally:
        ledger.close()
