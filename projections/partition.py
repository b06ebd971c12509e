"""A rebuild shared among processes (`appraisal project --rebuild`, one process per core up to
MAX_PROCESSES): each reads the log, folds and audits its share, and writes its share's documents;
the rebuilding process grades every year from all the shares' scores and writes the rest.

Nearly all of a rebuild's work is per person: a person's appraisal reads its own events, the
scheme, the year and their department's appraisal, nothing of anyone else's. With N processes,
people's appraisals are divided among N shares by their id (`share_of`: share 0, which also grades
and swaps, takes a somewhat smaller part); the aggregates every share needs
(the organisation, schemes, years and the departments' appraisals: a few per cent of the log) are
folded by all, and belong to share 0 (the rebuilding process).

Each share, on its own:
- reads every notification of the log, and decodes only the events it needs (an appraisal's first
  event is decoded by every share: it says whose appraisal it is);
- writes the audit rows of its own events into the fresh tables;
- scores its subjects from the part folded (`LedgerState.year_facts(partial=True)`: a score before
  grading is a function of the scheme, the appraisal's facts and the department's score), writes
  their explanations, breakdowns (version 0) and appeal rows, and keeps each score without its
  trace (what grading, the export and the summary read).

The others (spawned: nothing inherited) send those scores to the rebuilding process, which grades
each year's whole cohort from them and its own, and writes what grading decides: the placements,
the histories, the year's results. A publication is graded at its place in the log the same way:
every share, reaching it, sends its subjects' scores and breakdown bodies as they are then, and the
rebuilding process (which waits for them there) writes each breakdown as published. Every row is
what a rebuild in one process writes (tests/integration/test_read_models.py compares the tables).

A rebuild whose share failed or died is done again in one process. The rebuilding process holds only
its share afterwards: a projection that goes on following the log folds it again first
(`ReadModelProjection.catch_up`).
"""

from __future__ import annotations

import multiprocessing
import pickle
import traceback
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from eventsourcing.sqlite import SQLiteApplicationRecorder

from api.gcpause import paused_gc
from api.processes import MAX_PROCESSES, process_count, received, weighted_share  # noqa: F401 (MAX_PROCESSES: the rebuild's limit too)
from domain.aggregates import Appraisal


class PartitionFailed(RuntimeError):
    """A share's process failed or died: the rebuild is done again in one process."""


FIRST_SHARE = 0.85  # share 0's part of the people beside another share's 1: it grades and swaps too


def share_of(aggregate_id: UUID, parts: int) -> int:
    """The share a person's appraisal belongs to, by its id (uniform: a version-5 UUID's bits)."""
    return weighted_share(aggregate_id.int, parts, FIRST_SHARE)


def owns(part: int, parts: int, appraisal: Any | None) -> bool:
    """Whether share `part` of `parts` audits and renders what belongs to `appraisal` (None: an
    aggregate other than an appraisal): a person's appraisal goes by its id, the rest to share 0."""
    if appraisal is not None and appraisal.facts.kind == "person":
        return share_of(appraisal.id, parts) == part
    return part == 0


class ShareReader:
    """(position, event) in log order for every event share `part` needs, up to position `stop`:
    those of aggregates other than people's appraisals, and those of its people. Others are not
    decoded. `seen` and `last` count every notification read."""

    def __init__(self, ledger: Any, part: int, parts: int, page: int, stop: int) -> None:
        self.ledger, self.part, self.parts, self.page, self.stop = ledger, part, parts, page, stop
        self.seen = 0
        self.last = 0
        self._uuids: dict[str, UUID] = {}

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        decode = self.ledger.mapper.to_domain_event
        rows = self._sqlite_rows if isinstance(self.ledger.recorder, SQLiteApplicationRecorder) else self._rows
        needed: dict[Any, bool] = {}  # by the id as stored
        part, parts = self.part, self.parts
        while True:
            page = rows()
            for position, stored_id, notification in page:
                need = needed.get(stored_id)
                if need is False:
                    continue
                event = decode(notification())
                if need is None:  # an aggregate's first event
                    need = not (isinstance(event, Appraisal.Opened) and event.kind == "person") or (
                        share_of(event.originator_id, parts) == part)
                    needed[stored_id] = need
                    if not need:
                        continue
                yield position, event
            if len(page) < self.page:
                return

    def _rows(self) -> list[tuple[int, Any, Callable[[], Notification]]]:
        """A page of the log: (position, originator id, its notification), through the library."""
        notifications = self.ledger.recorder.select_notifications(self.last, self.page, stop=self.stop,
                                                                  inclusive_of_start=False)
        self._count(len(notifications), notifications[-1].id if notifications else self.last)
        return [(n.id, n.originator_id, _given(n)) for n in notifications]

    def _sqlite_rows(self) -> list[tuple[int, Any, Callable[[], Notification]]]:
        """The same from SQLite's rows as they are: a notification (and its id's UUID, one per
        aggregate) is made only for the rows this share decodes (the library makes one for every
        row: a few µs each, most of reading a page)."""
        recorder = self.ledger.recorder
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(f"SELECT rowid, originator_id, originator_version, topic, state FROM "
                           f"{recorder.events_table_name} WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?",
                           (self.last, self.stop, self.page))
            page = cursor.fetchall()
        self._count(len(page), page[-1][0] if page else self.last)
        ids = self._uuids
        return [(row[0], row[1], partial(_notification, row, ids)) for row in page]

    def _count(self, read: int, last: int) -> None:
        self.seen += read
        self.last = last


def _given(notification: Notification) -> Callable[[], Notification]:
    return lambda: notification


def _notification(row: Any, ids: dict[str, UUID]) -> Notification:
    originator_id = ids.get(row[1])
    if originator_id is None:
        originator_id = ids[row[1]] = UUID(row[1])
    return Notification(id=row[0], originator_id=originator_id, originator_version=row[2], topic=row[3],
                        state=row[4])


def run_share(db_url: str, suffix: str, part: int, parts: int, page: int, stop: int, conn: Any) -> None:
    """A share's process (spawned): fold, audit and render its share, then send its scores."""
    def send(message: Any) -> None:
        conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    try:
        with paused_gc():
            scores = _share(db_url, suffix, part, parts, page, stop, send)
            payload = pickle.dumps(("scores", scores), protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException:  # noqa: BLE001 — sent to the rebuilding process, which says it and starts again
        payload = pickle.dumps(("failed", traceback.format_exc()))
    try:
        conn.send_bytes(payload)
    finally:
        conn.close()


def _share(db_url: str, suffix: str, part: int, parts: int, page: int, stop: int,
           send: Callable[[Any], None]) -> tuple[int, dict[int, dict[str, Any]]]:
    from api.ledger import AppraisalLedger
    from projections.db import open_view_db
    from projections.readmodels import ReadModelProjection

    ledger = AppraisalLedger(db_url)
    projection = ReadModelProjection(ledger, open_view_db(db_url), resume=False)
    try:
        return projection.share(suffix, part, parts, page, stop, send)
    finally:
        projection.close()
        ledger.close()


class Shares:
    """The other shares' processes of a rebuild (1 … parts−1), started before its fold."""

    def __init__(self, db_url: str, suffix: str, parts: int, page: int, stop: int) -> None:
        context = multiprocessing.get_context("spawn")  # nothing inherited: no threads, no connections
        self.processes: list[tuple[Any, Any]] = []
        for part in range(1, parts):
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(target=run_share, args=(db_url, suffix, part, parts, page, stop, sender),
                                      name=f"rebuild-share-{part}", daemon=True)
            process.start()
            sender.close()
            self.processes.append((process, receiver))

    def publication(self, year: int, number: int) -> list[dict[str, Any]]:
        """Each share's subjects at publication `number` of `year` (they send them as they reach it)."""
        return [self._receive(process, receiver, "publication", (year, number))
                for process, receiver in self.processes]

    def scores(self, last: int) -> list[dict[int, dict[str, Any]]]:
        """Each share's scores (by year, then subject); PartitionFailed when a share failed or
        died, or did not read the log up to `last`, as this process did. A share sends them once
        its rows are committed."""
        received = []
        for process, receiver in self.processes:
            read, scores = self._receive(process, receiver, "scores")
            if read != last:
                raise PartitionFailed(f"{process.name} read the log up to {read}, not {last}")
            received.append(scores)
            process.join()
        return received

    @staticmethod
    def _receive(process: Any, receiver: Any, kind: str, key: Any = None) -> Any:
        message = received(process, receiver, kind, PartitionFailed)
        if message[0] != kind or (key is not None and message[1] != key):
            raise PartitionFailed(f"{process.name} sent {message[0]} {message[1]!r}, not {kind} {key!r}")
        return message[-1]

    def stop(self) -> None:
        for process, receiver in self.processes:
            receiver.close()
            if process.is_alive():
                process.kill()
            process.join()


SHARED_FROM = 50_000  # events: below, starting another process costs more than it saves (about a second)


def share_count(requested: int | None, cpus: int | None, events: int) -> int:
    """How many processes a rebuild of a log of `events` uses: as requested, or one per core up
    to MAX_PROCESSES once the log has SHARED_FROM events."""
    return process_count(requested, cpus, events, SHARED_FROM)
