"""The Appraisal Ledger application: commands in, events recorded, results out.

`AppraisalLedger.submit` takes commands in order (one from HTTP, thousands from a batch import),
decides on each with the domain handlers inside a unit of work, and records the accepted ones
in batches: all events of a batch and their command-id rows in one transaction. A refused
command records nothing and never takes an accepted one with it.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, project_aggregate
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError

from api.store.gcpause import paused_gc
from api.store.groupcommit import GroupCommit
from api.store.storage import DEFAULT_DB, CommandRow, ensure_schema, store_env
from domain import commands as c
from domain.aggregates import (
    Appraisal,
    Organisation,
    SchemeCatalogue,
    SchemeVersion,
    Year,
    appraisal_key_year,
    ledger_id,
)
from domain.errors import Conflict, DomainError, NotFound
from domain.handlers import Envelope, decide, revise_publication
from domain.results import (
    YearFacts,
    YearResults,
    compute_year,
    explanation,
    export,
    grade_year,
    score_year,
)
from domain.scheme import Scheme, parse_scheme
from domain.scoring import SubjectScore
from domain.times import business_time

try:  # the PostgreSQL driver raises its own error for a clash in the command-id table
    from psycopg import IntegrityError as PgIntegrityError
except ImportError:  # pragma: no cover
    PgIntegrityError = IntegrityError  # type: ignore[misc,assignment]

CONFLICTS = (IntegrityError, PgIntegrityError)
UNAVAILABLE = (OperationalError, InterfaceError)  # the store could not take the write (a lost connection)
# The one retry layer (the HTTP layer answers 409 or 503 with what is raised after the last attempt):
# a batch whose write another writer's got in before is decided again from the store, at once and
# then after a short random pause that grows (many writers on one appraisal would only collide
# again); a write the store could not take is tried once more after a pause (a pool replaces a
# lost connection; a store that stays down is the caller's to wait for).
MAX_ATTEMPTS = 8
STORE_ATTEMPTS = 2
CONFLICT_PAUSE = 0.005  # seconds, doubled at each attempt up to 16 times this
STORE_PAUSE = 0.2


@dataclass
class Outcome:
    """The answer to one submitted command."""

    index: int  # position in the submitted sequence (0-based)
    command_id: str | None
    accepted: bool
    answer: dict[str, Any] = field(default_factory=dict)
    error: DomainError | None = None
    duplicate: bool = False


class Refused(Exception):
    """A batch stopped at a refused command (the ones before it were recorded)."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        super().__init__(str(outcome.error))


class AppraisalLedger(Application):
    name = "AppraisalLedger"

    def __init__(self, db_url: str = DEFAULT_DB, clock: Callable[[], datetime] | None = None) -> None:
        ensure_schema(db_url)
        env = {**store_env(db_url), "AGGREGATE_CACHE_MAXSIZE": "20000",
               "DEEPCOPY_FROM_AGGREGATE_CACHE": "y", "IS_SNAPSHOTTING_ENABLED": "n",
               "TRANSCODER_TOPIC": "api.store.transcoding:FastJSONTranscoder"}  # the same bytes, faster
        super().__init__(env=env)
        self.db_url = db_url
        self.clock = clock or (lambda: datetime.now(UTC))
        self._schemes: dict[tuple[str, int], Scheme] = {}
        # Each year's scores as last written (`UnitOfWork.year_results`): its scheme, the scores by
        # appraisal key and the appraisal versions they were made at.
        self._scores: dict[int, tuple[Scheme, dict[str, SubjectScore], dict[str, int]]] = {}
        self._scores_lock = threading.Lock()
        self._group = GroupCommit(self._put)  # concurrent writers share transactions (api/store/groupcommit.py)
        self._serial: dict[str, tuple[threading.Lock, int]] = {}  # appraisal -> (its lock, threads using it)
        self._serial_lock = threading.Lock()

    # --- commands -------------------------------------------------------------------------------

    def submit(self, bodies: Iterable[dict[str, Any]], *, actor: str | None = None,
               batch_size: int = 500, on_progress: Callable[[int], None] | None = None) -> list[Outcome]:
        """Apply commands in order; stop at the first refused one (raising `Refused` after
        recording every accepted command before it). `actor` overrides the bodies' actors."""
        outcomes: list[Outcome] = []
        unit = UnitOfWork(self)  # aggregates stay loaded from one batch to the next
        with paused_gc():
            self._submit_all(unit, enumerate(bodies), actor, batch_size, on_progress, outcomes)
        refused = next((o for o in outcomes if not o.accepted), None)
        if refused is not None:
            raise Refused(refused)
        return outcomes

    def _submit_all(self, unit: UnitOfWork, pending: Iterable[tuple[int, dict[str, Any]]], actor: str | None,
                    batch_size: int, on_progress: Callable[[int], None] | None,
                    outcomes: list[Outcome]) -> None:
        for batch in _batches(pending, batch_size):
            decided = self._submit_batch(unit, batch, actor)
            outcomes += decided
            self._let_go_finalized(batch, decided, unit)
            if on_progress:
                on_progress(len(batch))
            if any(not o.accepted for o in decided):
                break

    @contextmanager
    def _one_at_a_time(self, key: str | None) -> Iterator[None]:
        if key is None:
            yield
            return
        with self._serial_lock:
            lock = _use_lock(self._serial, key, threading.Lock)
        try:
            with lock:
                yield
        finally:
            with self._serial_lock:
                _disuse_lock(self._serial, key)

    def _write(self, events: list[Any], rows: list[CommandRow], read: dict[UUID, int]) -> None:
        """One transaction: the events, their command rows (and the chain); answers get positions.
        `read`: the version each aggregate the decisions read or changed started from; the store
        refuses the write (IntegrityError) when any of them has moved on since. Concurrent threads'
        writes may share that transaction (a group commit)."""
        if events:
            _answer_positions(rows, self._group.write(self._stored(events), rows, read))

    def _stored(self, events: list[Any]) -> list[Any]:
        """The events as stored (encoded by the deciding thread, not the one that writes: under
        concurrent requests, the writer is what everyone waits for)."""
        to_stored = self.mapper.to_stored_event
        return [to_stored(event) for event in events]

    def _put(self, stored: list[Any], rows: list[CommandRow], read: dict[UUID, int]) -> list[int]:
        return list(self.recorder.insert_events(stored, commands=rows, read=read) or ())

    def submit_one(self, body: dict[str, Any], *, actor: str | None = None) -> Outcome:
        """One command (the HTTP path): decided and written in the calling thread, with no GC
        pause (that is for big batches, and process-wide). Commands on one appraisal are decided
        one after another in this process, each on top of the one before: concurrent ones would
        only clash, and be decided again. Other processes' clashes are retried as ever."""
        key = body.get("appraisal") if isinstance(body, dict) else None
        with self._one_at_a_time(key if isinstance(key, str) else None):
            # The common case is a new command id on aggregates no other process has changed:
            # decide on the cached copies without a round trip. The write checks both: the
            # command-id table's key refuses a re-sent id, and the store refuses the write when
            # an aggregate the decision read or changed has moved on (the read set, the versions).
            # Either way the unit decides again after one round trip that brings the cache up to
            # date and looks the id up. A refusal or an answer that records nothing is decided
            # again that way too, so that it never rests on a stale copy, and a re-sent command
            # always gets its first answer.
            unit = UnitOfWork(self)
            unit.look_up = False
            outcome = self._submit_batch(unit, [(0, body)], actor)[0]
            if not unit.look_up and outcome.command_id is not None and (
                    not outcome.accepted or not outcome.answer.get("events")):
                unit.forget()
                outcome = self._submit_batch(unit, [(0, body)], actor)[0]
            self._adopt(unit)
        self._let_go_finalized([(0, body)], [outcome], unit)
        if not outcome.accepted:
            raise Refused(outcome)
        return outcome

    def _submit_batch(self, unit: UnitOfWork, batch: list[tuple[int, dict[str, Any]]],
                      actor: str | None) -> list[Outcome]:
        store_attempts = 0
        for attempt in range(MAX_ATTEMPTS):
            outcomes = unit.run(batch, actor)
            try:
                unit.flush()
            except Exception as error:
                # Nothing of the batch was recorded: forget what we read and decided, and
                # decide again from the store (see MAX_ATTEMPTS).
                unit.forget()
                store_attempts += isinstance(error, UNAVAILABLE)
                if attempt == MAX_ATTEMPTS - 1:
                    raise
                if isinstance(error, CONFLICTS):
                    if attempt:
                        time.sleep(random.uniform(0.5, 1.5) * CONFLICT_PAUSE * 2 ** min(attempt - 1, 4))
                    continue
                if isinstance(error, UNAVAILABLE) and store_attempts < STORE_ATTEMPTS:
                    time.sleep(STORE_PAUSE)
                    continue
                raise
            return outcomes
        raise AssertionError("unreachable")

    # --- reading --------------------------------------------------------------------------------

    def get(self, aggregate_id: UUID, *, private: bool = False, fastforward: bool = True) -> Any | None:
        """An aggregate from the cache, fast-forwarded to the log (unless `refresh` just did).
        Readers share the cached object; a unit of work asks for a `private` copy, since deciding
        mutates it."""
        try:
            if fastforward:
                aggregate: Any = self.repository.get(aggregate_id, deepcopy_from_cache=False)
            else:
                assert self.repository.cache is not None
                aggregate = self.repository.cache.get(aggregate_id)
        except KeyError:  # evicted since it was refreshed
            return self.get(aggregate_id, private=private)
        except AggregateNotFoundError:
            return None
        return self._private_copy(aggregate_id, aggregate) if private else aggregate

    def _private_copy(self, aggregate_id: UUID, aggregate: Any) -> Any:
        """A copy to decide on. The library deep-copies outside the lock under which another thread
        fast-forwards the same cached object ("dictionary changed size during iteration"): copy
        under that lock."""
        with self._cached_lock(aggregate_id):
            return deepcopy(aggregate)

    @contextmanager
    def _cached_lock(self, aggregate_id: UUID) -> Iterator[None]:
        """The library's lock under which a cached aggregate is fast-forwarded (mutated in place):
        whoever copies, advances or replaces a cached object takes it."""
        lock = self.repository._use_fastforward_lock(aggregate_id)
        try:
            with lock:
                yield
        finally:
            self.repository._disuse_fastforward_lock(aggregate_id)

    def _let_go_finalized(self, batch: list[tuple[int, dict[str, Any]]], decided: list[Outcome],
                          unit: UnitOfWork) -> None:
        """The appraisals of a year finalized by these commands out of the cache and out of `unit`
        (issue 19): nothing records on them again, and what later years read of the year is its
        `Year`; a process keeps the open years, not every year it has met. (One that reads them
        again, `explain` say, loads them from the store.)"""
        for (_, body), outcome in zip(batch, decided, strict=False):
            if not (isinstance(body, dict) and body.get("type") == "year.finalize"
                    and outcome.accepted and not outcome.duplicate):
                continue
            year = unit.loaded.get(Year.create_id(int(body["year"])).int)
            if year is None:
                continue
            with self._scores_lock:  # never revised again
                self._scores.pop(year.year, None)
            cache = self.repository.cache
            assert cache is not None
            for subject in year.subjects:
                aggregate_id = ledger_id("appraisal", f"{year.year}:{subject}")
                with self._cached_lock(aggregate_id), suppress(KeyError):
                    cache.get(aggregate_id, evict=True)
                unit.loaded.pop(aggregate_id.int, None)
                unit.touched.pop(aggregate_id.int, None)
                unit.read.pop(aggregate_id, None)
                unit.current.discard(aggregate_id)

    def _adopt(self, unit: UnitOfWork) -> None:
        """After a single command's write: its unit's copies of what it wrote are now what the log
        says, so they replace cached copies still at the version before (the next refresh then has
        nothing of ours to decode). The unit is done with them: nothing mutates them any more."""
        cache = self.repository.cache
        assert cache is not None
        for aggregate_id, base in unit.written.items():
            aggregate = unit.loaded.get(aggregate_id.int)
            with self._cached_lock(aggregate_id):
                try:
                    cached = cache.get(aggregate_id)
                except KeyError:
                    continue
                if aggregate is not None and cached.version == base and not aggregate.pending_events:
                    cache.put(aggregate_id, aggregate)

    def refresh(self, aggregate_ids: Iterable[UUID], command_ids: list[str]) -> tuple[set[UUID], dict[str, Any]]:
        """Bring the cached copies of some aggregates up to date with the log, and look up some
        command ids, in one round trip (the single-command path: a command needs its appraisal,
        its year and the organisation; fast-forwarding each would cost a round trip apiece).
        Returns the ids now current in the cache (those to `get` without fast-forwarding) and
        the command rows found."""
        cache = self.repository.cache
        assert cache is not None
        after: dict[UUID, int] = {}
        for aggregate_id in aggregate_ids:
            try:
                after[aggregate_id] = cache.get(aggregate_id).version
            except KeyError:
                after[aggregate_id] = 0
        stored, commands = self.recorder.select_newer(after, command_ids)  # type: ignore[attr-defined]
        current: set[UUID] = set()
        for aggregate_id, cached_version in after.items():
            if aggregate_id not in stored:
                if cached_version:  # cached, and nothing newer in the log: no lock needed
                    current.add(aggregate_id)
                continue
            with self._cached_lock(aggregate_id):
                try:
                    aggregate = cache.get(aggregate_id)
                except KeyError:
                    aggregate = None
                version = aggregate.version if aggregate is not None else 0
                events = [self.mapper.to_domain_event(event) for event in stored[aggregate_id]
                          if event.originator_version > version]
                if aggregate is None and (not events or events[0].originator_version != 1):
                    continue  # evicted meanwhile: `get` reads it whole
                if events:
                    aggregate = project_aggregate(aggregate, events)
                    cache.put(aggregate_id, aggregate)
                current.add(aggregate_id)
        return current, commands

    def scheme(self, scheme_id: str, version: int) -> Scheme:
        key = (scheme_id, version)
        if key not in self._schemes:
            record = self.get(SchemeVersion.create_id(scheme_id, version))
            if record is None:
                raise NotFound("scheme", f"scheme {scheme_id}@{version} is not published",
                               rule="scheme-published")
            self._schemes[key] = parse_scheme(record.document, recorded=True)
        return self._schemes[key]

    def year(self, year: int) -> Year | None:
        return self.get(Year.create_id(year))

    def appraisal(self, key: str) -> Appraisal | None:
        return self.get(ledger_id("appraisal", key))

    def organisation(self) -> Organisation | None:
        return self.get(Organisation.create_id())

    def year_facts(self, year_number: int, scheme: tuple[str, int] | None = None,
                   loader: Callable[[str], Appraisal | None] | None = None) -> YearFacts:
        year = self.year(year_number)
        if year is None:
            raise NotFound("year", f"no appraisal is open for {year_number}", rule="year-open")
        return self._year_facts(year, scheme, loader or self.appraisal)

    def _year_facts(self, year: Year, scheme: tuple[str, int] | None,
                    loader: Callable[[str], Appraisal | None]) -> YearFacts:
        scheme_id, version = scheme or (year.scheme_id, year.scheme_version)
        appraisals = []
        for subject in year.subjects:
            appraisal = loader(f"{year.year}:{subject}")
            assert appraisal is not None
            appraisals.append(appraisal.facts)
        return YearFacts(year=year.year, scheme=self.scheme(scheme_id, version), appraisals=appraisals,
                         tie_breaks=year.tie_breaks, history=self.published_tiers(year.year),
                         status=year.status if scheme is None else "replay",
                         adoptions=list(year.adoptions) if scheme is None else [])

    def published_tiers(self, year: int) -> dict[int, dict[str, int | None]]:
        """The tiers of the published results of earlier years (for consecutive-year consequences)."""
        history: dict[int, dict[str, int | None]] = {}
        for back in (1, 2):
            earlier = self.year(year - back)
            if earlier is not None and earlier.publications:
                history[year - back] = Year.tiers(earlier.publications[-1])
        return history

    def compute(self, year: int, scheme: tuple[str, int] | None = None) -> YearResults:
        return compute_year(self.year_facts(year, scheme))

    def results(self, year: int, scheme: tuple[str, int] | None = None) -> dict[str, Any]:
        document = export(self.compute(year, scheme))
        if scheme is not None:
            document["status"] = "replay"
        return document

    def explain(self, key: str) -> dict[str, Any]:
        appraisal = self.appraisal(key)
        if appraisal is None:
            raise NotFound("appraisal", f"no appraisal {key}", rule="appraisal-open")
        results = self.compute(appraisal.facts.year)
        return explanation(results, appraisal.facts.subject.id, appraisal.facts)

    def commands(self, command_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return self.recorder.select_commands(list(command_ids))  # type: ignore[attr-defined]

    def event_count(self) -> int:
        return self.recorder.max_notification_id() or 0


def _use_lock(locks: dict[str, tuple[Any, int]], key: str, make: Callable[[], Any]) -> Any:
    """The lock of `key` in a table of locks in use, counted once more (made when nobody uses it)."""
    lock, users = locks.get(key, (None, 0))
    lock = lock or make()
    locks[key] = (lock, users + 1)
    return lock


def _disuse_lock(locks: dict[str, tuple[Any, int]], key: str) -> None:
    """Counted once less; out of the table when nobody uses it."""
    lock, users = locks[key]
    if users == 1:
        del locks[key]
    else:
        locks[key] = (lock, users - 1)


def _answer_positions(rows: list[CommandRow], positions: Any) -> None:
    for row in rows:
        row.answer["position"] = positions[row.event_index]


def _batches(pending: Iterable[tuple[int, dict[str, Any]]], size: int) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    """Batches of `size` commands by their index (0 … size−1, size … 2·size−1, …)."""
    batch: list[tuple[int, dict[str, Any]]] = []
    for item in pending:
        batch.append(item)
        if (item[0] + 1) % size == 0:
            yield batch
            batch = []
    if batch:
        yield batch


class UnitOfWork:
    """One batch of commands: aggregates read once, decisions in order, one atomic write."""

    def __init__(self, ledger: AppraisalLedger) -> None:
        self.ledger = ledger
        self.now = ledger.clock()
        self.loaded: dict[int, Any] = {}  # by the integer of the aggregate's id
        self.touched: dict[int, Any] = {}
        self.events: list[Any] = []
        self.rows: list[CommandRow] = []
        self.accepted: dict[str, tuple[str, str, str, dict[str, Any]]] = {}  # id -> (type, target, fingerprint, answer)
        self.known: dict[str, dict[str, Any]] = {}
        self.current: set[UUID] = set()  # refreshed by this unit's `run`: no fast-forward needed
        # Look up the commands' ids before deciding, and (a single command) refresh what it reads;
        # off: decide on the cached copies as they are (see `submit_one`).
        self.look_up = True
        self.read: dict[UUID, int] = {}  # every aggregate read: its version then (0: none)
        self.used: set[int] = set()  # the aggregates the batch being decided has read (by the id's integer)
        # What the last flush wrote: each aggregate and its version before (`AppraisalLedger._adopt`)
        self.written: dict[UUID, int] = {}
        self.published_changes: dict[int, tuple[Envelope, str]] = {}  # year -> the latest change
        self.scores: dict[int, tuple[Scheme, dict[str, SubjectScore], dict[str, int]]] = {}  # `year_results`

    # Context (domain.handlers) ---------------------------------------------------------------------

    def _get(self, aggregate_id: UUID) -> Any | None:
        # Keyed by the id's integer: a UUID hashes and compares in Python, an int in C (every
        # command looks up four or five aggregates here).
        key = aggregate_id.int
        self.used.add(key)
        try:
            return self.loaded[key]
        except KeyError:
            aggregate = self.loaded[key] = self.ledger.get(
                aggregate_id, private=True, fastforward=self.look_up and aggregate_id not in self.current)
            self.read[aggregate_id] = aggregate.version if aggregate is not None else 0
            return aggregate

    def organisation(self) -> Organisation | None:
        return self._get(Organisation.create_id())

    def scheme_version(self, scheme_id: str, version: int) -> SchemeVersion | None:
        return self._get(SchemeVersion.create_id(scheme_id, version))

    def scheme(self, scheme_id: str, version: int) -> Scheme:
        if (scheme_id, version) in self.ledger._schemes:  # published versions never change
            return self.ledger._schemes[(scheme_id, version)]
        record = self.scheme_version(scheme_id, version)
        if record is None:
            raise NotFound("scheme", f"scheme {scheme_id}@{version} is not published", rule="scheme-published")
        key = (scheme_id, version)
        if key not in self.ledger._schemes:
            self.ledger._schemes[key] = parse_scheme(record.document, recorded=True)
        return self.ledger._schemes[key]

    def catalogue(self) -> SchemeCatalogue | None:
        return self._get(SchemeCatalogue.create_id())

    def year(self, year: int) -> Year | None:
        return self._get(Year.create_id(year))

    def appraisal(self, key: str) -> Appraisal | None:
        return self._get(ledger_id("appraisal", key))

    def command_target(self, command_id: str) -> tuple[str, str] | None:
        if command_id in self.accepted:
            kind, target, _, _ = self.accepted[command_id]
            return kind, target
        found = self.known.get(command_id) or self.ledger.commands([command_id]).get(command_id)
        return (found["type"], found["target"]) if found else None

    def year_results(self, year: int) -> dict[str, Any]:
        """The year's results as this batch leaves it (a revised publication's document). A score
        is a function of the scheme, the appraisal's facts and its department's score
        (`score_year`), so the scores last written are taken again for the appraisals still at
        the version they were made at: after publication every fact comes with a revision, and
        scores one appraisal, not the year. Kept by the ledger once the batch is written."""
        record = self.year(year)
        assert record is not None
        facts = self.ledger._year_facts(record, None, self.appraisal)
        versions = {a.key: self.appraisal(a.key).version for a in facts.appraisals}
        with self.ledger._scores_lock:
            kept = self.ledger._scores.get(year)
        known: dict[str, SubjectScore] = {}
        stale: set[str] = set()
        if kept is not None and kept[0] is facts.scheme:
            known, made_at = kept[1], kept[2]
            stale = {key for key, version in versions.items() if made_at.get(key) != version}
        departments, people = score_year(facts, known, stale)
        self.scores[year] = (facts.scheme, {s.key: s for s in (*departments.values(), *people.values())}, versions)
        return export(grade_year(facts, departments, people))

    def open_appeals(self, year: int) -> list[str]:
        record = self.year(year)
        assert record is not None
        open_ones = []
        for subject in record.subjects:
            appraisal = self.appraisal(f"{year}:{subject}")
            if appraisal is not None:
                open_ones += [a for a in appraisal.facts.appeals if a not in appraisal.facts.decisions]
        return sorted(open_ones)

    def stage(self, *aggregates: Any) -> None:
        for aggregate in aggregates:
            key = aggregate.id.int
            self.loaded[key] = aggregate
            self.touched[key] = aggregate

    # running ----------------------------------------------------------------------------------------

    def run(self, batch: list[tuple[int, dict[str, Any]]], actor: str | None) -> list[Outcome]:
        ids = [body["id"] for _, body in batch
               if isinstance(body, dict) and isinstance(body.get("id"), str) and c.storable(body["id"])]
        # (Without `look_up`: the cached copies as they are; the write checks what they were.)
        if self.look_up and len(batch) == 1 and isinstance(batch[0][1], dict):
            self.current, self.known = self.ledger.refresh(_needs(batch[0][1]), ids)
        elif self.look_up:
            self.known = self.ledger.commands(ids) if ids else {}
        outcomes = []
        for index, body in batch:
            outcome = self.one(index, body, actor)
            outcomes.append(outcome)
            if not outcome.accepted:
                break
        self._revise_publications()
        return outcomes

    def _revise_publications(self) -> None:
        """Years changed after their publication get one revised publication per batch."""
        for year_number, (envelope, command_id) in sorted(self.published_changes.items()):
            revision = Envelope(envelope.actor, envelope.at, f"{command_id}/revision")
            if revise_publication(year_number, revision, self, f"changed by command {command_id}"):
                self._collect()
        self.published_changes.clear()

    def _collect(self) -> None:
        for aggregate in list(self.touched.values()):
            self.events.extend(aggregate.collect_events())
        self.touched.clear()

    def one(self, index: int, body: dict[str, Any], actor: str | None) -> Outcome:
        command_id = body.get("id") if isinstance(body, dict) else None
        try:
            if isinstance(body, dict) and actor is not None:
                body = {**body, "actor": actor}
            command = c.parse_command(body)
            return self._decide(index, command)
        except DomainError as error:
            self._discard_partial()
            return Outcome(index, command_id if isinstance(command_id, str) else None, False, error=error)

    def _decide(self, index: int, command: c.Command) -> Outcome:
        if command.actor is None:
            raise DomainError("actor", "required: who issues the command", rule="envelope")
        print_ = c.fingerprint(command)
        if command.id is not None:
            earlier = self.known.get(command.id)
            if earlier is None and command.id in self.accepted:
                _, _, earlier_print, earlier_answer = self.accepted[command.id]
                earlier = {"fingerprint": earlier_print, "answer": earlier_answer}
            if earlier is not None:
                if earlier["fingerprint"] != print_:
                    raise Conflict("id", f"command id {command.id} was already used for another command",
                                   rule="idempotency")
                return Outcome(index, command.id, True, answer=earlier["answer"], duplicate=True)
        command_id = command.id or f"auto-{uuid.uuid4().hex}"
        envelope = Envelope(actor=command.actor, at=business_time(command.at, self.now), command_id=command_id)
        accepted = decide(command, envelope, self)
        first = len(self.events)
        self._collect()
        # Any change that moves a published year's figures revises its publication (SCORING.md §7):
        # facts on its appraisals, a tie-break, the adoption of another scheme version.
        year_number = appraisal_key_year(accepted.target)
        if isinstance(command, _YEAR_WIDE):
            year_number = command.year
        if year_number is not None and accepted.recorded:
            record = self.year(year_number)
            if record is not None and record.publications and not record.finalized:
                self.published_changes[year_number] = (envelope, command_id)
        answer = {"status": "accepted", "command": command_id, "type": command.type,
                  "target": accepted.target, "events": len(self.events) - first}
        if accepted.note:
            answer["note"] = accepted.note
        if len(self.events) > first:
            # The row shares this answer dict: flush() adds the log position to both.
            self.rows.append(CommandRow(command_id, command.type, print_, accepted.target, first, answer))
            self.accepted[command_id] = (command.type, accepted.target, print_, answer)
        return Outcome(index, command_id, True, answer=answer)

    def _discard_partial(self) -> None:
        """A refused command must leave nothing behind; handlers trigger events only once they
        accept, so any pending event here is a defect: drop the aggregates that hold one."""
        for aggregate in list(self.touched.values()):
            if aggregate.pending_events:
                raise AssertionError(f"a refused command left pending events on {aggregate.id}")
        self.touched.clear()

    def flush(self) -> None:
        """Record the batch's events and command rows in one transaction, then answer with
        each command's log position."""
        events, rows, read = self.write_set()
        self.ledger._write(events, rows, read)
        self.wrote(events)

    def write_set(self) -> tuple[list[Any], list[CommandRow], dict[UUID, int]]:
        """The batch's events and command rows, and its read set: what its decisions started
        from, each aggregate they read at the version read, and each one they changed at the
        version before its first new event (the store checks them all). Only this batch's: what an
        import's earlier batches read and this one does not is no reason to refuse it."""
        events, rows = self.detach()
        started: dict[UUID, int] = {}
        for event in events:
            started.setdefault(event.originator_id, event.originator_version - 1)
        used = self.used
        read = {**{aggregate_id: version for aggregate_id, version in self.read.items() if aggregate_id.int in used},
                **started}
        self.written = started
        return events, rows, read

    def wrote(self, events: list[Any]) -> None:
        """The batch's events are recorded: the next batch of an import reads them as written."""
        for event in events:
            self.read[event.originator_id] = event.originator_version
        self.used = set()
        if self.scores:  # made from what is now written: for the next batches, here and elsewhere
            with self.ledger._scores_lock:
                self.ledger._scores.update(self.scores)
            self.scores = {}

    def detach(self) -> tuple[list[Any], list[CommandRow]]:
        """The batch's events and command rows, to be written; the unit goes on from here."""
        events, rows = self.events, self.rows
        self.events, self.rows = [], []
        return events, rows

    def forget(self) -> None:
        """Drop everything read or decided (private copies): the next attempt starts from the store."""
        self.loaded, self.touched, self.current, self.read, self.used = {}, {}, set(), {}, set()
        self.look_up = True
        self.written = {}
        self.events, self.rows, self.accepted = [], [], {}
        self.published_changes.clear()
        self.scores = {}


_YEAR_WIDE = (c.BreakTie, c.AdoptScheme)  # commands on a year as a whole


def _needs(body: dict[str, Any]) -> list[UUID]:
    """The aggregates a single command will read, to refresh in one round trip: the organisation,
    and its appraisal and year when it names them."""
    needs = [Organisation.create_id()]
    key, year = body.get("appraisal"), body.get("year")
    if isinstance(key, str) and appraisal_key_year(key) is not None and c.storable(key):  # else refused as text
        needs.append(ledger_id("appraisal", key))
        year = appraisal_key_year(key)
    if isinstance(year, int) and not isinstance(year, bool):
        needs.append(Year.create_id(year))
    return needs
