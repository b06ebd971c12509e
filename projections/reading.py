"""Reading the read models (what the HTTP API and the command line serve), and as-of views computed
from the log on both time axes."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

import psycopg

from api.store.gcpause import paused_gc
from domain.aggregates import FactEvent, Year, appraisal_key_year, ledger_id
from domain.errors import NotFound
from domain.facts import AppraisalFacts
from domain.results import YearFacts, YearResults, assemble, compute_year, explanation, export
from projections.db import ViewDB, open_view_db
from projections.documents import json_value
from projections.events import fold_to
from projections.tables import NAME, set_aside


class ReadModels:
    def __init__(self, db_url: str, db: ViewDB | None = None) -> None:
        self.db = db or open_view_db(db_url)

    def position(self) -> int:
        """The log position the read models have processed (0 before the first run)."""
        try:
            rows = self.db.query("SELECT position FROM rm_tracking WHERE name = ?", [NAME])
        except (sqlite3.OperationalError, psycopg.errors.UndefinedTable) as error:
            # The tables do not exist yet. Nothing else reads as 0: a lost connection must fail, so
            # that it is dropped rather than kept answering 0 (every wait for a position timed out).
            if isinstance(error, sqlite3.OperationalError) and "no such table" not in str(error):
                raise
            return 0
        return int(rows[0]["position"]) if rows else 0

    def set_aside(self) -> list[dict[str, Any]]:
        """The events set aside (rm_setaside: position, aggregate, topic, stage, error, first_seen,
        code), in log order."""
        return set_aside(self.db)

    def _document(self, sql: str, params: list[Any], what: str) -> dict[str, Any]:
        return json_value(self._text(sql, params, what))

    def _text(self, sql: str, params: list[Any], what: str) -> str:
        rows = self.db.query(sql, params)
        if not rows:
            raise NotFound(what.split(" ")[0], f"no {what}", rule="read-model")
        return str(rows[0]["document"])

    def year_status(self, year: int) -> str | None:
        """provisional, published or final; None for a year the read models do not hold."""
        rows = self.db.query("SELECT status FROM rm_year_results WHERE year = ?", [year])
        return str(rows[0]["status"]) if rows else None

    def results(self, year: int) -> dict[str, Any]:
        return json_value(self.results_text(year))

    def results_text(self, year: int) -> str:
        """The year's results as stored (`documents.json_text`)."""
        return self._text("SELECT document FROM rm_year_results WHERE year = ?", [year], f"year {year} results")

    def _current(self, table: str, column: str, where: str, params: list[Any], what: str) -> dict[str, Any]:
        """A current document: its body joined with its placement (see rm_placements in the package's docstring)."""
        rows = self.db.query(f"SELECT d.document, p.{column} AS placement FROM {table} d "
                             f"JOIN rm_placements p ON p.appraisal = d.appraisal WHERE {where}", params)
        if not rows:
            raise NotFound(what.split(" ")[0], f"no {what}", rule="read-model")
        return assemble(json_value(rows[0]["document"]), json_value(rows[0]["placement"]))

    def explanation(self, appraisal: str) -> dict[str, Any]:
        return self._current("rm_explanations", "explanation", "d.appraisal = ?", [appraisal],
                             f"appraisal {appraisal}")

    def breakdown(self, appraisal: str, version: int | None = None) -> dict[str, Any]:
        """The public breakdown: the given publication (version k), or the latest published one,
        or (version 0) the current figures."""
        if version is None:
            rows = self.db.query("SELECT MAX(version) AS v FROM rm_breakdowns WHERE appraisal = ?", [appraisal])
            version = int(rows[0]["v"] or 0) if rows else 0
        what = f"appraisal {appraisal} breakdown version {version}"
        if version == 0:
            return self._current("rm_breakdowns", "breakdown", "d.appraisal = ? AND d.version = 0", [appraisal], what)
        return self._document("SELECT document FROM rm_breakdowns WHERE appraisal = ? AND version = ?",
                              [appraisal, version], what)

    def published_breakdowns(self, appraisals: list[str], version: int) -> dict[str, dict[str, Any]]:
        """Publication `version`'s breakdowns of these appraisals, by appraisal (the 公示's 明细,
        one page of it at a time)."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(appraisals), 500):
            chunk = appraisals[start:start + 500]
            marks = ", ".join("?" * len(chunk))
            for row in self.db.query(f"SELECT appraisal, document FROM rm_breakdowns WHERE version = ? "
                                     f"AND appraisal IN ({marks})", [version, *chunk]):
                found[row["appraisal"]] = json_value(row["document"])  # a page reads a hundred of them
        return found

    def published_versions(self, appraisal: str) -> list[int]:
        rows = self.db.query("SELECT version FROM rm_breakdowns WHERE appraisal = ? AND version > 0 "
                             "ORDER BY version", [appraisal])
        return [int(r["version"]) for r in rows]

    def publications(self, year: int) -> list[dict[str, Any]]:
        """Every publication of the year (公示), oldest first, without their documents."""
        return self.db.query("SELECT year, version, at, recorded_at, digest FROM rm_publications WHERE year = ? "
                             "ORDER BY version", [year])

    def publication(self, year: int, version: int | None = None) -> dict[str, Any]:
        """One publication of the year as published (the latest by default), with its document."""
        if version is None:
            rows = self.db.query("SELECT * FROM rm_publications WHERE year = ? ORDER BY version DESC LIMIT 1", [year])
        else:
            rows = self.db.query("SELECT * FROM rm_publications WHERE year = ? AND version = ?", [year, version])
        if not rows:
            which = "any publication" if version is None else f"publication {version}"
            raise NotFound("publication", f"year {year} has no {which}", rule="publication-known")
        return {**rows[0], "document": json_value(rows[0]["document"])}

    def person_history(self, person: str) -> list[dict[str, Any]]:
        return self.db.query("SELECT * FROM rm_person_history WHERE person = ? ORDER BY year", [person])

    def department_history(self, department: str) -> list[dict[str, Any]]:
        return self.db.query("SELECT * FROM rm_department_history WHERE department = ? ORDER BY year", [department])

    def department_ranking(self, year: int) -> list[dict[str, Any]]:
        return self.db.query("SELECT * FROM rm_department_history WHERE year = ? ORDER BY rank, department", [year])

    def appeals(self, *, year: int | None = None, appraisal: str | None = None, appellant: str | None = None,
                now: datetime | None = None) -> list[dict[str, Any]]:
        """Appeals with their decision due date; open ones past it are `overdue` (at `now`)."""
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        if year is not None:
            where.append("year = ?")
            params.append(year)
        if appraisal is not None:
            where.append("appraisal = ?")
            params.append(appraisal)
        if appellant is not None:
            where.append("appellant = ?")
            params.append(appellant)
        rows = self.db.query(f"SELECT * FROM rm_appeals WHERE {' AND '.join(where)} ORDER BY filed_at, appeal", params)
        moment = now or datetime.now().astimezone()
        for row in rows:
            row["status"] = "decided" if row["outcome"] else (
                "overdue" if datetime.fromisoformat(row["due"]) < moment else "open")
        return rows

    def audit(self, *, aggregate: str | None = None, actor: str | None = None, after: int = 0,
              limit: int = 1000, backdated: bool | None = None) -> list[dict[str, Any]]:
        """rm_audit rows after `after`; only an appraisal's, an actor's, and/or only those back-dated
        (True) or not (False)."""
        where, params = ["position > ?"], [after]  # type: list[str], list[Any]
        if aggregate is not None:
            where.append("aggregate = ?")
            params.append(aggregate)
        if actor is not None:
            where.append("actor = ?")
            params.append(actor)
        if backdated is not None:
            where.append("backdated = ?")
            params.append(int(backdated))
        rows = self.db.query(f"SELECT * FROM rm_audit WHERE {' AND '.join(where)} ORDER BY position LIMIT ?",
                             [*params, limit])
        for row in rows:
            row["detail"] = json_value(row["detail"])
            row["figures"] = json_value(row["figures"])
            row["backdated"] = bool(row["backdated"])
        return rows

    def close(self) -> None:
        self.db.close()


PUBLISHING = (Year.Published, Year.TieBroken)


class YearAt:
    """A year folded and scored as the system showed it at recording time `as_of` and/or as known
    by business time `known_at` (`year_at`): what the year's results at those times and every one
    of its appraisals' explanations at those times are made of, so that one fold serves them all.
    Read-only once made (`document` is made once and shared)."""

    def __init__(self, year: int, as_of: datetime | None, known_at: datetime | None,
                 facts: YearFacts | None, missing: NotFound | None, settled: bool = False) -> None:
        self.year, self.as_of, self.known_at = year, as_of, known_at
        # The log held an event recorded after `as_of`: this is the year of the log before it, the
        # same however the log grows (`fold_to`).
        self.settled = settled
        self.missing = missing  # why there is no year to show at those times
        self.results: YearResults | None = compute_year(facts) if facts is not None else None
        self._appraisals: dict[str, AppraisalFacts] = {a.key: a for a in facts.appraisals} if facts else {}
        self._document: dict[str, Any] | None = None
        self._held: frozenset[int] | None = None  # the ids' integers of its appraisals (`counts`)

    def document(self) -> dict[str, Any]:
        """The year's results export at those times (`results_at`)."""
        if self.results is None:
            assert self.missing is not None
            raise NotFound(self.missing.field, self.missing.message, rule=self.missing.rule)  # (not the kept one)
        if self._document is None:
            self._document = _stamp(export(self.results), self.as_of, self.known_at)
        return self._document

    def counts(self, event: Any) -> bool:
        """Whether `event`, appended to the log this year was folded from, may change it (False: the
        year at these times is the same with it). A fact (`FactEvent`) only adds one fact, at its
        business time, to its appraisal: it changes nothing here if its appraisal is not one this
        year holds (another year's, or one opened after `known_at`), or if it happened after
        `known_at`. A publication (after the first, every fact comes with one: the revision) or a
        tie-break after `known_at` changes nothing known then either. Any other event may (an
        opening, a rename, a scheme, a finalization)."""
        if self.settled:
            return False
        if isinstance(event, FactEvent):
            if self._held is None:
                self._held = frozenset(ledger_id("appraisal", key).int for key in self._appraisals)
            if event.originator_id.int not in self._held:
                return False
        elif not isinstance(event, PUBLISHING):
            return True
        return self.known_at is None or event.at <= self.known_at  # read only at or before its time

    def explanation(self, appraisal: str) -> dict[str, Any]:
        """One appraisal's explanation at those times (`explain_at`): refused for an appraisal
        not open then (or, `known_at`, opened after it)."""
        chosen = self._appraisals.get(appraisal)
        if chosen is None or self.results is None:
            raise NotFound("appraisal", f"no appraisal {appraisal} at that time", rule="appraisal-open")
        return _stamp(explanation(self.results, chosen.subject.id, chosen), self.as_of, self.known_at)


def year_at(ledger: Any, year: int, *, as_of: datetime | None = None, known_at: datetime | None = None,
            scheme: tuple[str, int] | None = None, stop: int | None = None) -> YearAt:
    """The year as the system showed it at recording time `as_of`, and/or as known by business
    time `known_at`, optionally replayed under another scheme version; from the log up to
    position `stop` (None: all of it), folding only what the year reads (seconds for 3,000
    people)."""
    with paused_gc():
        state, settled = fold_to(ledger, stop=stop, recorded_by=as_of, year=year)
        try:
            facts = state.year_facts(year, scheme=scheme, known_at=known_at)
        except NotFound as missing:
            return YearAt(year, as_of, known_at, None, missing, settled)
        return YearAt(year, as_of, known_at, facts, None, settled)


def results_at(ledger: Any, year: int, *, as_of: datetime | None = None, known_at: datetime | None = None,
               scheme: tuple[str, int] | None = None, stop: int | None = None) -> dict[str, Any]:
    """The year's results as the system showed them at recording time `as_of`, and/or as known by
    business time `known_at`, optionally replayed under another scheme version; from the log up
    to position `stop` (None: all of it)."""
    return year_at(ledger, year, as_of=as_of, known_at=known_at, scheme=scheme, stop=stop).document()


def explain_at(ledger: Any, appraisal: str, *, as_of: datetime | None = None,
               known_at: datetime | None = None) -> dict[str, Any]:
    """One appraisal's explanation as `results_at` shows its year: the rank, tier and grade in it
    are the cohort's, so the whole year is folded and scored (seconds for 3,000 people)."""
    return year_at(ledger, appraisal_year(appraisal), as_of=as_of, known_at=known_at).explanation(appraisal)


def appraisal_year(appraisal: str) -> int:
    """The year of an appraisal, from its key (`domain.aggregates.appraisal_key`: year:subject),
    before anything is folded; refused as an appraisal not open for a key that names none."""
    year = appraisal_key_year(appraisal)
    if year is not None:
        return year
    raise NotFound("appraisal", f"no appraisal {appraisal} at that time", rule="appraisal-open")


def _stamp(document: dict[str, Any], as_of: datetime | None, known_at: datetime | None) -> dict[str, Any]:
    if as_of is not None:
        document["as_of"] = as_of.isoformat()
    if known_at is not None:
        document["known_at"] = known_at.isoformat()
    return document


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.utcoffset() is None:
        raise ValueError(f"{text!r} needs an offset, e.g. 2026-01-03T00:00:00+08:00")
    return moment
