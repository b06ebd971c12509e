"""The read side as the HTTP routes and the pages see it: `Queries`, answering from the read models
of `projections/` (rm_* tables), kept by the projection (a thread of the server, a separate
`appraisal project` worker, or inline before each read in tests). Its `position` is the
projection's tracking position, which is what a request's `?position=` waits for.

Who an appraisal is about, people and departments are read from the ledger, on private copies
(`ledger.get(..., private=True)`): the ledger fast-forwards its cached objects in place when other
threads write, and a shared one could be seen half-updated.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from starlette.concurrency import run_in_threadpool

from api.http.problems import Problem
from api.ledger import AppraisalLedger
from api.store.gcpause import freeze_kept
from domain.aggregates import (
    Appraisal,
    Organisation,
    SchemeCatalogue,
    SchemeVersion,
    Year,
    ledger_id,
)
from domain.errors import DomainError, NotFound
from projections.db import open_view_db
from projections.documents import json_value
from projections.events import read_events
from projections.projection import ReadModelProjection
from projections.reading import ReadModels, YearAt, appraisal_year, results_at, year_at
from projections.tables import create_tables
from projections.write import TrackingMoved


@dataclass(frozen=True)
class SubjectInfo:
    """Who an appraisal is about, and who speaks for it (the person, or a department's head)."""

    key: str
    year: int
    subject: str
    kind: str
    department: str | None
    speaker: str | None  # who appeals for it, and sees it as their own


@dataclass(frozen=True)
class YearInfo:
    year: int
    status: str  # provisional | published | final
    published: dict[str, Any] | None  # the latest publication's document


# Years at given times kept by `Queries.year_at`: one (a 3,000-person year is about 150 MB; the
# server's memory is planned with one, README), let go before the next is folded.
LOOKED_BACK = 1


class Queries:
    """Everything the routes and the pages read, served from the read models
    (projections/projection.py): one indexed row read per question. Unknown things raise
    `domain.errors.NotFound`. A replay under another scheme version and as-of views are folds of
    the log (projections/reading.py).

    What the read models do not hold is absent (404), wherever the log ends: a request that needs
    a write of its own to be there names its position (`?position=`, `ReadProgress`).

    `inline`: before each read, catch the projection up synchronously, under a lock (tests; a
    server runs it in the background or beside it)."""

    def __init__(self, ledger: AppraisalLedger, *, inline: bool = False, readers: int = 4) -> None:
        if not ledger.db_url.startswith(("sqlite:", "postgresql:", "postgres:")):
            raise ValueError(f"the read models need a SQLite or PostgreSQL store, not {ledger.db_url!r}")
        self.ledger = ledger
        self.inline = inline
        self._readers = _Readers(lambda: ReadModels(ledger.db_url), readers)
        self._projection: ReadModelProjection | None = None
        self._catching_up = threading.Lock()
        # `year_at`: by (year, as_of, known_at), the year and the log position it was folded or checked to
        self._looked_back: OrderedDict[tuple[int, str, str], tuple[YearAt, int]] = OrderedDict()
        self._looked_back_lock = threading.Lock()
        self._looking_back = threading.Lock()  # one fold at a time (see `year_at`)
        db = open_view_db(ledger.db_url)  # the tables, so that a read before the first run finds them
        try:
            with db.transaction() as tx:
                create_tables(tx)
        finally:
            db.close()

    # --- helpers ---------------------------------------------------------------------------------

    def catch_up(self) -> None:
        """Inline: process what the log holds beyond the read models, under a lock."""
        with self._catching_up:
            for attempt in (1, 2):
                if self._projection is None:
                    self._projection = ReadModelProjection(self.ledger)
                try:
                    self._projection.catch_up()
                    return
                except TrackingMoved:  # another projection wrote: resume from the tracking row
                    self._projection.close()
                    self._projection = None
                    if attempt == 2:
                        raise

    @contextlib.contextmanager
    def _views(self) -> Iterator[ReadModels]:
        if self.inline:
            self.catch_up()
        with self._readers.borrow() as views:
            yield views

    @staticmethod
    def _no_year(year: int) -> NotFound:
        return NotFound("year", f"no appraisal is open for {year}", rule="year-open")

    @staticmethod
    def _no_appraisal(key: str) -> NotFound:
        return NotFound("appraisal", f"no appraisal {key}", rule="appraisal-open")

    # --- Queries ---------------------------------------------------------------------------------

    def position(self) -> int:
        with self._views() as views:
            return views.position()

    def set_aside(self) -> list[dict[str, Any]]:
        """The events the read models set aside (projections/projection.py), in log order."""
        with self._views() as views:
            return views.set_aside()

    def year(self, year: int) -> YearInfo:
        with self._views() as views:
            status = views.year_status(year)
            published = views.publication(year)["document"] if status not in (None, "provisional") else None
        if status is None:
            raise self._no_year(year)
        return YearInfo(year, status, published)

    def results(self, year: int, scheme: tuple[str, int] | None = None) -> dict[str, Any]:
        if scheme is not None:
            return {**results_at(self.ledger, year, scheme=scheme), "status": "replay"}
        return json_value(self.results_text(year))

    def results_text(self, year: int) -> str:
        """The year's results as the read models store them: JSON text (`projections.documents.json_text`)."""
        with self._views() as views, contextlib.suppress(NotFound):
            return views.results_text(year)
        raise self._no_year(year)

    def subject(self, key: str) -> SubjectInfo:
        # What is read of the appraisal (its year, subject, kind and the subject's department) is
        # fixed when it is opened: a cached copy is not fast-forwarded first (a round trip to the
        # store on every read); one not cached is read from the store.
        appraisal = self.ledger.get(ledger_id("appraisal", key), private=True, fastforward=False)
        if appraisal is None:
            raise self._no_appraisal(key)
        facts = appraisal.facts
        speaker: str | None = facts.subject.id
        if facts.kind == "department":
            organisation = self._organisation()
            speaker = organisation.head_of(facts.subject.id) if organisation else None
        return SubjectInfo(key, facts.year, facts.subject.id, facts.kind, facts.subject.department, speaker)

    def explanation(self, key: str) -> dict[str, Any]:
        with self._views() as views, contextlib.suppress(NotFound):
            return views.explanation(key)
        raise self._no_appraisal(key)

    def explanation_at(self, key: str, as_of: datetime | None, known_at: datetime | None) -> dict[str, Any]:
        """An appraisal's explanation as of those times (`projections.reading.explain_at`), from
        its year at those times as `year_at` keeps it: right after the year's look-back at the
        same times, or another appraisal's, it costs one explanation, not a fold."""
        return self.year_at(appraisal_year(key), as_of, known_at).explanation(key)

    def results_at(self, year: int, as_of: datetime | None, known_at: datetime | None) -> dict[str, Any]:
        """The year's results as of those times (`projections.reading.results_at`), as `year_at`
        keeps them. Read-only: the same document is given to every caller."""
        return self.year_at(year, as_of, known_at).document()

    def year_at(self, year: int, as_of: datetime | None, known_at: datetime | None) -> YearAt:
        """The year folded and scored at those times from the log up to its last position now
        (seconds for a 3,000-person year): kept, the `LOOKED_BACK` most recent, by the year and
        the times (by their text, which the documents carry), for the year's next pages and its
        appraisals at the same times. The log grows meanwhile (an office at work records a few
        commands a minute): the kept year stays while nothing appended since may change it
        (`YearAt.counts`: as of a recording time the log has gone past, nothing; as known at a
        business time, no fact later than it), so an inspector paging through a past moment is
        not folded again by every command. One fold at a time: a request for the same times waits
        for the fold under way, not a second one (a fold holds the interpreter anyway)."""
        position = self.ledger.event_count()
        key = (year, as_of.isoformat() if as_of else "", known_at.isoformat() if known_at else "")
        kept = self._kept_year(key, position)
        if kept is not None:
            return kept
        with self._looking_back:
            kept = self._kept_year(key, position)  # made meanwhile
            if kept is not None:
                return kept
            with self._looked_back_lock:  # room first: the old and the new are never held together
                while self._looked_back and len(self._looked_back) >= LOOKED_BACK:
                    self._looked_back.popitem(last=False)
            made = year_at(self.ledger, year, as_of=as_of, known_at=known_at, stop=position)
            freeze_kept()
            with self._looked_back_lock:
                self._looked_back[key] = (made, position)
        return made

    def _kept_year(self, key: tuple[int, str, str], position: int) -> YearAt | None:
        """The year kept for these times, brought to `position` if nothing appended since counts."""
        with self._looked_back_lock:
            kept = self._looked_back.get(key)
        if kept is None:
            return None
        made, folded = kept
        if folded != position and not made.settled:
            try:
                if any(made.counts(event) for _, event in read_events(self.ledger, start=folded, stop=position)):
                    return None
            except Exception:  # (an event that cannot be read: the fold says what it is)
                return None
        with self._looked_back_lock:
            if self._looked_back.get(key) is kept:
                self._looked_back[key] = (made, max(position, folded))
                self._looked_back.move_to_end(key)
        return made

    def breakdown(self, key: str, version: int | None = None) -> dict[str, Any]:
        """The public breakdown as published in publication `version` (the latest by default;
        0: the current figures)."""
        with self._views() as views, contextlib.suppress(NotFound):
            return views.breakdown(key, version)
        self.explanation(key)  # an unknown appraisal first
        raise NotFound("version", f"{key} has no publication {version}", rule="publication-known")

    def published_breakdowns(self, keys: list[str], version: int) -> dict[str, dict[str, Any]]:
        """Publication `version`'s breakdowns of these appraisals (those it holds), by appraisal."""
        with self._views() as views:
            return views.published_breakdowns(keys, version)

    def history(self, key: str) -> list[dict[str, Any]]:
        rows = self._audit_rows(aggregate=key, after=0, limit=None)
        if not rows:
            raise self._no_appraisal(key)
        return [audit_view(row, extended=False) for row in rows]

    def appeals(self, year: int) -> list[dict[str, Any]]:
        with self._views() as views:
            known = views.year_status(year) is not None
            rows = views.appeals(year=year, now=self.ledger.clock()) if known else []
        if not known:
            raise self._no_year(year)
        found = self._appeal_views(rows)
        return sorted(found, key=lambda a: (a["filed_at"], a["appeal"]))

    def appeals_of(self, *, appraisal: str | None = None, appellant: str | None = None) -> list[dict[str, Any]]:
        """The appeals on one appraisal and/or filed by one appellant, of every year, oldest
        first: one read of rm_appeals and one explanation per appraisal they concern (not the
        whole year's, as `appeals(year)` reads)."""
        with self._views() as views:
            rows = views.appeals(appraisal=appraisal, appellant=appellant, now=self.ledger.clock())
        return sorted(self._appeal_views(rows), key=lambda a: (a["filed_at"], a["appeal"]))

    def appeal(self, appeal_id: str) -> dict[str, Any]:
        row = self.ledger.commands([appeal_id]).get(appeal_id)
        if row is None or row["type"] != "appeal.file":
            raise NotFound("appeal", f"no appeal filed by command {appeal_id}", rule="appeal-known")
        with self._views() as views:
            rows = [r for r in views.appeals(appraisal=row["target"], now=self.ledger.clock())
                    if r["appeal"] == appeal_id]
        if not rows:
            raise NotFound("appeal", f"no appeal {appeal_id}", rule="appeal-known")
        return self._appeal_views(rows)[0]

    def _appeal_views(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """rm_appeals rows as the API answers them: references, the subject and the
        decision's details come from the appraisal's explanation (its events)."""
        documents: dict[str, dict[str, Any]] = {}
        views = []
        for row in rows:
            if row["appraisal"] not in documents:
                documents[row["appraisal"]] = self.explanation(row["appraisal"])
            views.append(appeal_view(row, documents[row["appraisal"]]))
        return views

    def _organisation(self) -> Organisation | None:
        return self.ledger.get(Organisation.create_id(), private=True)

    def person(self, person: str) -> dict[str, Any] | None:
        organisation = self._organisation()
        return organisation.people.get(person) if organisation else None

    def department(self, department: str) -> dict[str, Any] | None:
        organisation = self._organisation()
        return organisation.departments.get(department) if organisation else None

    def person_history(self, person: str) -> list[dict[str, Any]]:
        with self._views() as views:
            rows = views.person_history(person)
        return [{"year": r["year"], "scheme": r["scheme"], "status": r["status"], "department": r["department"],
                 "position": r["position"], "total": r["total"], "individual_score": r["individual"],
                 "rank": r["rank"], "tier": r["tier"], "grade": r["grade"], "coefficient": r["coefficient"],
                 "vetoed": bool(r["vetoed"]), "incomplete": bool(r["incomplete"])} for r in rows]

    def department_history(self, department: str) -> list[dict[str, Any]]:
        with self._views() as views:
            return [_department(r) for r in views.department_history(department)]

    def department_ranking(self, year: int) -> list[dict[str, Any]]:
        with self._views() as views:
            known = views.year_status(year) is not None
            rows = views.department_ranking(year) if known else []
        if not known:
            raise self._no_year(year)
        return ranked([_department(r) for r in rows])

    def publications(self, year: int) -> list[dict[str, Any]]:
        with self._views() as views:
            known = views.year_status(year) is not None
            rows = views.publications(year) if known else []
        if not known:
            raise self._no_year(year)
        return [{k: row[k] for k in ("year", "version", "at", "recorded_at", "digest")} for row in rows]

    def publication(self, year: int, version: int) -> dict[str, Any]:
        with self._views() as views, contextlib.suppress(NotFound):
            row = views.publication(year, version)
            return {k: row[k] for k in ("year", "version", "at", "recorded_at", "digest", "document")}
        raise NotFound("version", f"year {year} has no publication {version}", rule="publication-known")

    def audit(self, after: int, limit: int, *, appraisal: str | None = None,
              actor: str | None = None, backdated: bool | None = None) -> list[dict[str, Any]]:
        rows = self._audit_rows(aggregate=appraisal, actor=actor, after=after, limit=limit, backdated=backdated)
        return audit_trail(self.ledger, [(row["position"], audit_view(row)) for row in rows])

    def _audit_rows(self, *, after: int, limit: int | None, aggregate: str | None = None,
                    actor: str | None = None, backdated: bool | None = None) -> list[dict[str, Any]]:
        """rm_audit rows; `limit` None: all of them, a page at a time."""
        rows: list[dict[str, Any]] = []
        page = limit or 5000
        with self._views() as views:
            while True:
                found = views.audit(aggregate=aggregate, actor=actor, after=after, limit=page, backdated=backdated)
                rows += found
                if limit is not None or len(found) < page:
                    return rows
                after = found[-1]["position"]

    def close(self) -> None:
        with self._catching_up:
            if self._projection is not None:
                self._projection.close()
                self._projection = None
        self._readers.close()


class _Readers:
    """A few read-model connections shared by the server's threads, each lent to one at a time;
    opened when first needed (again after `close`), one that failed is dropped."""

    def __init__(self, open_one: Callable[[], ReadModels], size: int) -> None:
        self.open_one = open_one
        self.free = threading.BoundedSemaphore(size)
        self.lock = threading.Lock()
        self.idle: list[ReadModels] = []

    @contextlib.contextmanager
    def borrow(self) -> Iterator[ReadModels]:
        with self.free:
            with self.lock:
                views = self.idle.pop() if self.idle else None
            views = views or self.open_one()
            try:
                yield views
            except DomainError:
                self._give_back(views)
                raise
            except BaseException:
                with contextlib.suppress(Exception):
                    views.close()
                raise
            self._give_back(views)

    def _give_back(self, views: ReadModels) -> None:
        with self.lock:
            self.idle.append(views)

    def close(self) -> None:
        with self.lock:
            idle, self.idle = self.idle, []
        for views in idle:
            with contextlib.suppress(Exception):
                views.close()


# --- answers -----------------------------------------------------------------------------------------


def _department(row: dict[str, Any]) -> dict[str, Any]:
    """An rm_department_history row as the API answers it."""
    return {**{k: row[k] for k in ("year", "scheme", "status", "department", "score", "rank", "staffing_cut")},
            "incomplete": bool(row["incomplete"])}


def ranked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["rank"] is None, r["rank"] or 0, r["department"]))


def appeal_view(row: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    """An rm_appeals row (with its status) as the API answers it, completed from the appraisal's
    explanation."""
    events = document["events"]
    by_command = {e["command"]: e for e in events if "command" in e}
    filed = by_command.get(row["appeal"], {})
    item = by_command.get(row["target"])
    decision = next((e for e in events if e["kind"] == "decision" and e.get("appeal") == row["appeal"]), None)
    view: dict[str, Any] = {
        "appeal": row["appeal"], "ref": filed.get("ref"), "appraisal": row["appraisal"],
        "subject": document["subject"]["id"], "appellant": row["appellant"], "grounds": row["grounds"],
        "filed_at": row["filed_at"], "recorded_at": filed.get("recorded_at"), "due": row["due"],
        "status": row["status"],
        "target": {"command": row["target"], "kind": None if row["target_kind"] == "unknown" else row["target_kind"],
                   "ref": item["ref"] if item else None},
        "decision": None,
    }
    if decision is not None:
        view["decision"] = {"outcome": decision["outcome"], "reason": decision["reason"],
                            "points": decision.get("points"), "actor": decision["actor"], "at": decision["at"],
                            "ref": decision["ref"], "command": decision["command"]}
    return view


def _aggregate_of(name: str) -> tuple[type, UUID]:
    """The class and id of an aggregate from its name in rm_audit (`projections.documents.aggregate_name`)."""
    if name.startswith("year:"):
        return Year, Year.create_id(int(name[len("year:"):]))
    if name.startswith("scheme:"):
        scheme_id, _, version = name[len("scheme:"):].rpartition("@")
        return SchemeVersion, SchemeVersion.create_id(scheme_id, int(version))
    if name == "organisation":
        return Organisation, Organisation.create_id()
    if name == "schemecatalogue":
        return SchemeCatalogue, SchemeCatalogue.create_id()
    return Appraisal, ledger_id("appraisal", name)


def audit_view(row: dict[str, Any], *, extended: bool = True) -> dict[str, Any]:
    """An rm_audit row as a stored event: its class, aggregate, version, recording time and
    fields; `extended` adds what the read model
    knows besides: the aggregate's name, the actor, the business time and the figures it feeds."""
    kind, aggregate_id = _aggregate_of(row["aggregate"])
    event_class = getattr(kind, row["event"], None)
    data = {**row["detail"], "actor": row["actor"], "at": row["at"], "command_id": row["command_id"]}
    view = {"type": event_class.__qualname__ if isinstance(event_class, type) else row["event"],
            "aggregate": str(aggregate_id), "version": row["version"], "recorded_at": row["recorded_at"],
            "backdated": row["backdated"], "data": data, "command_id": row["command_id"]}
    if extended:
        view.update(aggregate_name=row["aggregate"], actor=row["actor"], at=row["at"], figures=row["figures"])
    return view


def audit_trail(ledger: AppraisalLedger, entries: list[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Audit entries with their log position and the target of the command that recorded them."""
    ids = sorted({str(view.get("command_id") or "") for _, view in entries} - {""})
    targets = {cid: row["target"] for cid, row in ledger.commands(ids).items()} if ids else {}
    trail = []
    for position, view in entries:
        view["position"] = position
        view["target"] = targets.get(view.get("command_id") or "")
        view.setdefault("actor", view["data"].get("actor"))
        view.setdefault("at", view["data"].get("at"))
        trail.append(view)
    return trail


class ReadProgress:
    """Waiting for the read side to reach a log position, on the event loop: a waiter holds no
    thread. While anyone waits, the read side's position is read (on a worker thread) at most once
    every `poll` seconds, whoever asks, and every waiter looks at that reading. At most `limit`
    requests wait at once: one more is refused at once (503 with Retry-After)."""

    def __init__(self, queries: Queries, *, poll: float, limit: int) -> None:
        self.queries = queries
        self.poll = poll
        self.limit = limit
        self.waiting = 0
        self._reached = 0
        self._read_at = -math.inf

    async def reach(self, position: int, timeout: float) -> int:
        """The read side's position, once it is `position` or more or `timeout` seconds have passed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        reached = await self._reading(loop)
        if reached >= position:
            return reached
        if self.waiting >= self.limit:
            raise Problem(503, "position-waiters-full", f"{self.waiting} requests are already waiting for the "
                          f"read side (at position {reached}, not yet {position}); try again shortly",
                          field="position", headers={"Retry-After": "1"})
        self.waiting += 1
        try:
            while reached < position and loop.time() < deadline:
                await asyncio.sleep(min(self.poll, max(deadline - loop.time(), 0)))
                reached = await self._reading(loop)
        finally:
            self.waiting -= 1
        return reached

    async def reading(self) -> int:
        """A position the read side has reached: the last reading, or a new one when it is `poll`
        seconds old (at most one a `poll` for all the requests of this process)."""
        return await self._reading(asyncio.get_running_loop())

    async def _reading(self, loop: asyncio.AbstractEventLoop) -> int:
        """The last reading of the read side's position, or a new one when it is `poll` seconds old."""
        if loop.time() - self._read_at >= self.poll:
            self._read_at = loop.time()
            self._reached = await run_in_threadpool(self.queries.position)
        return self._reached
