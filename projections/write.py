"""Writing the read models' rows: one batch in one transaction (`write`), a rebuild's pages from a
thread of their own (`PageWriter`), and the tracking rows."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

from projections.db import ViewDB
from projections.documents import Rows
from projections.tables import NAME, VERSION, YEAR_TABLES


def write(tx: Any, rows: Rows, suffix: str = "") -> None:
    s = suffix
    for table, columns, keys, data in (
        (f"rm_year_results{s}", ("year", "scheme", "status", "document", "digest"), ("year",), rows.results),
        (f"rm_explanations{s}", ("appraisal", "year", "subject", "document", "digest"), ("appraisal",),
         rows.explanations),
        (f"rm_breakdowns{s}", ("appraisal", "version", "year", "subject", "document", "digest"),
         ("appraisal", "version"), rows.breakdowns),
        (f"rm_placements{s}", ("appraisal", "year", "explanation", "breakdown", "digest"), ("appraisal",),
         rows.placements),
        (f"rm_person_history{s}", ("person", "year", "scheme", "status", "department", "position", "total",
                                   "individual", "rank", "tier", "grade", "coefficient", "vetoed", "incomplete"),
         ("person", "year"), rows.people),
        (f"rm_department_history{s}", ("department", "year", "scheme", "status", "score", "rank",
                                       "staffing_cut", "incomplete"), ("department", "year"), rows.departments),
        (f"rm_appeals{s}", ("appeal", "appraisal", "year", "appellant", "target", "target_kind", "grounds",
                            "filed_at", "due", "decided_at", "outcome", "decided_by", "reason"), ("appeal",),
         rows.appeals),
        (f"rm_publications{s}", ("year", "version", "at", "recorded_at", "digest", "document"), ("year", "version"),
         rows.publications),
        (f"rm_setaside{s}", ("position", "aggregate", "topic", "stage", "error", "first_seen", "code"),
         ("position", "aggregate"), rows.setaside),
    ):
        if data:
            updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keys)
            tx.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
                           f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}", data)
    tx.append_rows(f"rm_audit{s}", 11, rows.audit)


class PageWriter:
    """Writes a rebuild's pages into its fresh tables from a thread of its own, one transaction
    each, in order, while the next page is read and folded: the database works (without the GIL)
    while Python folds. At most two pages wait. The connection is used by this thread alone until
    `close`, which waits for the last page and raises what a write raised."""

    def __init__(self, db: ViewDB, suffix: str) -> None:
        self.db, self.suffix = db, suffix
        self.pages: queue.Queue[Rows | Callable[[Any], None] | None] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="rebuild-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (item := self.pages.get()) is not None:
            if self.error is None:
                try:
                    with self.db.transaction() as tx:
                        if isinstance(item, Rows):
                            write(tx, item, self.suffix)
                        else:
                            item(tx)
                except BaseException as error:  # raised again by `put` or `close`
                    self.error = error

    def put(self, rows: Rows | Callable[[Any], None]) -> None:
        """A page of rows to write, or a job to run (given the transaction), after those before."""
        if self.error is not None:
            raise self.error
        self.pages.put(rows)

    def close(self) -> None:
        self.pages.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


class BatchWriter:
    """The rows of one batch of the live projection and its tracking, in one transaction (exactly
    once) that opens when the renderer first hands documents over (`spill`): a batch that renders
    a whole year (a year caught up at once, a publication) writes its documents as they are made
    instead of holding them all until the end (for 3,000 people some hundreds of megabytes of
    text, issue 19); a small batch opens it only to write at its end, as before. Documents are
    written in the order they were made (`rows`, the batch's rows gathered so far, go first). A
    render that fails half way (`attempt`) takes back what it wrote. Used as a context: the
    transaction commits at its end, or rolls back if it raises."""

    def __init__(self, db: ViewDB, rows: Rows) -> None:
        self.db, self.rows = db, rows
        self.tx: Any = None
        self.error: BaseException | None = None  # a write that failed: not the render's fault
        self._transaction = contextlib.ExitStack()
        self._attempt = False  # a render under way: its savepoint is made as the transaction opens

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> bool | None:
        return self._transaction.__exit__(kind, error, traceback)

    def _write(self, rows: Rows) -> None:
        try:
            if self.tx is None:
                self.tx = self._transaction.enter_context(self.db.transaction())
                write(self.tx, self.rows.take_documents())  # made before: first
                if self._attempt:
                    self.tx.execute("SAVEPOINT render")
            write(self.tx, rows)
        except BaseException as error:
            self.error = error
            raise

    def spill(self, documents: Rows) -> None:
        """Documents of the render under way (`Renderer.spill`)."""
        self._write(documents)

    def finish(self, position: int, expected: int) -> None:
        """The batch's rows not written yet and its tracking position (`set_tracking`)."""
        self._write(self.rows)
        set_tracking(self.tx, position, expected=expected)

    @contextlib.contextmanager
    def attempt(self) -> Iterator[None]:
        """A render: the documents it handed over are taken back if it raises."""
        if self.tx is not None:
            self._write(self.rows.take_documents())  # earlier renders' documents: kept
            self.tx.execute("SAVEPOINT render")
        self._attempt = True
        try:
            yield
        except BaseException:
            if self.tx is not None and self.error is None:
                self.tx.execute("ROLLBACK TO SAVEPOINT render")
                self.tx.execute("RELEASE SAVEPOINT render")
            raise
        else:
            if self.tx is not None:
                self.tx.execute("RELEASE SAVEPOINT render")
        finally:
            self._attempt = False


class TrackingMoved(RuntimeError):
    """The tracking row is not where this projection left it: a rebuild swapped its tables in
    behind it, or another worker ran. Its batch is rolled back; start again from the row."""


def set_tracking(tx: Any, position: int, *, expected: int | None = None) -> None:
    """Write the tracking position; with `expected`, only if the row still holds it (a rebuild that
    swapped in tables read up to an earlier position must not lose what this batch skips)."""
    if expected is not None:
        claimed = tx.execute("UPDATE rm_tracking SET position = ? WHERE name = ? AND position = ?",
                             [position, NAME, expected])
        if not claimed and not expected:
            claimed = tx.execute("INSERT INTO rm_tracking (name, position) VALUES (?, ?) "
                                 "ON CONFLICT (name) DO NOTHING", [NAME, position])
        if claimed != 1:
            raise TrackingMoved(f"the tracking row moved from {expected}: restart from it")
    for name, value in ((NAME, position), (f"{NAME}:version", VERSION)):
        tx.execute("INSERT INTO rm_tracking (name, position) VALUES (?, ?) "
                   "ON CONFLICT (name) DO UPDATE SET position = excluded.position", [name, value])


def keep_last_rows(db: ViewDB, years: list[int], suffix: str, tx: Any) -> None:
    """A rebuild's job for years it no longer renders: their rows as the live tables hold them (the
    last good ones), in place of whatever the fresh tables got of them; a publication's breakdowns
    as the rebuild wrote them."""
    for table in YEAR_TABLES:
        if not db.table_exists(table):
            continue
        for year in years:
            kept = " AND version = 0" if table == "rm_breakdowns" else ""
            tx.execute(f"DELETE FROM {table}{suffix} WHERE year = ?{kept}", [year])
            tx.execute(f"INSERT INTO {table}{suffix} SELECT * FROM {table} WHERE year = ? ON CONFLICT DO NOTHING",
                       [year])
