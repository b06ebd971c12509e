"""Reading the event log in pages, decoded, in order: the input of every read model and replay."""

from __future__ import annotations

from collections.abc import Container, Iterator
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import orjson

from domain.aggregates import Appraisal, Year
from domain.log import LedgerState

PAGE = 5000


class Undecodable(NamedTuple):
    """A stored event that cannot be decoded (an unknown topic, a state that is not an event's):
    what `read_events(..., tolerant=True)` yields in its place, so that the read models can set it
    aside (projections/projection.py) instead of stopping on it."""

    originator_id: UUID
    originator_version: int
    topic: str
    error: Exception


class Passed(NamedTuple):
    """A stored event of an aggregate that `read_events(..., passing=...)` names: not decoded
    (`stored`: the event as stored, its state the bytes the transcoder wrote)."""

    originator_id: UUID
    originator_version: int
    stored: Any


def read_events(ledger: Any, start: int = 0, stop: int | None = None,
                page: int = PAGE, *, tolerant: bool = False,
                passing: Container[int] = frozenset()) -> Iterator[tuple[int, Any]]:
    """(position, domain event) for every event after `start`, up to `stop` (inclusive). With
    `tolerant`, an event that cannot be decoded comes as an `Undecodable` instead of raising. An
    event of an aggregate in `passing` (by its id's integer; looked at event by event, so it may
    grow meanwhile) comes as a `Passed`, not decoded."""
    position = start
    while True:
        notifications = ledger.recorder.select_notifications(position, page, stop=stop,
                                                              inclusive_of_start=False)
        if not notifications:
            return
        for notification in notifications:
            if notification.originator_id.int in passing:
                yield notification.id, Passed(notification.originator_id, notification.originator_version,
                                              notification)
                continue
            if not tolerant:
                yield notification.id, ledger.mapper.to_domain_event(notification)
                continue
            try:
                event = ledger.mapper.to_domain_event(notification)
            except Exception as error:  # set aside by the read models
                event = Undecodable(notification.originator_id, notification.originator_version,
                                    notification.topic, error)
            yield notification.id, event
        position = notifications[-1].id
        if len(notifications) < page:
            return


def fold(ledger: Any, *, stop: int | None = None, recorded_by: datetime | None = None,
         year: int | None = None) -> LedgerState:
    """`fold_to`'s state."""
    return fold_to(ledger, stop=stop, recorded_by=recorded_by, year=year)[0]


def fold_to(ledger: Any, *, stop: int | None = None, recorded_by: datetime | None = None,
            year: int | None = None) -> tuple[LedgerState, bool]:
    """The state after the whole log, or after `stop`, or as shown at the recording time
    `recorded_by` (the log up to the last command whose events were all recorded at or before it:
    a command's events are written in one transaction, so a moment between two of them shows
    none of it, as `appraisal.open` half applied would show a year's subject without its appraisal).

    With `year`, only what `LedgerState.year_facts(year)` reads is folded: the appraisals of other
    years and the years other than it and the two before it (their publications' tiers) are met
    once, at their opening, and their events pass undecoded from then on (a log of ten years:
    about a tenth of the work). Where the cut at `recorded_by` falls does not depend on `year`:
    a passed event's recording time and command are read from its stored JSON (`_recorded`).

    With it, whether the fold met an event recorded after `recorded_by` (and stopped there): the
    state is then the log's before that event, which no event appended later changes (the log only
    grows); otherwise a later event may still belong before the cut."""
    state = LedgerState()
    passing: set[int] = set()  # the aggregates `year` does not read, by their id's integer
    command: list[tuple[int, Any, Any]] = []  # (position, event or None: passed, command id) of the
    # command being read, applied once it is whole
    for position, event in read_events(ledger, stop=stop, passing=passing):
        if type(event) is Passed:
            if recorded_by is None:
                continue
            command_id, timestamp = _recorded(ledger, event)
            event = None
        else:
            command_id, timestamp = getattr(event, "command_id", None), event.timestamp
            if year is not None and _elsewhere(event, year):
                passing.add(event.originator_id.int)
                event = None
        if command and (command_id is None or command_id != command[-1][2]):
            _apply(state, command)
            command = []
        if recorded_by is not None and timestamp > recorded_by:
            return state, True  # (and the command it belongs to, if begun before, is left out whole)
        command.append((position, event, command_id))
    _apply(state, command)
    return state, False


def _apply(state: LedgerState, command: list[tuple[int, Any, Any]]) -> None:
    for position, event, _ in command:
        if event is not None:
            state.apply(event, position)


def _elsewhere(event: Any, year: int) -> bool:
    """The opening of an aggregate that the year's facts do not read."""
    kind = type(event)
    if kind is Appraisal.Opened:
        return bool(event.year != year)
    if kind is Year.Opened:
        return event.year not in (year, year - 1, year - 2)
    return False


def _recorded(ledger: Any, passed: Passed) -> tuple[Any, datetime]:
    """A passed event's command id and recording time, read from its stored JSON as the library's
    transcoder wrote it (the timestamp a `datetime_iso`, decoded as the library decodes it), at
    a fraction of decoding the event; any other state is decoded by the library."""
    values = orjson.loads(passed.stored.state)
    stamp = values.get("timestamp") if type(values) is dict else None
    if type(stamp) is dict and stamp.get("_type_") == "datetime_iso" and type(stamp.get("_data_")) is str:
        return values.get("command_id"), datetime.fromisoformat(stamp["_data_"])
    event = ledger.mapper.to_domain_event(passed.stored)
    return getattr(event, "command_id", None), event.timestamp
