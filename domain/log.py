"""The event log folded, in order, into the state the scoring engine reads.

Read models, replays under another scheme version and as-of queries all start here: events are
applied to the aggregates with the aggregates' own apply code (no second copy of it), in log
order, without reading aggregates one by one from the store. As-of views are cuts of the same fold:
- `as shown at` a recording time: the log up to the last event recorded at or before it;
- `as known at` a business time: every fact whose business time (`at`) is at or before it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple
from uuid import UUID

from domain import facts as f
from domain.aggregates import (
    Appraisal,
    LedgerEvent,
    Organisation,
    SchemeCatalogue,
    SchemeVersion,
    Year,
)
from domain.errors import NotFound
from domain.results import YearFacts
from domain.scheme import Scheme, parse_scheme


class Change(NamedTuple):
    """What one event touched: the year to recompute and the appraisal it belongs to. (A tuple:
    one is made for every event of the log, and a tuple is made in C.)"""

    year: int | None
    appraisal: str | None
    kind: str


@dataclass
class LedgerState:
    aggregates: dict[UUID, Any] = field(default_factory=dict)
    years: dict[int, Year] = field(default_factory=dict)
    appraisals: dict[str, Appraisal] = field(default_factory=dict)
    organisation: Organisation | None = None
    position: int = 0
    _schemes: dict[tuple[str, int], Scheme] = field(default_factory=dict)
    # The same aggregates by the integer of their id: a UUID hashes and compares in Python, an int
    # in C, and every event of the log is looked up here.
    _by_int: dict[int, Any] = field(default_factory=dict, repr=False)
    _strings: dict[str, str] = field(default_factory=dict, repr=False)
    _scores: dict[str, Decimal] = field(default_factory=dict, repr=False)
    # Finalized years whose appraisals were let go (`let_go`): year -> appraisal id's integer -> its
    # version then, and the years by the same integers (one int object for both: ten years of a
    # large office keep 31,000 of them).
    closed: dict[int, dict[int, int]] = field(default_factory=dict, repr=False)
    _closed_ids: dict[int, int] = field(default_factory=dict, repr=False)

    def apply(self, event: LedgerEvent, position: int | None = None) -> Change:
        shared = _SHARED_TEXT.get(type(event))
        if shared is not None:
            # A decoded event brings its own copy of every text; the few distinct leaves, periods,
            # raters and roles of a year are kept once (about a third of a folded year's memory).
            values, strings = event.__dict__, self._strings
            for name in shared:
                text = values[name]
                values[name] = strings.setdefault(text, text)
            score = values.get("score")
            if score is not None:  # the same for scores, by their text ("90.0" is not "90")
                values["score"] = self._scores.setdefault(str(score), score)
        key = event.originator_id.int
        current = self._by_int.get(key)
        aggregate = event.mutate(current)  # type: ignore[attr-defined]
        if aggregate is not current:  # created (aggregates are mutated in place afterwards)
            self._by_int[key] = aggregate
            self.aggregates[event.originator_id] = aggregate
            if isinstance(aggregate, Appraisal):
                self.appraisals[aggregate.key] = aggregate
            elif isinstance(aggregate, Year):
                self.years[aggregate.year] = aggregate
            elif isinstance(aggregate, Organisation):
                self.organisation = aggregate
        if position is not None:
            self.position = position
        kind = type(event).__name__
        if isinstance(aggregate, Appraisal):
            return Change(aggregate.facts.year, aggregate.key, kind)
        if isinstance(aggregate, Year):
            return Change(aggregate.year, None, kind)
        return Change(None, None, kind)

    def restore(self, aggregate_id: UUID, aggregate: Any | None) -> None:
        """Put `aggregate` in the place of the one folded under its id (None: none): an aggregate set
        back to an earlier version, folded again (the read models setting an event aside)."""
        self._schemes.clear()
        for kept in (self.aggregates.pop(aggregate_id, None), aggregate):
            if isinstance(kept, Appraisal):
                self.appraisals.pop(kept.key, None)
            elif isinstance(kept, Year):
                self.years.pop(kept.year, None)
            elif isinstance(kept, Organisation):
                self.organisation = None
        self._by_int.pop(aggregate_id.int, None)
        if aggregate is None:
            return
        self._by_int[aggregate_id.int] = aggregate
        self.aggregates[aggregate_id] = aggregate
        if isinstance(aggregate, Appraisal):
            self.appraisals[aggregate.key] = aggregate
        elif isinstance(aggregate, Year):
            self.years[aggregate.year] = aggregate
        elif isinstance(aggregate, Organisation):
            self.organisation = aggregate

    def let_go(self, year_number: int) -> None:
        """Drop the appraisals of a year from the state (a finalized year: nothing records on it
        again). What later years read of it stays: its `Year` with the tiers of its publications,
        the organisation and the schemes. `take_back` puts them in again, folded from the store."""
        year = self.years[year_number]
        versions: dict[int, int] = {}
        for subject in year.subjects:
            appraisal = self.appraisals.pop(f"{year_number}:{subject}", None)
            if appraisal is None:
                continue
            key = appraisal.id.int
            versions[key] = appraisal.version
            del self.aggregates[appraisal.id]
            del self._by_int[key]
            self._closed_ids[key] = year_number
        self.closed[year_number] = versions
        # Of its publications, later years read the tiers (`published_tiers`): each document gives
        # way to them (a year's results export is some megabytes for a large office), the people's
        # ids the texts its subjects already hold.
        shared = self._strings
        year.publications = [Year.tiered(publication, lambda text: shared.setdefault(text, text))
                             for publication in year.publications]

    def passed(self, year_number: int, versions: dict[int, int]) -> None:
        """Appraisals of a finalized year whose events were not folded at all (a restart knew the
        year finalized: see projections/projection.py), with their versions: let go as `let_go`
        leaves them (`take_back` folds them in again)."""
        self.closed.setdefault(year_number, {}).update(versions)
        for key in versions:
            self._closed_ids[key] = year_number

    def closed_year(self, aggregate_id: UUID) -> int | None:
        """The year whose appraisals were let go, if this is one of them."""
        return self._closed_ids.get(aggregate_id.int) if self._closed_ids else None

    def take_back(self, year_number: int, appraisals: Iterable[Appraisal]) -> None:
        """A year let go, in again: its appraisals (folded from the store up to the versions
        `closed` holds)."""
        for appraisal in appraisals:
            self._closed_ids.pop(appraisal.id.int, None)
            self.restore(appraisal.id, appraisal)
        del self.closed[year_number]

    def apply_all(self, events: Iterable[tuple[int, LedgerEvent]]) -> list[Change]:
        return [self.apply(event, position) for position, event in events]

    def scheme(self, scheme_id: str, version: int) -> Scheme:
        key = (scheme_id, version)
        if key not in self._schemes:
            from domain.aggregates import ledger_id

            record = self.aggregates.get(ledger_id("scheme", f"{scheme_id}@{version}"))
            if not isinstance(record, SchemeVersion):
                raise NotFound("scheme", f"scheme {scheme_id}@{version} is not published", rule="scheme-published")
            self._schemes[key] = parse_scheme(record.document, recorded=True)
        return self._schemes[key]

    def scheme_versions(self) -> dict[str, dict[int, str]]:
        from domain.aggregates import ledger_id

        catalogue = self.aggregates.get(ledger_id("schemes", "catalogue"))
        return catalogue.versions if isinstance(catalogue, SchemeCatalogue) else {}

    def year_facts(self, year_number: int, *, scheme: tuple[str, int] | None = None,
                   known_at: datetime | None = None) -> YearFacts:
        """What the engine needs to score a year, optionally under another scheme version and
        optionally as known at a business time."""
        year = self.years.get(year_number)
        if year is None:
            raise NotFound("year", f"no appraisal is open for {year_number}", rule="year-open")
        tie_breaks, publications, binding = year.tie_breaks, year.publications, (year.scheme_id, year.scheme_version)
        adoptions = year.adoptions
        if known_at is not None:
            tie_breaks = [t for t in tie_breaks if t["at"] <= known_at]
            publications = [p for p in publications if p["at"] <= known_at]
            binding = binding_at(year, known_at)
            adoptions = [a for a in adoptions if a["at"] <= known_at]
        appraisals = []
        for subject in year.subjects:
            key = f"{year_number}:{subject}"
            appraisal = self.appraisals[key]
            if known_at is None:
                appraisals.append(appraisal.facts)
            elif appraisal.opened_at <= known_at:
                appraisals.append(known_by(appraisal.facts, known_at))
        status = year.status
        if known_at is not None:
            status = "final" if year.finalized and year.finalized["at"] <= known_at else (
                "published" if publications else "provisional")
        return YearFacts(
            year=year_number, scheme=self.scheme(*(scheme or binding)), appraisals=appraisals,
            tie_breaks=tie_breaks, history=self.published_tiers(year_number, known_at),
            status=status if scheme is None else "replay",
            adoptions=list(adoptions) if scheme is None else [],  # a replay is beside the year's history
        )

    def published_tiers(self, year: int, known_at: datetime | None = None) -> dict[int, dict[str, int | None]]:
        """Tiers in the latest publication of each of the two years before (§7 consequences)."""
        history: dict[int, dict[str, int | None]] = {}
        for back in (1, 2):
            earlier = self.years.get(year - back)
            if earlier is None:
                continue
            publications = [p for p in earlier.publications if known_at is None or p["at"] <= known_at]
            if publications:
                history[year - back] = Year.tiers(publications[-1])
        return history

    def copy_for_replay(self) -> LedgerState:
        return copy.deepcopy(self)


_SHARED_TEXT: dict[type, tuple[str, ...]] = {
    Appraisal.RatingRecorded: ("actor", "leaf", "period", "rater", "rater_role"),
    Appraisal.MeasurementRecorded: ("actor", "input"),
    Appraisal.OccurrenceRecorded: ("actor", "item"),
    Appraisal.SurveyRecorded: ("actor", "input"),
    Year.SubjectEnrolled: ("actor", "subject", "kind"),  # the same subjects every year
}


def binding_at(year: Year, moment: datetime) -> tuple[str, int]:
    """The scheme version a year used at a business time (adoptions rebind it)."""
    binding = None
    for adoption in year.adoptions:
        if adoption["at"] <= moment:
            scheme_id, _, version = adoption["to"].partition("@")
            binding = (scheme_id, int(version))
    if binding is not None:
        return binding
    if year.adoptions:
        scheme_id, _, version = year.adoptions[0]["from"].partition("@")
        return scheme_id, int(version)
    return year.scheme_id, year.scheme_version


def known_by(facts: f.AppraisalFacts, moment: datetime) -> f.AppraisalFacts:
    """The facts of an appraisal whose business time is at or before `moment`."""
    kept = f.AppraisalFacts(key=facts.key, year=facts.year, subject=replace(facts.subject),
                            opened_ref=facts.opened_ref)
    for fact in sorted(facts.items.values(), key=_log_order):
        if fact.at <= moment:
            kept.add(fact)
    return kept


def _log_order(fact: f.Fact) -> int:
    return int(fact.ref.rpartition("#")[2])
