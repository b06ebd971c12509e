"""An import decided by several processes (`AppraisalLedger.submit` of a large batch of commands).

Nearly every command of a year's import is on one appraisal (a rating, a measurement, an
occurrence, an adjustment, a veto: `LOCAL_KINDS`). Deciding one reads that appraisal, its year, the
scheme and the organisation, and changes only the appraisal. So the deciding is divided among
processes by appraisal (`decider_of`): the importing process is decider 0, with a smaller part
(`OWN_SHARE`: it writes too), and the others are started for the import. The importing process
writes what they all decided, in the file's order, one transaction per batch, as a one-process
import does:

- Each decider (spawned: nothing inherited) holds its appraisals loaded from one batch to the next
  and decides its part of each batch in the file's order, on the same unit of work as the
  one-process import (`UnitOfWork`, with the import's recording time). It sends back each
  command's outcome, its events encoded as stored, its command-id row, and the batch's read set.
- The importing process decides its own part of each batch as it sends the others theirs. When
  it comes to write a batch, it merges the parts by line, cuts at the first refused command (what
  was decided after it is dropped: nothing after a refused line is recorded), and writes the
  batch with the read set, so that any aggregate another writer changed meanwhile refuses the
  write. Batches are sent ahead (`AHEAD`), so the deciders decide while it writes.
- Every other command (the organisation, schemes, years, opening an appraisal, appeals, anything
  on a published year, anything malformed) is decided by the importing process itself: it first
  writes every batch sent before, then decides, writes, and tells the deciders which aggregates
  changed, to be read again. A command id already used in the import by another decider is
  decided there too, once what came before is written: its answer rests on the log.
- A decider that fails or dies, or a write another writer got in before, ends the sharing: the
  rest of the import, from the first command not written, is decided in the importing process.

The log is the one-process import's: the same events, in the same order, with the same command
rows and read checks (tests/integration/test_parallel_import.py compares the two).
"""

from __future__ import annotations

import multiprocessing
import pickle
import queue
import threading
import traceback
import zlib
from collections import deque
from collections.abc import Iterator
from contextlib import suppress
from datetime import datetime
from heapq import merge
from itertools import chain
from operator import itemgetter
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import structlog
from eventsourcing.persistence import StoredEvent

from api.gcpause import paused_gc
from api.ledger import (
    CONFLICTS,
    AppraisalLedger,
    Outcome,
    UnitOfWork,
    _answer_positions,
    _appraisal_year,
)
from api.processes import MAX_PROCESSES, process_count, received, weighted_share
from api.storage import CommandRow
from domain.aggregates import Year

log = structlog.get_logger("import")

MAX_DECIDERS = MAX_PROCESSES  # deciding processes, the importing one included
OWN_SHARE = 0.4  # the importing process's part of the appraisals beside another decider's 1
PARALLEL_FROM = 30_000  # commands: below, starting a decider (about a second) costs about what it saves
AHEAD = 16  # batches sent to the deciders beyond the one being written (while they start: a second)

# Commands on one appraisal that read only it, its year, the scheme and the organisation.
LOCAL_KINDS = frozenset({"rating.record", "measurement.record", "occurrence.record", "adjustment.apply",
                         "veto.impose"})


class DecidersFailed(RuntimeError):
    """A decider failed or died: the rest of the import is decided in the importing process."""


def decider_count(requested: int | None, cpus: int | None, commands: int) -> int:
    """How many processes decide an import of (at least) `commands` commands, the importing one
    included: as requested (1: that one alone), or one per core up to MAX_DECIDERS from
    PARALLEL_FROM commands."""
    return process_count(requested, cpus, commands, PARALLEL_FROM)


def shareable(db_url: str) -> bool:
    """Whether other processes reach the same store by its URL: a PostgreSQL database or a SQLite
    file, not a store in this process's memory (`memory://`, SQLite's `:memory:`)."""
    parts = urlsplit(db_url)
    if parts.scheme in ("postgresql", "postgres"):
        return True
    path = db_url.removeprefix("sqlite:///") if parts.scheme == "sqlite" else ""
    return bool(path) and ":memory:" not in path and "mode=memory" not in path


def decider_of(appraisal: str, deciders: int) -> int:
    """The decider of an appraisal's commands (by its key: the same in every process); 0 is the
    importing process."""
    return weighted_share(zlib.crc32(appraisal.encode()), deciders, OWN_SHARE)


# --- a decider's process --------------------------------------------------------------------------

def run_decider(db_url: str, now: datetime, actor: str | None, conn: Any) -> None:
    """A decider (spawned): decide each batch it is sent, answer with what to write."""
    inbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    # Read by a thread of its own, so that the importing process never waits to send a batch
    # while this one waits to send its answer to an earlier one.
    threading.Thread(target=_receive_into, args=(conn, inbox), daemon=True).start()
    try:
        with paused_gc():
            _decide_batches(db_url, now, actor, inbox, conn)
    except BaseException:  # noqa: BLE001 — sent to the importing process, which decides the rest itself
        with suppress(OSError):  # unless it has stopped listening
            conn.send_bytes(pickle.dumps(("failed", traceback.format_exc())))
    finally:
        conn.close()


def _receive_into(conn: Any, inbox: queue.SimpleQueue[bytes | None]) -> None:
    try:
        while True:
            inbox.put(conn.recv_bytes())
    except (EOFError, OSError):
        inbox.put(None)


def _decide_batches(db_url: str, now: datetime, actor: str | None, inbox: queue.SimpleQueue[bytes | None],
                    conn: Any) -> None:
    ledger = AppraisalLedger(db_url)
    try:
        unit = UnitOfWork(ledger)
        unit.now = now
        to_stored = ledger.mapper.to_stored_event
        while (data := inbox.get()) is not None:
            message = pickle.loads(data)
            if message[0] == "stop":
                return
            if message[0] == "changed":
                unit.drop(message[1])
                continue
            conn.send_bytes(pickle.dumps(("decided", *decide_part(unit, message[1], actor, to_stored)),
                                         protocol=pickle.HIGHEST_PROTOCOL))
    finally:
        ledger.close()


def decide_part(unit: UnitOfWork, part: list[tuple[int, Any]], actor: str | None,
                to_stored: Any) -> tuple[list[tuple[Any, ...]], dict[UUID, int]]:
    """A decider's part of a batch, decided on its unit's copies: each command as `_by_command`
    gives it, and the part's read set. The unit goes on from there, as if it were written."""
    outcomes = unit.run(part, actor)
    events, rows, read = unit.write_set()
    unit.wrote(events)
    return _by_command(outcomes, [to_stored(event) for event in events], rows), read


def _by_command(outcomes: list[Any], stored: list[Any], rows: list[Any]) -> list[tuple[Any, ...]]:
    """Each command decided, in order, as plain values (pickled in a tenth of the time that its
    objects take): (index, id, accepted, answer, error, duplicate, its stored events as (id's
    bytes, version, topic, state), its command row as (type, fingerprint, target) or None)."""
    ends = [row.event_index for row in rows[1:]] + [len(stored)] if rows else []
    row_of = {id(row.answer): (row, end) for row, end in zip(rows, ends, strict=True)}
    decided = []
    for outcome in outcomes:
        found = row_of.get(id(outcome.answer)) if outcome.accepted and not outcome.duplicate else None
        events: list[tuple[bytes, int, str, bytes]] = []
        row = None
        if found is not None:
            command_row, end = found
            row = (command_row.type, command_row.fingerprint, command_row.target)
            events = [(event.originator_id.bytes, event.originator_version, event.topic, event.state)
                      for event in stored[command_row.event_index:end]]
        decided.append((outcome.index, outcome.command_id, outcome.accepted, outcome.answer, outcome.error,
                        outcome.duplicate, events, row))
    return decided


# --- the importing process's side ----------------------------------------------------------------

class Deciders:
    """The processes started to decide an import (deciders 1 … count), before its first command."""

    def __init__(self, db_url: str, count: int, now: datetime, actor: str | None) -> None:
        context = multiprocessing.get_context("spawn")  # nothing inherited: no threads, no connections
        self.processes: list[tuple[Any, Any]] = [(None, None)]  # decider 0: the importing process
        self.unanswered = [0] * (count + 1)
        for number in range(1, count + 1):
            mine, theirs = context.Pipe(duplex=True)
            process = context.Process(target=run_decider, args=(db_url, now, actor, theirs),
                                      name=f"import-decider-{number}", daemon=True)
            process.start()
            theirs.close()
            self.processes.append((process, mine))

    def __len__(self) -> int:
        """How many decide, the importing process included."""
        return len(self.processes)

    def send(self, number: int, batch: list[tuple[int, Any]]) -> None:
        self._send(number, ("decide", batch))
        self.unanswered[number] += 1

    def changed(self, aggregate_ids: set[UUID]) -> None:
        """Aggregates the importing process changed: each decider reads them again."""
        if aggregate_ids:
            for number in range(1, len(self.processes)):
                self._send(number, ("changed", aggregate_ids))

    def _send(self, number: int, message: Any) -> None:
        process, conn = self.processes[number]
        try:
            conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError as error:
            raise DecidersFailed(f"{process.name} is gone ({error!r}, exit code {process.exitcode})") from None

    def receive(self, number: int) -> tuple[list[tuple[Any, ...]], dict[UUID, int]]:
        """A decider's answer to the oldest batch it has not answered yet."""
        process, conn = self.processes[number]
        message = received(process, conn, "answer", DecidersFailed)
        self.unanswered[number] -= 1
        return message[1], message[2]

    def stop(self) -> None:
        """Stop the deciders: at once those with batches not answered (after a refused command or
        on the way to one process, nothing they decide now is written)."""
        for (process, conn), unanswered in zip(self.processes[1:], self.unanswered[1:], strict=True):
            if unanswered:
                process.kill()
            else:
                with suppress(OSError):
                    conn.send_bytes(pickle.dumps(("stop",)))
            conn.close()
        for process, _ in self.processes[1:]:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join()


class SentBatch:
    """A batch of commands on appraisals, sent to the deciders in parts (`own`: decider 0's)."""

    def __init__(self, batch: list[tuple[int, Any]], parts: dict[int, list[tuple[int, Any]]]) -> None:
        self.batch = batch
        self.own = parts.pop(0, [])
        self.own_answer: tuple[list[tuple[Any, ...]], dict[UUID, int]] = ([], {})
        self.deciders = sorted(parts)


def merged(answers: list[list[tuple[Any, ...]]]) -> Iterator[tuple[Any, ...]]:
    """The deciders' answers to one batch, in the file's order."""
    return merge(*answers, key=itemgetter(0))


def stored_event(originator_id: UUID, version: int, topic: str, state: bytes) -> StoredEvent:
    """A stored event as unpickling makes one (its frozen dataclass's `__init__` sets each field
    through `object.__setattr__`)."""
    event = object.__new__(StoredEvent)
    event.__dict__.update(originator_id=originator_id, originator_version=version, topic=topic, state=state)
    return event


class SharedImport:
    """The importing process's side of an import shared with deciders (see the module's account):
    `run` decides and writes batches until the end, a refused command, or a reason to go on in
    one process, and then returns the commands not yet written (None when there are none)."""

    def __init__(self, ledger: Any, unit: Any, deciders: Deciders, actor: str | None,
                 on_progress: Any, outcomes: list[Any]) -> None:
        self.ledger, self.unit, self.deciders, self.actor = ledger, unit, deciders, actor
        self.on_progress, self.outcomes = on_progress, outcomes
        self.sent: deque[SentBatch] = deque()
        self.owner: dict[str, int] = {}  # command id -> the decider it was sent to
        self.decided_there: set[UUID] = set()  # aggregates the deciders changed since this process decided
        self.routes: dict[str, int | None] = {}  # appraisal -> its decider (None: decided here)
        self.uuids: dict[bytes, UUID] = {}  # aggregate ids as the deciders send them
        self.refused = False

    def run(self, batches: Iterator[list[tuple[int, Any]]]) -> Iterator[tuple[int, Any]] | None:
        batch: list[tuple[int, Any]] = []
        try:
            for batch in batches:
                for number, segment in self._segments(batch):
                    if number is None:
                        self._drain()
                        if not self.refused:
                            self._decide_here(segment)
                    else:
                        self._send(segment)
                    if self.refused:
                        return None
            self._drain()
            return None
        except (DecidersFailed, *CONFLICTS) as error:
            # Nothing of a batch not written was recorded: from the first of them, in one process.
            last = self.outcomes[-1].index if self.outcomes else -1
            unwritten = {index: body for sent in self.sent for index, body in sent.batch}
            unwritten.update((index, body) for index, body in batch if index > last)
            log.warning("import: deciding the rest in one process", reason=str(error).splitlines()[0],
                        from_command=min(unwritten, default=None))
            self.sent.clear()
            return chain(sorted(unwritten.items()), chain.from_iterable(batches))

    # routing ---------------------------------------------------------------------------------------

    def _segments(self, batch: list[tuple[int, Any]]) -> Iterator[tuple[int | None, Any]]:
        """The batch cut into runs: (None, commands to decide here) or (-1, [(decider, command)]).
        A run to decide here is yielded, and so decided, before any command after it is routed:
        what it decides (a publication, say) can change where they go. While a year is published
        and not final, a run to decide here takes the rest of the batch: a batch's changes to a
        published year get one revised publication, at its end, as in one process."""
        run: list[Any] = []
        here: list[tuple[int, Any]] = []
        for position, item in enumerate(batch):
            if here and self._route(item[1]) is not None:
                if self._revising():
                    here += batch[position:]
                    break
                yield None, here
                here = []
            number = self._route(item[1])
            if number is None:
                if run:
                    yield -1, run
                    run = []
                here.append(item)
            else:
                command_id = item[1].get("id")
                if isinstance(command_id, str):
                    self.owner.setdefault(command_id, number)
                run.append((number, item))
        if run:
            yield -1, run
        if here:
            yield None, here

    def _revising(self) -> bool:
        """Whether a year this process has read is published and not final (changes to it revise
        its publication)."""
        return any(isinstance(aggregate, Year) and aggregate.status == "published"
                   for aggregate in self.unit.loaded.values())

    def _route(self, body: Any) -> int | None:
        """The decider of a command, or None: decided by this process."""
        if not isinstance(body, dict) or body.get("type") not in LOCAL_KINDS:
            return None
        key = body.get("appraisal")
        if not isinstance(key, str):
            return None
        try:
            number = self.routes[key]
        except KeyError:
            number = self.routes[key] = self._route_appraisal(key)
        if number is None:
            return None
        owner = self.owner.get(body.get("id"))  # type: ignore[arg-type]
        if owner is not None and owner != number:
            return None  # an id another decider has: its answer rests on what that one wrote
        return number

    def _route_appraisal(self, key: str) -> int | None:
        year = _appraisal_year(key)
        record = self.unit.year(year) if year is not None else None
        if year is None or (record is not None and record.status == "published"):
            return None  # a change to a published year revises its publication: the whole year's work
        return decider_of(key, len(self.deciders))

    # deciding and writing --------------------------------------------------------------------------

    def _send(self, segment: list[tuple[int, tuple[int, Any]]]) -> None:
        parts: dict[int, list[tuple[int, Any]]] = {}
        for number, item in segment:
            parts.setdefault(number, []).append(item)
        for number, part in parts.items():
            if number:
                self.deciders.send(number, part)
        sent = SentBatch([item for _, item in segment], parts)
        sent.own_answer = self._decide_own(sent.own)  # while the others decide their parts
        self.sent.append(sent)
        while len(self.sent) > AHEAD:
            self._write_oldest()

    def _drain(self) -> None:
        while self.sent and not self.refused:
            self._write_oldest()
        self.sent.clear()  # after a refused command: decided, never to be written

    def _write_oldest(self) -> None:
        """Write the oldest batch sent, as its deciders decided it, up to a refused command."""
        sent = self.sent[0]
        answers = []
        read: dict[UUID, int] = {}
        theirs: set[bytes] = set()  # the aggregates the other deciders changed
        for number in [0, *sent.deciders]:
            decided, their_read = self.deciders.receive(number) if number else sent.own_answer
            answers.append(decided)
            for aggregate_id, version in their_read.items():
                read[aggregate_id] = min(version, read.get(aggregate_id, version))
            if number:
                theirs.update(event[0] for answer in decided for event in answer[6])
        stored: list[Any] = []
        rows: list[Any] = []
        outcomes = []
        uuids = self.uuids
        for index, command_id, accepted, answer, error, duplicate, events, row in merged(answers):
            outcomes.append(Outcome(index, command_id, accepted, answer, error, duplicate))
            if not accepted:
                self.refused = True
                break
            if row is not None:
                # The row shares the outcome's answer: the write adds the position to both.
                rows.append(CommandRow(command_id, row[0], row[1], row[2], len(stored), answer))
                for oid, version, topic, state in events:
                    originator_id = uuids.get(oid)
                    if originator_id is None:
                        originator_id = uuids[oid] = UUID(bytes=oid)
                    stored.append(stored_event(originator_id, version, topic, state))
        if stored:
            _answer_positions(rows, self.ledger._group.write(stored, rows, read))
        self.sent.popleft()
        self.outcomes += outcomes
        self.decided_there.update(uuids[oid] for oid in theirs if oid in uuids)
        if self.on_progress:
            self.on_progress(len(outcomes))

    def _decide_own(self, part: list[tuple[int, Any]]) -> tuple[list[tuple[Any, ...]], dict[UUID, int]]:
        """Decider 0's part of a batch, decided by this process on its own copies."""
        return decide_part(self.unit, part, self.actor, self.ledger.mapper.to_stored_event)

    def _decide_here(self, segment: list[tuple[int, Any]]) -> None:
        """Commands decided by this process, on what is written (the deciders' changes read again);
        the deciders then read again what they changed."""
        self.unit.drop(self.decided_there)
        self.decided_there = set()
        decided = self.ledger._submit_batch(self.unit, segment, self.actor)
        self.outcomes += decided
        self.refused = any(not outcome.accepted for outcome in decided)
        self.routes.clear()
        self.deciders.changed(set(self.unit.written))
        if self.on_progress:
            self.on_progress(len(decided))
