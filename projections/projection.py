"""The read-model projection: it follows the log, folds it (domain/log.py), renders what changed
(projections/documents.py) and writes it (projections/write.py) exactly once; it sets aside what it
cannot process, and rebuilds from zero (see the package's docstring)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.utils import get_topic

from api.store.gcpause import paused_gc
from domain import facts as f
from domain.aggregates import Appraisal, LedgerEvent, Year, ledger_id
from domain.log import Change, LedgerState
from domain.scheme import Scheme
from domain.scoring import SubjectScore, score_department
from projections.db import ViewDB, open_view_db
from projections.documents import (
    Renderer,
    Rows,
    aggregate_name,
    publication_row,
    render_error,
    rendered,
)
from projections.events import PAGE, Passed, Undecodable, read_events
from projections.tables import (
    NAME,
    REPLACED,
    TABLES,
    VERSION,
    code_version,
    create_audit_indexes,
    create_tables,
    free_index_generation,
    set_aside,
)
from projections.write import BatchWriter, PageWriter, keep_last_rows, set_tracking, write

log = structlog.get_logger("projections")


# --- the projection -----------------------------------------------------------------------------


class TakeBackFailed(RuntimeError):
    """A finalized year let go could not be folded again from the store (`_take_back`)."""


class ReadModelProjection:
    """Follows the log and keeps the read models; `catch_up` processes what is new, exactly once."""

    def __init__(self, ledger: Any, db: ViewDB | None = None, *, resume: bool = True) -> None:
        """With `resume=False` (a projection about to `rebuild`, which folds the log from zero
        itself) the log is not folded up to the tracking position first."""
        self.ledger = ledger
        self.db = db or open_view_db(ledger.db_url)
        with self.db.transaction() as tx:
            create_tables(tx)
        self.state = LedgerState()
        self.renderer = Renderer()
        self._batch: BatchWriter | None = None  # the live batch being processed (`process`)
        self._set_aside_nothing()
        if resume:
            self._resume()

    def _set_aside_nothing(self) -> None:
        """No event set aside (a fresh fold): see the module's docstring."""
        self._skipped: dict[int, int] = {}  # aggregate (its id's integer) -> position of its event set aside
        self._suspended: set[int] = set()  # years no longer rendered
        # (position, aggregate or year) -> its rm_setaside row (a year's may share the position of
        # an event set aside)
        self._entries: dict[tuple[int, str], tuple[Any, ...]] = {}
        self._pending: list[tuple[Any, ...]] = []  # rows of rm_setaside not written yet
        self._first_seen: dict[tuple[int, str], str] = {}  # the same key -> first seen, by an earlier run

    def tracking(self) -> int:
        rows = self.db.query("SELECT position FROM rm_tracking WHERE name = ?", [NAME])
        return int(rows[0]["position"]) if rows else 0

    def layout_version(self) -> int:
        rows = self.db.query("SELECT position FROM rm_tracking WHERE name = ?", [f"{NAME}:version"])
        return int(rows[0]["position"]) if rows else 0

    def _resume(self) -> None:
        """Fold the log up to the tracking position again: nothing is written for it. Tables of
        an older layout are rebuilt from zero. The appraisals of the years finalized by then (as
        their results row says) are passed unread: their events are neither decoded nor folded,
        only their versions kept, as if let go (`LedgerState.passed`; a start's CPU does not grow
        with the years behind it)."""
        position = self.tracking()
        if position and (self.layout_version() != VERSION or set_aside(self.db)):
            self.rebuild()  # set-aside events are tried again: this may be a fixed version
            return
        if position:
            finalized = {int(row["year"]) for row in
                         self.db.query("SELECT year FROM rm_year_results WHERE status = 'final'")}
            passing: dict[int, int] = {}  # an appraisal of a finalized year (its id's integer) -> its year
            versions: dict[int, dict[int, int]] = {year: {} for year in finalized}
            with paused_gc():  # see `rebuild`
                for at, event in read_events(self.ledger, stop=position, tolerant=True, passing=passing):
                    if type(event) is Passed:
                        key = event.originator_id.int
                        versions[passing[key]][key] = event.originator_version
                        continue
                    change = self._fold_one(at, event, None)
                    if type(event) is Year.SubjectEnrolled and change is not None and change.year in finalized:
                        # (enrolled before its appraisal opens: the appraisal's events all pass)
                        appraisal = ledger_id("appraisal", f"{change.year}:{event.subject}")
                        if appraisal not in self.state.aggregates:
                            passing[appraisal.int] = change.year
                    elif type(event) is Year.Finalized:
                        self._let_go_finalized()  # rendered by the run that processed it
            for year_number, passed in versions.items():
                self.state.passed(year_number, passed)
                year = self.state.years.get(year_number)
                if passed and (year is None or not year.finalized):  # its finalization set aside here
                    self._take_back(year_number)
            self.state.position = position
            self.renderer.load_digests(self.db, skip=set(self.state.closed))
            if self._pending:  # met by this version only
                with self.db.transaction() as tx:
                    write(tx, Rows(setaside=self._take_pending()))

    def catch_up(self, page: int = 2000) -> int:
        """Process every event after the tracking position; returns how many were processed. A
        batch ends between two commands (`_pages`)."""
        processed = 0
        batches = _pages(read_events(self.ledger, start=self.state.position, page=page, tolerant=True), page)
        while True:
            with paused_gc():  # see `rebuild`
                batch = next(batches, None)
                if batch is None:
                    return processed
                self.process(batch)
            processed += len(batch)

    def process(self, batch: list[tuple[int, LedgerEvent]], *, writer: PageWriter | None = None) -> Rows:
        """Fold a batch, render the years it touched, write rows and tracking in one transaction
        (`BatchWriter`: a render's documents as they are made). A publication is rendered at its
        own position, so its breakdowns are what was published. (A rebuild's pages, into fresh
        tables and without tracking, go to its `writer`.)"""
        rows = Rows()
        if writer is not None:
            self._fold_and_render(batch, rows)
            writer.put(rows)
            return rows
        expected = self.state.position  # where this projection left the tracking row
        try:
            with BatchWriter(self.db, rows) as self._batch:
                self.renderer.spill = self._batch.spill
                self._fold_and_render(batch, rows)
                self._batch.finish(self.state.position, expected)
        except TakeBackFailed:
            with self.db.transaction() as tx:  # alone, after the batch rolled back
                write(tx, Rows(setaside=self._take_pending()))
            raise
        finally:
            self.renderer.spill, self._batch = None, None
        self._let_go_finalized()
        return rows

    def _fold_and_render(self, batch: list[tuple[int, LedgerEvent]], rows: Rows) -> None:
        dirty: set[int] = set()
        whole: set[int] = set()  # years with a year-wide change: every subject is rendered again
        changed: set[str] = set()  # appraisals whose facts changed
        for position, event in batch:
            change = self._fold_one(position, event, rows)
            if change is None:  # set aside
                continue
            if change.year is not None:
                affected = self._years_affected(change)
                dirty.update(affected)
                if change.appraisal is None:
                    whole.update(affected)
                else:
                    changed.add(change.appraisal)
            if isinstance(event, Year.Published):
                year = self.state.years[change.year]  # type: ignore[index]
                try:
                    published = publication_row(year)
                except Exception as error:  # it cannot be kept: set aside as if it could not be folded
                    if rows.audit and rows.audit[-1][0] == position:
                        rows.audit.pop()
                    self._set_aside_event(position, event.originator_id, event.originator_version,
                                          get_topic(type(event)), "fold", error)
                    continue
                rows.publications.append(published)
                self._render(year.year, rows, publication=len(year.publications))
        for year_number in sorted(dirty):
            self._render(year_number, rows, changed=None if year_number in whole else changed)
        rows.setaside += self._take_pending()

    def _fold(self, batch: list[tuple[int, LedgerEvent]]) -> Rows:
        """A rebuild's page without a publication: folded and audited; nothing is rendered (the
        final render renders every year), so no year is marked to render."""
        rows = Rows()
        fold = self._fold_one
        for position, event in batch:
            fold(position, event, rows)
        rows.setaside += self._take_pending()
        return rows

    # --- what cannot be processed is set aside (see the module's docstring) -----------------------

    def _fold_one(self, position: int, event: LedgerEvent | Undecodable, rows: Rows | None) -> Change | None:
        """Fold one event, note it and audit it into `rows` (None: fold only); None when it is set
        aside, or its aggregate is."""
        if type(event) is Undecodable:
            self._set_aside_event(position, event.originator_id, event.originator_version, event.topic, "decode",
                                  event.error)
        elif event.originator_id.int not in self._skipped:
            closed = self.state.closed_year(event.originator_id)
            if closed is not None:  # an event on a finalized year let go: it is taken back first
                self._take_back(closed)
            try:
                change = self.state.apply(event, position)
                if rows is not None:
                    self.renderer.note(change)
                    self.renderer.audit(position, event, self.state, change, rows)
                return change
            except Exception as error:
                self._set_aside_event(position, event.originator_id, event.originator_version,
                                      get_topic(type(event)), "fold", error)
        self.state.position = position
        return None

    def _set_aside_event(self, position: int, aggregate_id: UUID, version: int, topic: str, stage: str,
                         error: Exception) -> None:
        """An event that cannot be decoded, folded or audited: its aggregate set back to the version
        before it (folded again from the store) and its later events skipped."""
        before = self.state.aggregates.get(aggregate_id)
        name = aggregate_name(before) if before is not None else f"aggregate:{aggregate_id}"
        if stage != "decode":  # the apply code may have changed it half way
            aggregate = None
            try:
                for stored in self.ledger.recorder.select_events(aggregate_id, lte=version - 1):
                    aggregate = self.ledger.mapper.to_domain_event(stored).mutate(aggregate)
            except Exception:  # (it folded before): without it, then
                aggregate = None
            self.state.restore(aggregate_id, aggregate)
            if aggregate is not None:
                self.renderer.note(Change(*_year_of(aggregate)))
        self._skipped[aggregate_id.int] = position
        self._record(position, name, topic, stage, error)

    def _render(self, year_number: int, rows: Rows, **options: Any) -> None:
        """Render a year (`Renderer.year`) into `rows`. An appraisal that cannot be scored or rendered
        is set aside at the event that made it so, and the year rendered again; a year that still
        cannot be, with no appraisal to blame, is no longer rendered."""
        if year_number in self._suspended or year_number not in self.state.years:
            return
        if year_number in self.state.closed:
            self._take_back(year_number)
        renderer, batch = self.renderer, self._batch
        # What changed since the year was last rendered (None: all of it): looked at first.
        since = (set(renderer._stale.get(year_number, ())) if year_number in renderer._scores
                 and year_number not in renderer._stale_years else None)
        while True:
            attempt = Rows()
            try:
                with batch.attempt() if batch is not None else contextlib.nullcontext():
                    renderer.year(self.state, year_number, attempt, **options)
            except Exception as error:
                if batch is not None and batch.error is not None:
                    raise  # a write that failed, not the render
                renderer.forget(year_number)
                options["changed"] = None
                found = self._set_aside_appraisals(year_number, since) or (
                    since is not None and self._set_aside_appraisals(year_number, None))
                since = None
                if not found:
                    self._suspended.add(year_number)
                    self._record(self.state.position, f"year:{year_number}", "", "render", error)
                    return
                continue
            rows.extend(attempt)
            return

    def _set_aside_appraisals(self, year_number: int, only: set[str] | None) -> bool:
        """Set aside each appraisal of the year (`only` those and their departments' members) that
        cannot be scored or rendered alone, at the first of its events after which it cannot;
        whether there was one."""
        state, frozen = self.state, self.renderer.frozen
        year = state.years[year_number]
        try:
            scheme = state.scheme(year.scheme_id, year.scheme_version)
        except Exception:
            return False
        appraisals = [state.appraisals[key] for key in (f"{year_number}:{s}" for s in year.subjects)
                      if key in state.appraisals and key not in frozen]
        if only is not None:
            appraisals = [a for a in appraisals if a.key in only
                          or f"{year_number}:{a.facts.subject.department}" in only]
        departments: dict[str, SubjectScore | None] = {}

        def department(facts: f.AppraisalFacts) -> SubjectScore | None:
            if facts.kind == "department" or not facts.subject.department:
                return None
            key = f"{year_number}:{facts.subject.department}"
            if key not in departments:
                unit = frozen.get(key)
                if unit is None and key in state.appraisals:
                    unit = state.appraisals[key].facts
                try:
                    departments[key] = score_department(scheme, unit) if unit is not None else None
                except Exception:
                    departments[key] = None
            return departments[key]

        found = False
        for kind in ("department", "person"):  # a person's score reads their department's
            for appraisal in appraisals:
                if appraisal.facts.kind != kind or render_error(scheme, appraisal.facts, department(appraisal.facts)) is None:
                    continue
                try:
                    culprit = self._culprit(appraisal, scheme, department(appraisal.facts))
                except Exception:  # its events folded here once: not expected; the year is set aside then
                    culprit = None
                if culprit is None:
                    continue
                version, topic, error, facts = culprit
                frozen[appraisal.key] = facts
                self.renderer.note(Change(year_number, appraisal.key, "SetAside"))
                self._record(self._position_of(appraisal.id, version), appraisal.key, topic, "render", error)
                found = True
        return found

    def _culprit(self, appraisal: Appraisal, scheme: Scheme, department: SubjectScore | None
                 ) -> tuple[int, str, Exception, f.AppraisalFacts] | None:
        """The first event of an appraisal (as folded here) after which it cannot be scored or
        rendered alone: its version, topic, the error, and the appraisal's facts before it."""
        stored = list(self.ledger.recorder.select_events(appraisal.id, lte=appraisal.version))
        mapper, folded, score = self.ledger.mapper, None, None
        for index, item in enumerate(stored):
            folded = mapper.to_domain_event(item).mutate(folded)
            try:
                score = rendered(scheme, folded.facts, department, score)
                continue
            except Exception as failed:
                error = failed
            if index == 0:
                return None  # not even opened: nothing to score in its place
            before = None
            for earlier in stored[:index]:
                before = mapper.to_domain_event(earlier).mutate(before)
            return item.originator_version, item.topic, error, before.facts
        return None

    def _position_of(self, aggregate_id: UUID, version: int) -> int:
        """The log position of an aggregate's event (on a connection of its own: a rebuild's writer
        thread holds this projection's)."""
        table = self.ledger.recorder.events_table_name
        db = open_view_db(self.ledger.db_url)
        try:
            if db.kind == "sqlite":
                rows = db.query(f"SELECT rowid AS position FROM {table} WHERE originator_id = ? "
                                "AND originator_version = ?", [aggregate_id.hex, version])
            else:
                rows = db.query(f"SELECT notification_id AS position FROM {table} WHERE originator_id = ? "
                                "AND originator_version = ?", [aggregate_id, version])
        finally:
            db.close()
        return int(rows[0]["position"]) if rows else self.state.position

    def _record(self, position: int, aggregate: str, topic: str, stage: str, error: Exception) -> None:
        """An rm_setaside row (written with the batch), and a warning in the log. The log names the
        error's type only: a message may quote what a command carried (a rater's score)."""
        key = (position, aggregate)
        if key in self._entries:
            return
        first_seen = self._first_seen.get(key) or datetime.now(UTC).isoformat()
        row = (position, _printable(aggregate), _printable(topic), stage,
               _printable(f"{type(error).__name__}: {error}")[:500], first_seen, code_version())
        self._entries[key] = row
        self._pending.append(row)
        log.warning("event set aside", position=position, aggregate=aggregate, topic=topic, stage=stage,
                    error=type(error).__name__, first_seen=first_seen)

    def _take_pending(self) -> list[tuple[Any, ...]]:
        pending, self._pending = self._pending, []
        return pending

    def _years_affected(self, change: Change) -> set[int]:
        assert change.year is not None
        years = {change.year}
        if change.kind == "Published":  # consequences of the next two years read this publication
            years.update(y for y in (change.year + 1, change.year + 2) if y in self.state.years)
        return years

    # --- finalized years are let go (issue 19) ------------------------------------------------

    def _let_go_finalized(self) -> None:
        """Let go of the appraisals of every finalized year still held, and of what the renderer
        keeps of it, once its rows are made: nothing records on a finalized year again, and what
        later years read of it (its publications) stays with its `Year`. The state held is the
        organisation, the schemes, the open years and the finalized years' `Year`s."""
        for year_number, year in self.state.years.items():
            if year.finalized and year_number not in self.state.closed:
                self.state.let_go(year_number)
                self.renderer.forget(year_number)

    def _take_back(self, year_number: int) -> None:
        """A finalized year let go, folded again from the store (each appraisal up to the version
        it had), for an event on it or a render of it; let go again after the batch. An event that
        this version cannot fold may be met here first, a start having passed it unread (`_resume`):
        it is noted (`TakeBackFailed`: written after the batch is rolled back), so that the next
        start rebuilds, setting it aside as every fold does."""
        mapper, recorder = self.ledger.mapper, self.ledger.recorder
        appraisals = []
        for key, version in self.state.closed[year_number].items():
            aggregate_id, aggregate = UUID(int=key), None
            for stored in recorder.select_events(aggregate_id, lte=version):
                try:
                    aggregate = mapper.to_domain_event(stored).mutate(aggregate)
                except Exception as error:
                    self._record(self._position_of(aggregate_id, stored.originator_version),
                                 f"aggregate:{aggregate_id}", stored.topic, "fold", error)
                    raise TakeBackFailed(f"year {year_number} cannot be folded again") from error
            appraisals.append(aggregate)
        self.state.take_back(year_number, appraisals)

    def rebuild(self, page: int = PAGE) -> int:
        """Rebuild every read model from zero into fresh tables, then swap them in at once; the
        number of events in the log. The cyclic garbage collector is paused meanwhile
        (api/store/gcpause.py): the fold and the rendering allocate millions of objects that form no
        cycles, and the collector would scan the growing folded state again and again to find
        none (two thirds of the time). Pages are of `PAGE` events: a page's decoded events are held
        beside the year being folded, and a larger page costs the same CPU (issue 19: 20,000 held a
        300-person office's rebuild at 247 MB, 5,000 at 175 MB)."""
        kept = {(row["position"], row["aggregate"]): row["first_seen"] for row in set_aside(self.db)}
        with paused_gc():
            self._set_aside_nothing()
            self._first_seen = kept
            return self._rebuild(page)

    def _fresh_tables(self, suffix: str) -> Callable[[Any], None]:
        """Empty `suffix` tables; the job that makes their audit indexes, once the audit rows are
        written (cheaper than row by row), under names the live table's do not have."""
        with self.db.transaction() as tx:
            for table in TABLES:
                tx.execute(f"DROP TABLE IF EXISTS {table}{suffix}")
                tx.execute(f"DROP TABLE IF EXISTS {table}{REPLACED}")  # left by a swap that stopped short
            create_tables(tx, suffix, indexes=False)
            generation = free_index_generation(tx.index_names("rm_audit"))
        return lambda tx: create_audit_indexes(tx, f"rm_audit{suffix}", generation)

    def _rebuild(self, page: int) -> int:
        suffix = "_next"
        same_layout = self.layout_version() == VERSION  # (before the writer has the connection)
        index = self._fresh_tables(suffix)
        self.state, self.renderer = LedgerState(), Renderer()
        processed = 0
        writer = PageWriter(self.db, suffix)
        final = Rows()
        try:
            # A page ends at a year's finalization, so that the year is rendered and let go before
            # the next year's events are folded (a rebuild holds one year, not a year and a page).
            for batch in _pages(read_events(self.ledger, page=page, tolerant=True), page, _finalizes):
                if any(isinstance(event, Year.Published) for _, event in batch):
                    self.renderer.spill = writer.put  # the year's documents, as they are made
                    try:
                        self.process(batch, writer=writer)  # rendered at the publication
                    finally:
                        self.renderer.spill = None
                else:
                    writer.put(self._fold(batch))
                processed += len(batch)
                self._close_years(writer)
            writer.put(index)  # by the writer, while the final render goes on
            self.renderer.spill = writer.put  # the documents go to the fresh tables as they are made
            try:
                for year_number in sorted(set(self.state.years) - set(self.state.closed)):
                    self._render(year_number, final)
            finally:
                self.renderer.spill = None
            final.setaside += self._take_pending()
            writer.put(final)
            if self._suspended and same_layout:
                writer.put(partial(keep_last_rows, self.db, sorted(self._suspended), suffix))
        finally:
            writer.close()
        self._swap(suffix, self.state.position)
        return processed

    def _close_years(self, writer: PageWriter) -> None:
        """A rebuild's years finalized by now: each rendered into the fresh tables, then let go, so
        that a rebuild holds one year at a time (and the open ones)."""
        closing = [number for number, year in sorted(self.state.years.items())
                   if year.finalized and number not in self.state.closed]
        if not closing:
            return
        rows = Rows()
        self.renderer.spill = writer.put
        try:
            for year_number in closing:
                self._render(year_number, rows)
        finally:
            self.renderer.spill = None
        rows.setaside += self._take_pending()
        writer.put(rows)
        self._let_go_finalized()

    def _swap(self, suffix: str, position: int) -> None:
        """The fresh tables (every row written) in, the tracking row moved, in one short
        transaction; the tables replaced are dropped after it, one at a time (writers to the store
        wait for neither)."""
        with self.db.transaction() as tx:
            for table in TABLES:
                if self.db.table_exists(table):
                    tx.execute(f"ALTER TABLE {table} RENAME TO {table}{REPLACED}")
                tx.execute(f"ALTER TABLE {table}{suffix} RENAME TO {table}")
            set_tracking(tx, position)
        for table in TABLES:
            with self.db.transaction() as tx:
                tx.execute(f"DROP TABLE IF EXISTS {table}{REPLACED}")

    def close(self) -> None:
        self.db.close()


def _printable(text: str) -> str:
    """Text for rm_setaside, which both stores keep (a NUL character written as `\\x00`)."""
    return str(text).replace("\x00", "\\x00")


def _year_of(aggregate: Any) -> tuple[int | None, str | None, str]:
    """What a change of the aggregate touches (`Change`)."""
    if isinstance(aggregate, Appraisal):
        return aggregate.facts.year, aggregate.key, "SetAside"
    if isinstance(aggregate, Year):
        return aggregate.year, None, "SetAside"
    return None, None, "SetAside"


def _command(item: tuple[int, Any]) -> str | None:
    return getattr(item[1], "command_id", None)


def _finalizes(item: tuple[int, Any]) -> bool:
    return type(item[1]) is Year.Finalized


def _pages(events: Iterable[Any], n: int, ends: Callable[[Any], bool] | None = None) -> Iterable[list[Any]]:
    """Lists of `n` (position, event) items, or a few more: a list ends only between two commands
    (a command that opens an appraisal records the year's new subject, then the appraisal: a year
    rendered between the two has a subject without its appraisal), and ends there early after an
    item that `ends` one."""
    page: list[Any] = []
    due = False
    for item in events:
        if due and ((command := _command(item)) is None or command != _command(page[-1])):
            yield page
            page, due = [], False
        page.append(item)
        due = due or len(page) >= n or (ends is not None and ends(item))
    if page:
        yield page
