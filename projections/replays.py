"""Replays under another scheme version (SCORING.md §9), read from one fold of the log.

The log is read and folded once (`projections.events.fold`); the year's current results (under its
own binding) and the replay (under the other version) are both computed from that one state, so
they see exactly the same facts. Nothing is recorded: a replay only reads the store.

Plain functions for the command line and the HTTP API:
- `replay(ledger, year, scheme)`: the replay report (domain/replay.py) as a JSON-ready dict;
- `replayed_results(ledger, year, scheme)`: the results export of the year under that version
  (status `replay`): the document `appraisal results --scheme` prints.
`scheme` is `("bianban", 2)` or the text `"bianban@2"`. Unknown years and versions raise
`NotFound`, a malformed reference `DomainError` (field `scheme`).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from api.store.gcpause import paused_gc
from domain.log import LedgerState
from domain.replay import compare_sides, parse_scheme_ref, replay_side
from domain.results import YearResults, compute_year, export
from projections.events import fold

SchemeRef = tuple[str, int] | str


def scheme_ref(scheme: SchemeRef) -> tuple[str, int]:
    return parse_scheme_ref(scheme) if isinstance(scheme, str) else (scheme[0], int(scheme[1]))


def replay_results(state: LedgerState, year: int, scheme: SchemeRef, *,
                   known_at: datetime | None = None) -> tuple[YearResults, YearResults]:
    """(current, replayed): the year under its own binding and under `scheme`, from one state."""
    ref = scheme_ref(scheme)
    replayed = compute_year(state.year_facts(year, scheme=ref, known_at=known_at))
    current = compute_year(state.year_facts(year, known_at=known_at))
    return current, replayed


def replay(ledger: Any, year: int, scheme: SchemeRef, *, state: LedgerState | None = None,
           known_at: datetime | None = None, timings: dict[str, float] | None = None) -> dict[str, Any]:
    """The replay report of `year` under `scheme`, beside its current results; records nothing.

    One fold of the log; the replay is computed first (an unknown version fails before any other
    work), reduced to what the report reads, and let go before the current results are computed,
    so that only one year's full trace is in memory at a time. `timings`, when given, receives the
    seconds spent in each phase (fold, replayed, current, report; wall clock, and `*_cpu`)."""
    clock = _Clock(timings)
    ref = scheme_ref(scheme)
    with paused_gc():
        folded = state if state is not None else fold(ledger)
        clock.lap("fold")
        replayed = replay_side(compute_year(folded.year_facts(year, scheme=ref, known_at=known_at)))
        clock.lap("replayed")
        current = replay_side(compute_year(folded.year_facts(year, known_at=known_at)))
        clock.lap("current")
        report = compare_sides(current, replayed)
        clock.lap("report")
    return report


def replayed_results(ledger: Any, year: int, scheme: SchemeRef, *,
                     state: LedgerState | None = None) -> dict[str, Any]:
    """The results export of `year` as if it used `scheme` (status `replay`); records nothing."""
    with paused_gc():
        folded = state if state is not None else fold(ledger)
        return export(compute_year(folded.year_facts(year, scheme=scheme_ref(scheme))))


class _Clock:
    """Wall-clock seconds per phase (`name`) and CPU seconds of this process (`name_cpu`)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings
        self.last = (time.perf_counter(), time.process_time())

    def lap(self, name: str) -> None:
        if self.timings is not None:
            now = (time.perf_counter(), time.process_time())
            self.timings[name] = now[0] - self.last[0]
            self.timings[f"{name}_cpu"] = now[1] - self.last[1]
            self.last = now


__all__ = ["paused_gc", "replay", "replay_results", "replayed_results", "scheme_ref"]
