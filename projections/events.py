"""Reading the event log in pages, decoded, in order: the input of every read model and replay."""

from __future__ import annotations

from collections.abc import Container, Iterator
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

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
    """A stored event of an aggregate that `read_events(..., passing=...)` names: not decoded."""

    originator_id: UUID
    originator_version: int


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
                yield notification.id, Passed(notification.originator_id, notification.originator_version)
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


def fold(ledger: Any, *, stop: int | None = None, recorded_by: datetime | None = None) -> LedgerState:
    """The state after the whole log, or after `stop`, or as shown at the recording time
    `recorded_by` (the log up to the last command whose events were all recorded at or before it:
    a command's events are written in one transaction, so a moment between two of them shows
    none of it, as `appraisal.open` half applied would show a year's subject without its appraisal)."""
    state = LedgerState()
    command: list[tuple[int, Any]] = []  # the events of the command being read, applied once it is whole
    for position, event in read_events(ledger, stop=stop):
        command_id = getattr(event, "command_id", None)
        if command and (command_id is None or command_id != getattr(command[-1][1], "command_id", None)):
            for at, earlier in command:
                state.apply(earlier, at)
            command = []
        if recorded_by is not None and event.timestamp > recorded_by:
            return state  # (and the command it belongs to, if begun before, is left out whole)
        command.append((position, event))
    for at, earlier in command:
        state.apply(earlier, at)
    return state
