"""Group commit: the writes of concurrent threads (HTTP requests) go to the store together.

Every write of the ledger takes the log's write lock (PostgreSQL: the events table's lock; SQLite:
the database's) and pays a transaction: several round trips (PostgreSQL: the lock and checks,
the positions, the COPYs; SQLite's statements), a commit, and a turn at the GIL for each step. Under
concurrent requests those writes queue up one behind another. A group commit lets the first
waiting writer (the leader) write every batch queued at that moment in one transaction, while the
others (followers) wait for their answer; what queued while it wrote goes next, led by the
group commit's writer thread.

Each batch stays atomic (its events, its command rows and its chain rows go in together or not at
all) and keeps its order in the log. Batches that clash inside a group (the same aggregate version
or the same command id, decided concurrently from the same state, or a batch that read an aggregate
an earlier batch of the group changes) are not sent: all but the first get the store's own
`IntegrityError`, which the ledger answers by deciding again. The batches' read sets (what their
decisions read or changed, at the versions they started from) are checked by the store as one.
When the group's transaction fails anyway (a clash with what another process wrote), each batch is
written again on its own, so one batch's conflict never refuses another. A single writer (an
import) writes its batches directly, as before.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import IntegrityError

from api.store.storage import CommandRow

Put = Callable[[list[Any], list[CommandRow], dict[Any, int]], Sequence[int]]


@dataclass(eq=False)
class _Batch:
    events: list[Any]
    rows: list[CommandRow]
    read: dict[Any, int]  # aggregate id -> the version the batch's decisions started from
    done: threading.Event = field(default_factory=threading.Event)
    positions: Sequence[int] = ()
    error: BaseException | None = None


class GroupCommit:
    """`write(events, rows, read)` returns the events' log positions once they are recorded, or
    raises what recording them raised. `put` records one list of events with its command rows in one
    transaction, provided the aggregates in `read` are still at those versions, and returns their
    positions."""

    def __init__(self, put: Put, max_group: int = 64) -> None:
        self._put = put
        self._max_group = max_group
        self._lock = threading.Lock()
        self._queue: list[_Batch] = []
        self._writing = False  # a leader is writing, or a writer thread is about to
        self.groups = 0  # transactions of more than one batch (for tests and the bench)
        self._writer: threading.Thread | None = None  # leads after a leader, for what queued meanwhile
        self._leads: queue.SimpleQueue[None] = queue.SimpleQueue()

    def write(self, events: list[Any], rows: list[CommandRow], read: dict[Any, int] | None = None
              ) -> Sequence[int]:
        batch = _Batch(events, rows, read or {})
        with self._lock:
            self._queue.append(batch)
            lead = not self._writing
            self._writing = True
        if lead:
            self._lead()
        batch.done.wait()  # written by this thread, or by another leader
        if batch.error is not None:
            raise batch.error
        return batch.positions

    def _wake_writer(self) -> None:
        """(Under the lock.) The writer thread leads next."""
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_next, name="group-commit-writer", daemon=True)
            self._writer.start()
        self._leads.put(None)

    def _write_next(self) -> None:
        while True:
            self._leads.get()
            self._lead()

    def _lead(self) -> None:
        with self._lock:
            group, self._queue = self._queue[:self._max_group], self._queue[self._max_group:]
        try:
            self._write_group(group)
        finally:
            with self._lock:
                if self._queue:  # what queued meanwhile: the writer thread leads next
                    self._wake_writer()
                else:
                    self._writing = False
            for batch in group:
                batch.done.set()

    def _write_group(self, group: list[_Batch]) -> None:
        if len(group) == 1:
            self._write_one(group[0])
            return
        sendable = _without_clashes(group)
        if len(sendable) == 1:
            self._write_one(sendable[0])
            return
        try:
            positions = self._put(*_merged(sendable))
        except BaseException:  # noqa: BLE001 - each batch on its own, each with its own outcome
            for batch in sendable:
                self._write_one(batch)
            return
        self.groups += 1
        _share_out(sendable, positions)

    def _write_one(self, batch: _Batch) -> None:
        try:
            batch.positions = self._put(batch.events, batch.rows, batch.read)
        except BaseException as error:  # noqa: BLE001 - handed to the batch's own thread
            batch.error = error


def _merged(sendable: list[_Batch]) -> tuple[list[Any], list[CommandRow], dict[Any, int]]:
    """A group's batches as one: their events and command rows in order, and their read sets as
    one (the earliest version read of each aggregate)."""
    events: list[Any] = []
    rows: list[CommandRow] = []
    read: dict[Any, int] = {}
    for batch in sendable:
        rows += [row._replace(event_index=row.event_index + len(events)) for row in batch.rows]
        events += batch.events
        for aggregate_id, version in batch.read.items():
            read[aggregate_id] = min(version, read.get(aggregate_id, version))
    return events, rows, read


def _share_out(sendable: list[_Batch], positions: Sequence[int]) -> None:
    start = 0
    for batch in sendable:
        batch.positions = positions[start:start + len(batch.events)]
        start += len(batch.events)


def _without_clashes(group: list[_Batch]) -> list[_Batch]:
    """The batches of a group that can go together: a later batch writing an aggregate version or a
    command id that an earlier one writes, or reading an aggregate that an earlier one changes, gets
    an IntegrityError (it is decided again)."""
    versions: set[tuple[Any, int]] = set()
    changed: set[Any] = set()
    commands: set[str] = set()
    sendable = []
    for batch in group:
        keys = {(event.originator_id, event.originator_version) for event in batch.events}
        ids = {row.command_id for row in batch.rows}
        if keys & versions or ids & commands or not changed.isdisjoint(batch.read):  # (read: changed too)
            batch.error = IntegrityError("a concurrent command changed the same aggregate first")
            continue
        versions |= keys
        changed |= {aggregate_id for aggregate_id, _ in keys}
        commands |= ids
        sendable.append(batch)
    return sendable
