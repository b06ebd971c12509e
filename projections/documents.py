"""The read models' rows and documents, made from the folded log: a year's results, each
appraisal's explanation (made by the domain's one builder, domain/results.py) and its public
breakdown, placements, histories, appeals, publications and the audit trail (`Renderer`, `Rows`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson

from domain import facts as f
from domain.aggregates import Appraisal, FactEvent, LedgerEvent, Year
from domain.log import Change, LedgerState
from domain.numbers import shown
from domain.results import (
    YearFacts,
    YearResults,
    assemble,
    explanation_body,
    explanation_placement,
    export,
    grade_year,
    score_year,
)
from domain.scheme import ProportionalBase, Scheme
from domain.scoring import SubjectScore, score_department, score_person
from domain.times import backdated
from projections.db import ViewDB

DECISION_DUE_DAYS = 30  # SCORING.md §8: a decision is due within 30 days of filing
# A rater group's mean is shown to staff only for groups of at least this many raters (README,
# "Decisions where the specification is silent"): a smaller group's mean is too close to a name.
MIN_RATERS_SHOWN = 3


def _json_std(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def json_text(value: Any) -> str:
    """The canonical text of a document: `json.dumps(sort_keys, compact, ensure_ascii=False,
    default=str)`, byte for byte, written by orjson (several times faster). orjson refuses what it
    would write differently (keys that are not strings, integers beyond 64 bits, lone surrogates):
    those go to `json`. Floats are the one thing both write but differently (`1e-07`): documents
    rendered here hold none (figures are exact text); event details of events that may hold one go
    through `_json_std` (see `_detail_json`)."""
    try:
        return orjson.dumps(value, default=str, option=_ORJSON_OPTIONS).decode()
    except TypeError:
        return _json_std(value)


_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19  # 19 digits in a row: perhaps an integer beyond 64 bits


def json_value(text: str) -> Any:
    """The value of a stored text, as `json.loads` gives it, read by orjson (about twice as fast
    on the documents) when that gives the same: orjson reads an integer beyond 64 bits as a float,
    and refuses `NaN`, infinities and lone surrogates. A text with 19 digits in a row (found at C
    speed: each digit made a 0, then the run looked for) or that orjson refuses goes to `json`."""
    if _LONG_NUMBER not in text.encode(errors="surrogatepass").translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- what one event recorded, and which figures it feeds ------------------------------------------

_BASE_FIELDS = {"originator_id", "originator_version", "timestamp", "actor", "at", "command_id",
                "originator_topic"}


def event_detail(event: LedgerEvent) -> dict[str, Any]:
    return {key: value for key, value in vars(event).items() if key not in _BASE_FIELDS}


def _detail_json(event: LedgerEvent) -> str:
    """`event_detail` as JSON. A fact event's fields are text, exact numbers, integers and times,
    which orjson writes as `json` does; any other event (a scheme document may hold floats) is
    written by `json` itself."""
    if isinstance(event, FactEvent):
        return json_text(event_detail(event))
    return _json_std(event_detail(event))


def aggregate_name(aggregate: Any) -> str:
    if isinstance(aggregate, Appraisal):
        return aggregate.key
    if isinstance(aggregate, Year):
        return f"year:{aggregate.year}"
    scheme = getattr(aggregate, "scheme_id", None)
    if scheme is not None and hasattr(aggregate, "scheme_version"):
        return f"scheme:{scheme}@{aggregate.scheme_version}"
    return type(aggregate).__name__.lower()


def figures_fed(event: LedgerEvent, state: LedgerState, appraisal: Appraisal | None) -> list[str]:
    """The trace figures an event feeds, by the scheme the year uses (static: no rescoring)."""
    if isinstance(event, Year.Event) and not isinstance(event, Year.SubjectEnrolled):
        return ["rank", "tier", "grade"]
    if appraisal is None or isinstance(event, Appraisal.Opened):
        return []
    year = state.years.get(appraisal.facts.year)
    if year is None:
        return []
    scheme = state.scheme(year.scheme_id, year.scheme_version)
    tree = "department" if appraisal.facts.kind == "department" else "individual"
    tail = [tree] + (["total"] if tree == "individual" else [])
    if isinstance(event, Appraisal.RatingRecorded):
        return [f"period:{event.leaf}:{event.period}", f"base:{event.leaf}", f"node:{event.leaf}", *tail]
    item: Any = event
    if isinstance(event, Appraisal.AppealDecided):  # a decision feeds what its appeal's item feeds
        appeal = appraisal.facts.appeals.get(event.appeal)
        item = appraisal.facts.items.get(appeal.target) if appeal else None
    if isinstance(item, Appraisal.MeasurementRecorded | f.Measurement | Appraisal.SurveyRecorded | f.SurveyRound):
        survey = [f"survey:{item.input}"] if isinstance(item, Appraisal.SurveyRecorded | f.SurveyRound) else []
        return [*survey, *_input_figures(scheme, tree, item.input), *tail]
    if isinstance(item, Appraisal.OccurrenceRecorded | f.Occurrence):
        return _input_figures(scheme, tree, item.item) + tail
    if isinstance(item, Appraisal.AdjustmentApplied | f.AdjustmentFact):
        return [f"adjustment:{item.command_id}", "total"]
    if isinstance(item, Appraisal.VetoImposed | f.VetoFact):
        return [f"veto:{item.command_id}", "tier", "grade"]
    return []


def _input_figures(scheme: Scheme, tree: str, name: str) -> list[str]:
    keys: list[str] = []
    for leaf in scheme.leaves(tree):
        fed = [f"rule:{rule.id}" for rule in leaf.rules
               if rule.input == name or getattr(rule, "total", None) == name]
        if isinstance(leaf.base, ProportionalBase) and leaf.base.input == name:
            fed.insert(0, f"base:{leaf.id}")
        if fed:
            keys += [*fed, f"node:{leaf.id}"]
    return keys


# --- the public breakdown (公示) -----------------------------------------------------------------


def public_breakdown(doc: dict[str, Any]) -> dict[str, Any]:
    """An explanation as staff may see it (the 公示 breakdown; the one anonymity policy of the
    service, also behind every staff view of the HTTP API):
    - no rater identity and no individual score: rating events and their references are removed;
    - a rater group's mean is shown only when the group has at least `MIN_RATERS_SHOWN` (3)
      raters; a smaller group shows its mean as withheld (`null`) beside its count (`.raters`).
      The others' combined score (`others`) is withheld as soon as one group is, since with the
      composite it would give the withheld mean back;
    - the period composite, R and the leaf scores stay: they are the score's ingredients;
    - the itemised bonus and deduction list (加分/扣分明细) lists every counted item, measurement,
      deduction and veto with its date and evidence, struck ones marked.
    Admins and inspectors read the full explanation instead."""
    rating_refs = _rating_refs(doc["events"])
    return {key: doc[key] for key in ("appraisal", "year", "subject", "scheme", "status", "summary") if key in doc} | {
        "figures": [_public_figure(figure, rating_refs) for figure in doc["figures"]],
        "items": _public_items(doc["events"], doc["struck"]), "appeals": _public_appeals(doc["events"]),
        "struck": _public_struck(doc["struck"], rating_refs),
    }


def public_placement(placement: dict[str, Any], rating_refs: set[str]) -> dict[str, Any]:
    """The placement of a public breakdown (`public_breakdown` of an explanation whose placement is
    `placement`: see domain.results.assemble): the grading figures as staff see them, the status
    and the summary."""
    return {"figures": [_public_figure(figure, rating_refs) for figure in placement["figures"]],
            "status": placement["status"], "summary": placement["summary"]}


def rating_refs(facts: f.AppraisalFacts) -> set[str]:
    """The references of an appraisal's ratings (what its public breakdown leaves out)."""
    return {fact.ref for fact in facts.items.values() if type(fact) is f.Rating}


def _rating_refs(events: list[dict[str, Any]]) -> set[str]:
    return {e["ref"] for e in events if e["kind"] == "rating"}


def _public_struck(struck: list[dict[str, Any]], rating_refs: set[str]) -> list[dict[str, Any]]:
    return [s for s in struck if s["ref"] not in rating_refs]


def _public_figure(figure: dict[str, Any], rating_refs: set[str]) -> dict[str, Any]:
    figure = _withhold_small_groups(dict(figure))
    if "events" in figure:
        kept = [ref for ref in figure["events"] if ref not in rating_refs]
        figure["events"] = kept
        if not kept:
            del figure["events"]
    if "struck" in figure:
        figure["struck"] = [s for s in figure["struck"] if s["ref"] not in rating_refs]
        if not figure["struck"]:
            del figure["struck"]
    return figure


def _public_appeals(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"ref": e["ref"], "kind": e["kind"], "at": e["at"],
             **({"target": e["target"]} if e["kind"] == "appeal" else
                {"appeal": e["appeal"], "outcome": e["outcome"], "reason": e["reason"]})}
            for e in events if e["kind"] in ("appeal", "decision")]


def _public_items(events: list[dict[str, Any]], doc_struck: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The itemised bonus and deduction list: every counted item, measurement, deduction and veto."""
    struck = {s["ref"]: s["why"] for s in doc_struck}
    items = []
    for event in events:
        if event["kind"] not in ("measurement", "occurrence", "survey", "adjustment", "veto"):
            continue
        item = {"ref": event["ref"], "kind": event["kind"], "at": event["at"],
                "what": event.get("item") or event.get("input") or event.get("reason"),
                "evidence": (event.get("evidence") or "")[:200]}
        if "count" in event:
            item["count"] = event["count"]
        if "value" in event:
            item["value"] = event["value"]
        if "counts" in event:  # a survey round: responses per option, never a respondent
            item["counts"] = event["counts"]
        if event["ref"] in struck:
            item["struck"] = struck[event["ref"]]
        items.append(item)
    return items


def _withhold_small_groups(figure: dict[str, Any]) -> dict[str, Any]:
    """A period figure with the means of groups under `MIN_RATERS_SHOWN` raters set to null."""
    inputs = figure.get("inputs")
    if not figure["key"].startswith("period:") or not inputs:
        return figure
    withheld = [name for name in inputs if name.endswith(".mean")
                and int(inputs.get(name[: -len(".mean")] + ".raters", 0)) < MIN_RATERS_SHOWN]
    if not withheld:
        return figure
    if "others" in inputs:
        withheld.append("others")
    figure["inputs"] = {name: None if name in withheld else value for name, value in inputs.items()}
    figure["withheld"] = sorted(withheld)
    figure["notes"] = [*figure.get("notes", []),
                       f"means of rater groups under {MIN_RATERS_SHOWN} raters withheld"]
    return figure


# --- rendering a year into rows -----------------------------------------------------------------


@dataclass
class Rows:
    results: list[tuple[Any, ...]] = field(default_factory=list)
    explanations: list[tuple[Any, ...]] = field(default_factory=list)
    breakdowns: list[tuple[Any, ...]] = field(default_factory=list)
    placements: list[tuple[Any, ...]] = field(default_factory=list)
    people: list[tuple[Any, ...]] = field(default_factory=list)
    departments: list[tuple[Any, ...]] = field(default_factory=list)
    appeals: list[tuple[Any, ...]] = field(default_factory=list)
    audit: list[tuple[Any, ...]] = field(default_factory=list)
    publications: list[tuple[Any, ...]] = field(default_factory=list)
    setaside: list[tuple[Any, ...]] = field(default_factory=list)

    def extend(self, other: Rows) -> None:
        for name in self.__dataclass_fields__:
            getattr(self, name).extend(getattr(other, name))

    def take_documents(self) -> Rows:
        """The per-appraisal documents gathered so far, moved out (see `Renderer.spill`)."""
        taken = Rows(explanations=self.explanations, breakdowns=self.breakdowns, placements=self.placements,
                     appeals=self.appeals)
        self.explanations, self.breakdowns, self.placements, self.appeals = [], [], [], []
        return taken


# Year events read by grading alone, not by scoring (`Renderer.note`).
_GRADING_ONLY = frozenset({"Published", "TieBroken", "Finalized"})


class Renderer:
    """Turns the folded state into rows; remembers digests so that unchanged rows are not rewritten.

    Incremental: each year's scores before grading are kept and only the appraisals whose facts
    changed (and the people of a department scored again) are scored again; the cohort is graded
    again from them every time (any change can move every rank, tier and grade). An explanation is
    made by the domain's one builder (domain/results.py) in its two parts: its body
    (`explanation_body`: rm_explanations, and its public breakdown in rm_breakdowns), made again
    only when the appraisal is scored again, and its placement (`explanation_placement`:
    rm_placements), made again when its grading moves. Put together (`assemble`) they are the
    document `explanation(...)` makes, and `public_breakdown` of it
    (tests/builders/read_models.py)."""

    def __init__(self) -> None:
        self.digests: dict[tuple[Any, ...], str] = {}
        self.signatures: dict[str, str] = {}  # appraisal -> (the digest of) what its explanation depends on beyond its facts
        self._rating_figures: dict[tuple[Any, ...], str] = {}
        self._scores: dict[int, tuple[Scheme, dict[str, SubjectScore]]] = {}  # year -> scores before grading
        self._stale: dict[int, set[str]] = {}  # year -> appraisals whose facts changed since they were scored
        self._stale_years: set[int] = set()  # years with a year-wide change since they were scored
        self._made: dict[str, SubjectScore] = {}  # appraisal -> the score its body was last made from
        self._rows: dict[tuple[Any, ...], tuple[Any, ...]] = {}  # the history rows last written
        # A rebuild's final render hands its documents to its writer every `SPILL_EVERY` of them
        # as it goes, rather than holding every explanation of the year until the end.
        self.spill: Callable[[Rows], None] | None = None
        # Appraisals set aside at an event they cannot be scored or rendered with: their facts
        # before it, scored in place of their folded facts (see the module's docstring).
        self.frozen: dict[str, f.AppraisalFacts] = {}

    def note(self, change: Change) -> None:
        """Every event applied to the state goes through here: what it changed is scored again. A
        score is a function of the scheme, the appraisal's facts and its department's score
        (`score_year`): a publication, a tie-break or a finalization changes none (they are read by
        grading, which runs every render), so they leave the year's scores as they are."""
        if change.year is None:
            return
        if change.appraisal is None:
            if change.kind not in _GRADING_ONLY:
                self._stale_years.add(change.year)
        else:
            self._stale.setdefault(change.year, set()).add(change.appraisal)

    def load_digests(self, db: ViewDB, skip: set[int] | frozenset[int] = frozenset()) -> None:
        """The digests of the documents in the tables, under the keys `_changed` gives them: after
        a restart a document rendered again the same (the same digest, so the same text) is not
        written again, nor held until the write (the first render after a restart renders every
        appraisal of the year). Not those of the years in `skip` (let go: see projections/projection.py)."""
        queries: list[tuple[str, Callable[[dict[str, Any]], tuple[Any, ...]]]] = [
            ("SELECT year, digest FROM rm_year_results", lambda row: ("results", row["year"])),
            ("SELECT year, appraisal, digest FROM rm_explanations",
             lambda row: ("explanation", row["appraisal"], None)),
            ("SELECT year, appraisal, version, digest FROM rm_breakdowns",
             lambda row: ("breakdown", row["appraisal"], row["version"])),
            ("SELECT year, appraisal, digest FROM rm_placements", lambda row: ("placement", row["appraisal"])),
        ]
        # The years let go are left out by the query: a log of many years has many rows.
        where = f" WHERE year NOT IN ({', '.join('?' * len(skip))})" if skip else ""
        for query, key in queries:
            for row in db.query(query + where, sorted(skip)):
                self.digests[key(row)] = row["digest"]

    def _changed(self, key: tuple[Any, ...], text: str) -> str | None:
        digest = _digest(text)
        if self.digests.get(key) == digest:
            return None
        self.digests[key] = digest
        return digest

    def _results(self, facts: YearFacts) -> YearResults:
        """The year's results, as `compute_year(facts)`, scoring again only what changed."""
        year = facts.year
        known: dict[str, SubjectScore] = {}
        kept = self._scores.get(year)
        if kept is not None and kept[0] is facts.scheme and year not in self._stale_years:
            known = kept[1]
        stale = self._stale.pop(year, set())
        self._stale_years.discard(year)
        departments, people = score_year(facts, known, stale)
        self._scores[year] = (facts.scheme, {score.key: score for score in (*departments.values(), *people.values())})
        return grade_year(facts, departments, people)

    def year(self, state: LedgerState, year_number: int, rows: Rows, publication: int | None = None,
             changed: set[str] | None = None) -> None:
        """Render a year. With `changed` (the appraisals whose facts changed since the last render
        of this year, and nothing year-wide changed), only those subjects and the subjects whose
        placement, department score or status moved get their explanations rendered again."""
        facts = state.year_facts(year_number)
        if self.frozen:
            facts.appraisals = [self.frozen.get(a.key, a) for a in facts.appraisals]
        results = self._results(facts)
        document = self._results_row(results, rows)
        self._subjects(state, results, document, rows, publication, changed)
        self._history(results, document, rows)

    def forget(self, year_number: int) -> None:
        """Drop what is kept of a year whose render failed half way (its scores, texts, digests,
        history rows): it is scored and rendered whole next time, and every row written again."""
        prefix = f"{year_number}:"
        self._scores.pop(year_number, None)
        self._stale.pop(year_number, None)
        self._stale_years.discard(year_number)
        for kept in (self.signatures, self._made):
            for key in [k for k in kept if k.startswith(prefix)]:
                del kept[key]
        self.digests = {key: digest for key, digest in self.digests.items()
                        if not (key[1] == year_number or str(key[1]).startswith(prefix))}
        self._rows = {key: row for key, row in self._rows.items() if key[2] != year_number}
        self._rating_figures = {key: text for key, text in self._rating_figures.items() if key[0] != year_number}

    def _results_row(self, results: YearResults, rows: Rows) -> dict[str, Any]:
        document = export(results)
        text = json_text(document)
        digest = self._changed(("results", results.year), text)
        if digest:
            rows.results.append(storable((results.year, f"{document['scheme']['id']}@{document['scheme']['version']}",
                                           document["status"], text, digest)))
        return document

    def _history(self, results: YearResults, document: dict[str, Any], rows: Rows) -> None:
        year_number = results.year
        for person in document["people"]:
            self._row(rows.people, ("person", person["id"], year_number), storable((
                person["id"], year_number, results.scheme.ref, document["status"], person["department"],
                person["position"], person["total"], person["individual_score"], person["rank"], person["tier"],
                person["grade"], person["coefficient"], int(person["vetoed"]), int(person["incomplete"])),
                nullable=(4, 5, 8, 9, 10, 11)))
        for dep in document["departments"]:
            cut = next((c["posts"] for c in dep["consequences"] if c["type"] == "staffing_cut"), None)
            self._row(rows.departments, ("department", dep["id"], year_number), storable((
                dep["id"], year_number, results.scheme.ref, document["status"], dep["score"], dep["rank"], cut,
                int(dep["incomplete"])), nullable=(6,)))

    def _row(self, into: list[tuple[Any, ...]], key: tuple[Any, ...], row: tuple[Any, ...]) -> None:
        """A history row, unless the same row was written last time."""
        if self._rows.get(key) != row:
            self._rows[key] = row
            into.append(row)

    def _subjects(self, state: LedgerState, results: YearResults, document: dict[str, Any], rows: Rows,
                  publication: int | None, changed: set[str] | None) -> None:
        year = results.year
        entries = {entry["id"]: entry for entry in document["departments"] + document["people"]}
        ties = {member: tie["people"] for tie in document["unresolved_ties"] for member in tie["people"]}
        # Grading parameters every placement shows: the cohort's size and its vetoed count.
        cohort = [len(document["people"]), sum(1 for p in document["people"] if p["vetoed"])]
        scores = self._scores[year][1]
        for subject_id in [*results.departments, *results.people]:
            key = f"{year}:{subject_id}"
            placement = results.placements.get(subject_id)
            # (its digest: with an unresolved tie of the whole cohort, early in a year, the text
            # names every member, for each of them)
            signature = _digest(json_text([document["status"], cohort, entries[subject_id], ties.get(subject_id),
                                           placement.position if placement else None]))
            score = scores[key]
            if (changed is not None and key not in changed and self.signatures.get(key) == signature
                    and self._made.get(key) is score):
                # Nothing its explanation shows has moved: not scored again (its facts and its
                # department's exact score are as they were), and placed as it was.
                continue
            self.signatures[key] = signature
            frozen = self.frozen.get(key)
            facts = frozen if frozen is not None else state.appraisals[key].facts
            rows.appeals += appeal_rows(facts)
            public = None  # the breakdown's body, when made here (a publication's breakdown starts from it)
            if self._made.get(key) is not score:
                self._made[key] = score
                body = explanation_body(score, facts)
                public = public_breakdown(body)
                self._document_rows(key, year, subject_id, json_text(body), json_text(public), rows)
            placed = explanation_placement(results, subject_id)
            public_placed = public_placement(placed, rating_refs(facts))
            self._placement_row(key, year, placed, public_placed, rows)
            if publication:
                if public is None:
                    public = public_breakdown(explanation_body(score, facts))
                self._published_row(key, publication, year, subject_id, assemble(public, public_placed), rows)
            self._spill_documents(rows)

    def _document_rows(self, key: str, year: int, subject_id: str, explanation: str, breakdown: str,
                       rows: Rows) -> None:
        """An appraisal's explanation and breakdown (version 0) without what grading decides,
        unless written the same last time."""
        storable((key, subject_id))
        digest = self._changed(("explanation", key, None), explanation)
        if digest:
            rows.explanations.append((key, year, subject_id, explanation, digest))
        digest = self._changed(("breakdown", key, 0), breakdown)
        if digest:
            rows.breakdowns.append((key, 0, year, subject_id, breakdown, digest))

    def _published_row(self, key: str, publication: int, year: int, subject_id: str,
                       breakdown: dict[str, Any], rows: Rows) -> None:
        """The breakdown as publication number `publication` shows it: whole."""
        full = json_text(breakdown)
        digest = self._changed(("breakdown", key, publication), full)
        if digest:
            rows.breakdowns.append((key, publication, year, subject_id, full, digest))

    def _placement_row(self, key: str, year: int, placed: dict[str, Any], public: dict[str, Any],
                       rows: Rows) -> None:
        """What grading decides in an explanation and in its public breakdown, unless the same as
        written last time."""
        explanation, breakdown = json_text(placed), json_text(public)
        digest = self._changed(("placement", key), f"{explanation}\n{breakdown}")
        if digest:
            rows.placements.append((key, year, explanation, breakdown, digest))

    def _spill_documents(self, rows: Rows) -> None:
        if self.spill is not None and (len(rows.explanations) + len(rows.breakdowns)
                                       + len(rows.placements)) >= SPILL_EVERY:
            self.spill(rows.take_documents())

    def audit(self, position: int, event: LedgerEvent, state: LedgerState, change: Change, rows: Rows) -> None:
        appraisal = state.appraisals.get(change.appraisal) if change.appraisal else None
        if appraisal is not None:
            name = appraisal.key
        else:
            name = aggregate_name(state.aggregates[event.originator_id])
        command_id, actor = event.command_id, event.actor
        if type(command_id) is not str or type(actor) is not str or "\x00" in command_id or "\x00" in actor:
            storable((name, command_id, actor))  # raises: the event is set aside
        rows.audit.append((position, name, event.originator_version, change.kind,
                           command_id, actor, event.at.isoformat(), event.timestamp.isoformat(),
                           int(backdated(event.at, event.timestamp)), _detail_json(event),
                           self._figures_json(event, state, appraisal)))

    def _figures_json(self, event: LedgerEvent, state: LedgerState, appraisal: Appraisal | None) -> str:
        """`figures_fed` as JSON; a rating's (by far the most events) is the same for every rating
        of a leaf and period in a year and tree, so its text is made once."""
        if type(event) is not Appraisal.RatingRecorded or appraisal is None:
            return json_text(figures_fed(event, state, appraisal))
        facts = appraisal.facts
        year = state.years.get(facts.year)
        if year is None:
            return "[]"
        key = (facts.year, year.scheme_id, year.scheme_version, facts.kind == "department",
               event.leaf, event.period)  # type: ignore[attr-defined]
        text = self._rating_figures.get(key)
        if text is None:
            text = self._rating_figures[key] = json_text(figures_fed(event, state, appraisal))
        return text


def publication_row(year: Year) -> tuple[Any, ...]:
    """The year's latest publication (the one just recorded) as a row of rm_publications."""
    publication = year.publications[-1]
    return storable((year.year, len(year.publications), publication["at"].isoformat(),
                      publication["recorded_at"].isoformat(), publication["digest"], json_text(publication["document"])))


def appeal_rows(facts: f.AppraisalFacts) -> list[tuple[Any, ...]]:
    rows = []
    for appeal in facts.appeals.values():
        target = facts.items.get(appeal.target)
        decision = facts.decisions.get(appeal.command_id)
        due = appeal.at + timedelta(days=DECISION_DUE_DAYS)
        rows.append(storable((appeal.command_id, facts.key, facts.year, appeal.actor, appeal.target,
                               f.FACT_KINDS[type(target)] if target else "unknown", appeal.grounds,
                               appeal.at.isoformat(), due.isoformat(), decision.at.isoformat() if decision else None,
                               decision.outcome if decision else None, decision.actor if decision else None,
                               decision.reason if decision else None), nullable=(9, 10, 11, 12)))
    return rows


_INT4 = 2**31  # PostgreSQL's INTEGER


def storable(row: tuple[Any, ...], nullable: tuple[int, ...] = ()) -> tuple[Any, ...]:
    """The row, if both stores can keep it in the rm tables: no NUL character in a text (PostgreSQL
    refuses one; SQLite would keep it, but the tables of both stay the same), an integer within
    PostgreSQL's INTEGER, and a value where the column requires one (those not at `nullable`).
    Else it raises, as a fold or a render that fails: what feeds the row is set aside, where a
    refused write would stop the read side at every attempt."""
    for index, value in enumerate(row):
        kind = type(value)
        if value is None:
            if index not in nullable:
                raise ValueError(f"value {index + 1} of the row is missing")
        elif kind is str:
            if "\x00" in value:
                raise ValueError(f"value {index + 1} of the row holds a NUL character, which cannot be stored")
        elif kind is int and not -_INT4 <= value < _INT4:
            raise ValueError(f"value {index + 1} of the row is an integer out of range")
    return row


SPILL_EVERY = 300  # documents (explanations, breakdowns, placements) per batch a rebuild's final render spills


def render_error(scheme: Scheme, facts: f.AppraisalFacts, department: SubjectScore | None) -> Exception | None:
    """What scoring and rendering an appraisal alone raises, if anything."""
    try:
        rendered(scheme, facts, department, None)
    except Exception as error:
        return error
    return None


def rendered(scheme: Scheme, facts: f.AppraisalFacts, department: SubjectScore | None,
              earlier: SubjectScore | None) -> SubjectScore:
    """An appraisal scored and rendered alone (raises what that raises); with `earlier` (the texts
    of the same facts before the last ones were added), scored and rendered as the renderer does,
    again only in what they changed."""
    score = earlier
    if facts.kind == "department":
        score = score_department(scheme, facts, earlier=score)
    else:
        score = score_person(scheme, facts, department, earlier=score)
    body = explanation_body(score, facts)
    json_text(body)
    json_text(public_breakdown(body))
    storable((facts.key, facts.subject.id))
    appeal_rows(facts)
    for value in (score.score, score.total, score.department_score, score.adjustments, *score.leaves.values()):
        if value is not None:
            shown(value)
    return score
