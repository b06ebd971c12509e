"""The read models, fed by the event log (issue: read models).

One projection writes them all from one fold of the log (domain/log.py), because every one of them
is a view of the same scored year:
- `rm_year_results`: the year's results export (COMMANDS.md), as served to those who see it all;
- `rm_explanations`: each appraisal's full explanation (inspectors, admins, the subject);
- `rm_breakdowns`: each appraisal's public breakdown (公示): rater groups as averages only, the
  itemised bonus and deduction list; version 0 is the current one, version k the k-th publication;
- `rm_placements`: what grading decides in the current explanation and breakdown (the rank, tier
  and grade figures, the summary, the status). Any change can move every placement of a year, so
  these small parts are kept apart: `rm_explanations` and version 0 of `rm_breakdowns` hold the
  rest (written again only when the appraisal's own score changes), and a reader joins the two
  (`assemble`: the same document, key for key, as a full computation; nothing is recomputed);
- `rm_person_history`, `rm_department_history`: per subject and year (score, rank, tier, grade,
  scheme version, status) — the histories and the department ranking;
- `rm_audit`: every event in log order with actor, business time, recording time, whether it is
  back-dated (domain/times.py), what it recorded and the figures it feeds; by appraisal, by actor
  and back-dated;
- `rm_publications`: every publication of a year (公示), version by version, as published.

Exactly once: the rows of a batch of events and the tracking position are written in one
transaction; after a restart the fold is rebuilt up to the tracking position (nothing written) and
processing resumes after it. A rebuild writes fresh `_next` tables from zero in large batches and
swaps them in with the tracking row in one transaction, so readers never see a gap. A batch moves
the tracking row only from where its projection left it: a worker that finds it moved (a rebuild
swapped in tables read up to another position) rolls back and restarts from the row.

An event the read side cannot process never stops it (COMMANDS.md § Bad input: a store written by
an earlier version may hold one). It is **set aside**, with what it feeds, and everything else goes on:
- an event that cannot be decoded, folded (its aggregate's apply code raises) or audited: its
  aggregate (an appraisal, a year, ...) is set back to the version before it (folded again from the
  store) and none of its later events is folded or audited: they would be folded on top of a state
  that lacks it. The figures shown are those of the log without them;
- an appraisal that cannot be scored or rendered: the first of its events after which it cannot
  (found by folding its events one at a time, scoring and rendering it alone after each) is set
  aside; the appraisal is scored from its facts before that event, which are kept apart (its later
  events are still folded and audited), so its rows stay what they last were and the year is graded
  with them;
- a year that still cannot be rendered with no appraisal to blame (grading, the export): the year
  is no longer rendered, its rows stay as last written (a rebuild copies them from the tables it
  replaces), its events are still folded and audited, and the entry names the last position folded
  when it failed.
A row that a store would refuse (a NUL character in a text, which PostgreSQL cannot keep, a
missing value, an integer beyond INTEGER) counts as an event that cannot be audited or rendered:
a refused write would fail the batch at every attempt (`_storable`; both stores alike, so that
their tables stay the same).
Each one is a row of `rm_setaside` (the position, the aggregate, the event's topic, the stage:
decode, fold or render, the error, when first seen, the code's version), a warning in the log when
met, and a notice on `/health` and on the admin and inspector pages. The log keeps every event: a
projection that starts (a restart, `appraisal project`, `serve`) and finds set-aside rows rebuilds
the read models from zero, so that a fixed version takes the events up (the same version sets
them aside again, deterministically, with their first-seen time kept).
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from importlib import metadata
from typing import Any
from uuid import UUID

import orjson
import structlog
from eventsourcing.utils import get_topic

from api.store.gcpause import paused_gc
from domain import facts as f
from domain.aggregates import Appraisal, FactEvent, LedgerEvent, Year
from domain.log import Change, LedgerState
from domain.numbers import shown
from domain.results import (
    YearFacts,
    YearResults,
    adoption_lines,
    explanation_subject,
    explanation_summary,
    export,
    fact_line,
    grade_year,
    score_year,
)
from domain.scheme import ProportionalBase, Scheme
from domain.scoring import SubjectScore, score_department, score_person
from domain.times import backdated
from domain.trace import Figure
from projections.db import ViewDB, open_view_db
from projections.log import Undecodable, read_events

log = structlog.get_logger("projections")

NAME = "readmodels"
VERSION = 5  # of the tables' layout: a projection finding another version rebuilds them from zero
TABLES = ("rm_year_results", "rm_explanations", "rm_breakdowns", "rm_placements", "rm_person_history",
          "rm_department_history", "rm_appeals", "rm_audit", "rm_publications", "rm_setaside")
DECISION_DUE_DAYS = 30  # SCORING.md §8: a decision is due within 30 days of filing
# A rater group's mean is shown to staff only for groups of at least this many raters (README,
# "Decisions where the specification is silent"): a smaller group's mean is too close to a name.
MIN_RATERS_SHOWN = 3


def create_tables(tx: Any, suffix: str = "", *, indexes: bool = True) -> None:
    """The tables (with `suffix`: a rebuild's fresh ones, whose audit indexes are made after the
    bulk load, once, under their live names: see `rebuild`)."""
    tx.serialize_ddl()
    s = suffix
    tx.execute(f"CREATE TABLE IF NOT EXISTS rm_year_results{s} (year INTEGER PRIMARY KEY, scheme TEXT NOT NULL, "
               "status TEXT NOT NULL, document TEXT NOT NULL, digest TEXT NOT NULL)")
    tx.execute(f"CREATE TABLE IF NOT EXISTS rm_explanations{s} (appraisal TEXT PRIMARY KEY, year INTEGER NOT NULL, "
               "subject TEXT NOT NULL, document TEXT NOT NULL, digest TEXT NOT NULL)")
    tx.execute(f"CREATE TABLE IF NOT EXISTS rm_breakdowns{s} (appraisal TEXT NOT NULL, version INTEGER NOT NULL, "
               "year INTEGER NOT NULL, subject TEXT NOT NULL, document TEXT NOT NULL, digest TEXT NOT NULL, "
               "PRIMARY KEY (appraisal, version))")
    tx.execute(f"CREATE TABLE IF NOT EXISTS rm_placements{s} (appraisal TEXT PRIMARY KEY, year INTEGER NOT NULL, "
               "explanation TEXT NOT NULL, breakdown TEXT NOT NULL, digest TEXT NOT NULL)")
    tx.execute(f"CREATE TABLE IF NOT EXISTS rm_person_history{s} (person TEXT NOT NULL, year INTEGER NOT NULL, "
               "scheme TEXT NOT NULL, status TEXT NOT NULL, department TEXT, position TEXT, total TEXT NOT NULL, "
               "individual TEXT NOT NULL, rank INTEGER, tier INTEGER, grade TEXT, coefficient TEXT, "
               "vetoed INTEGER NOT NULL, incomplete INTEGER NOT NULL, PRIMARY KEY (person, year))")
    tx.execute(f"CREATE TABLE IF NOT EXISTS rm_department_history{s} (department TEXT NOT NULL, "
               "year INTEGER NOT NULL, scheme TEXT NOT NULL, status TEXT NOT NULL, score TEXT NOT NULL, "
               "rank INTEGER NOT NULL, staffing_cut INTEGER, incomplete INTEGER NOT NULL, "
               "PRIMARY KEY (department, year))")
    tx.execute(f"CREATE TABLE IF NOT EXISTS rm_appeals{s} (appeal TEXT PRIMARY KEY, appraisal TEXT NOT NULL, "
               "year INTEGER NOT NULL, appellant TEXT NOT NULL, target TEXT NOT NULL, target_kind TEXT NOT NULL, "
               "grounds TEXT NOT NULL, filed_at TEXT NOT NULL, due TEXT NOT NULL, decided_at TEXT, outcome TEXT, "
               "decided_by TEXT, reason TEXT)")
    tx.execute(f"CREATE TABLE IF NOT EXISTS rm_audit{s} (position INTEGER PRIMARY KEY, aggregate TEXT NOT NULL, "
               "version INTEGER NOT NULL, event TEXT NOT NULL, command_id TEXT NOT NULL, actor TEXT NOT NULL, "
               "at TEXT NOT NULL, recorded_at TEXT NOT NULL, backdated INTEGER NOT NULL, detail TEXT NOT NULL, "
               "figures TEXT NOT NULL)")
    if indexes and not tx.index_names(f"rm_audit{s}"):
        create_audit_indexes(tx, f"rm_audit{s}")
    tx.execute(f"CREATE TABLE IF NOT EXISTS rm_publications{s} (year INTEGER NOT NULL, version INTEGER NOT NULL, "
               "at TEXT NOT NULL, recorded_at TEXT NOT NULL, digest TEXT NOT NULL, document TEXT NOT NULL, "
               "PRIMARY KEY (year, version))")
    tx.execute(f"CREATE TABLE IF NOT EXISTS rm_setaside{s} (position INTEGER NOT NULL, aggregate TEXT NOT NULL, "
               "topic TEXT NOT NULL, stage TEXT NOT NULL, error TEXT NOT NULL, first_seen TEXT NOT NULL, "
               "code TEXT NOT NULL, PRIMARY KEY (position, aggregate))")
    tx.execute("CREATE TABLE IF NOT EXISTS rm_tracking (name TEXT PRIMARY KEY, position INTEGER NOT NULL)")


AUDIT_INDEXES = (("by_aggregate", "aggregate, position"), ("by_actor", "actor, position"),
                 ("by_backdated", "backdated, position"))
# The audit table's indexes are named by generation: a rebuild's fresh table takes the names its
# live table does not use (an index keeps its name when its table is renamed).
INDEX_GENERATIONS = ("", "_b")


def create_audit_indexes(tx: Any, table: str = "rm_audit", generation: str = "") -> None:
    for index, columns in AUDIT_INDEXES:
        tx.execute(f"CREATE INDEX IF NOT EXISTS rm_audit{generation}_{index} ON {table} ({columns})")


def free_index_generation(names: set[str]) -> str:
    """The generation of audit index names that none of `names` has."""
    return next(g for g in INDEX_GENERATIONS if not any(f"rm_audit{g}_{index}" in names for index, _ in AUDIT_INDEXES))


def _json_std(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _json(value: Any) -> str:
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
        return _json(event_detail(event))
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
    if isinstance(event, Appraisal.MeasurementRecorded | Appraisal.OccurrenceRecorded):
        name = event.input if isinstance(event, Appraisal.MeasurementRecorded) else event.item
        return _input_figures(scheme, tree, name) + tail
    if isinstance(event, Appraisal.SurveyRecorded):
        return [f"survey:{event.input}", *_input_figures(scheme, tree, event.input), *tail]
    if isinstance(event, Appraisal.AdjustmentApplied):
        return [f"adjustment:{event.command_id}", "total"]
    if isinstance(event, Appraisal.VetoImposed):
        return [f"veto:{event.command_id}", "tier", "grade"]
    if isinstance(event, Appraisal.AppealDecided):
        appeal = appraisal.facts.appeals.get(event.appeal)
        target = appraisal.facts.items.get(appeal.target) if appeal else None
        if isinstance(target, f.Measurement | f.Occurrence):
            name = target.input if isinstance(target, f.Measurement) else target.item
            return _input_figures(scheme, tree, name) + tail
        if isinstance(target, f.SurveyRound):
            return [f"survey:{target.input}", *_input_figures(scheme, tree, target.input), *tail]
        if isinstance(target, f.AdjustmentFact):
            return [f"adjustment:{target.command_id}", "total"]
        if isinstance(target, f.VetoFact):
            return [f"veto:{target.command_id}", "tier", "grade"]
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
    return {key: doc[key] for key in ("appraisal", "year", "subject", "scheme", "status", "summary")} | {
        "figures": [_public_figure(figure, rating_refs) for figure in doc["figures"]],
        "items": _public_items(doc["events"], doc["struck"]), "appeals": _public_appeals(doc["events"]),
        "struck": _public_struck(doc["struck"], rating_refs),
    }


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


@dataclass(slots=True)
class _Texts:
    """The parts of one appraisal's explanation and public breakdown that its score before
    grading decides (everything but the summary, the grading figures, the status and adoptions),
    as JSON text. Made again only when the appraisal is scored again."""

    score: SubjectScore  # the score (before grading) they were made from
    facts: list[f.Fact]  # the facts listed in `events`, in log order
    events: str  # the JSON list of those facts' lines
    figures: list[Figure]  # the figures before grading
    figure_texts: list[str]  # each as JSON
    public_figure_texts: list[str]  # each as the public breakdown shows it
    rating_refs: set[str]
    struck: str
    public_struck: str
    not_applicable: str
    subject: str
    scheme: str
    items: str
    appeals: str
    others: list[dict[str, Any]] = field(default_factory=list)  # the lines of facts other than ratings
    key: str = ""  # the appraisal's
    year: int = 0

    # The two bodies are assembled from the parts when they are written, not kept: kept, they
    # held the parts' text a second time (a third of the worker's memory after a rebuild).

    def explanation(self) -> str:
        """The explanation without what grading decides (rm_explanations), members in sorted
        key order (as `_json` writes them)."""
        return "".join((
            '{"appraisal":', _json(self.key), ',"events":', self.events, ',"figures":[', ",".join(self.figure_texts),
            '],"not_applicable":', self.not_applicable, ',"scheme":', self.scheme, ',"struck":', self.struck,
            ",", self._tail()))

    def breakdown(self) -> str:
        """The public breakdown likewise (rm_breakdowns, version 0)."""
        return "".join((
            '{"appeals":', self.appeals, ',"appraisal":', _json(self.key), ',"figures":[',
            ",".join(self.public_figure_texts), '],"items":', self.items, ',"scheme":', self.scheme,
            ',"struck":', self.public_struck, ",", self._tail()))

    def _tail(self) -> str:
        return f'"subject":{self.subject},"year":{self.year}}}'


def _placement_text(parts: tuple[str, ...]) -> str:
    """A placement (rm_placements) as a JSON object: the figures grading added, and its members."""
    figures, members = parts
    return f'{{"figures":[{figures}],{members}}}'


def _assembled_text(body: str, figures: str, members: str) -> str:
    """A whole document's text from its body (`_Texts.explanation()` or `.breakdown()`) and placement
    (a publication's breakdown is kept whole, as published)."""
    document = assemble(json.loads(body), json.loads(_placement_text((figures, members))))
    return _json(document)


def assemble(body: dict[str, Any], placement: dict[str, Any]) -> dict[str, Any]:
    """A current explanation or breakdown from its body and its placement (rm_placements): the
    figures grading added go after the body's, its other members beside the body's; keys in
    sorted order, as the document's text has them."""
    document = dict(body)
    document["figures"] = body["figures"] + placement["figures"]
    document.update((key, value) for key, value in placement.items() if key != "figures")
    return dict(sorted(document.items()))


def _list_text(head: str, tail: list[str]) -> str:
    """A JSON list from items already written (`head`: several, joined) and more (`tail`)."""
    parts = [head] if head else []
    return "[" + ",".join(parts + tail) + "]"


class Renderer:
    """Turns the folded state into rows; remembers digests so that unchanged rows are not rewritten.

    Incremental: each year's scores before grading are kept and only the appraisals whose facts
    changed (and the people of a department scored again) are scored again; the cohort is graded
    again from them every time (any change can move every rank, tier and grade). The parts of an
    explanation that a score before grading decides are kept as text (`_Texts`), so that an
    explanation whose appraisal did not change is written again from them and its new grading
    figures alone. The rows are the same text, byte for byte, as `_json(explanation(...))` and
    `_json(public_breakdown(...))` of a full computation (tests/integration/test_read_models.py)."""

    def __init__(self) -> None:
        self.digests: dict[tuple[Any, ...], str] = {}
        self.signatures: dict[str, str] = {}  # appraisal -> what its explanation depends on beyond its facts
        self._rating_figures: dict[tuple[Any, ...], str] = {}
        self._scores: dict[int, tuple[Scheme, dict[str, SubjectScore]]] = {}  # year -> scores before grading
        self._stale: dict[int, set[str]] = {}  # year -> appraisals whose facts changed since they were scored
        self._stale_years: set[int] = set()  # years with a year-wide change since they were scored
        self._texts: dict[str, _Texts] = {}
        self._rows: dict[tuple[Any, ...], tuple[Any, ...]] = {}  # the history rows last written
        # A rebuild's final render hands its documents to its writer every `SPILL_EVERY` of them
        # as it goes, rather than holding every explanation of the year until the end.
        self.spill: Callable[[Rows], None] | None = None
        # Appraisals set aside at an event they cannot be scored or rendered with: their facts
        # before it, scored in place of their folded facts (see the module's docstring).
        self.frozen: dict[str, f.AppraisalFacts] = {}

    def note(self, change: Change) -> None:
        """Every event applied to the state goes through here: what it changed is scored again."""
        if change.year is None:
            return
        if change.appraisal is None:
            self._stale_years.add(change.year)
        else:
            self._stale.setdefault(change.year, set()).add(change.appraisal)

    def load_digests(self, db: ViewDB) -> None:
        """The digests of the documents in the tables, under the keys `_changed` gives them: after
        a restart a document rendered again the same (the same digest, so the same text) is not
        written again, nor held until the write (the first render after a restart renders every
        appraisal of the year)."""
        queries: list[tuple[str, Callable[[dict[str, Any]], tuple[Any, ...]]]] = [
            ("SELECT year, digest FROM rm_year_results", lambda row: ("results", row["year"])),
            ("SELECT appraisal, digest FROM rm_explanations", lambda row: ("explanation", row["appraisal"], None)),
            ("SELECT appraisal, version, digest FROM rm_breakdowns",
             lambda row: ("breakdown", row["appraisal"], row["version"])),
            ("SELECT appraisal, digest FROM rm_placements", lambda row: ("placement", row["appraisal"])),
        ]
        for query, key in queries:
            for row in db.query(query):
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
        for kept in (self.signatures, self._texts):
            for key in [k for k in kept if k.startswith(prefix)]:
                del kept[key]
        self.digests = {key: digest for key, digest in self.digests.items()
                        if not (key[1] == year_number or str(key[1]).startswith(prefix))}
        self._rows = {key: row for key, row in self._rows.items() if key[2] != year_number}

    def _results_row(self, results: YearResults, rows: Rows) -> dict[str, Any]:
        document = export(results)
        text = _json(document)
        digest = self._changed(("results", results.year), text)
        if digest:
            rows.results.append(_storable((results.year, f"{document['scheme']['id']}@{document['scheme']['version']}",
                                           document["status"], text, digest)))
        return document

    def _history(self, results: YearResults, document: dict[str, Any], rows: Rows) -> None:
        year_number = results.year
        for person in document["people"]:
            self._row(rows.people, ("person", person["id"], year_number), _storable((
                person["id"], year_number, results.scheme.ref, document["status"], person["department"],
                person["position"], person["total"], person["individual_score"], person["rank"], person["tier"],
                person["grade"], person["coefficient"], int(person["vetoed"]), int(person["incomplete"])),
                nullable=(4, 5, 8, 9, 10, 11)))
        for dep in document["departments"]:
            cut = next((c["posts"] for c in dep["consequences"] if c["type"] == "staffing_cut"), None)
            self._row(rows.departments, ("department", dep["id"], year_number), _storable((
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
        status = _json(results.status)
        adoptions = _json(adoption_lines(results.adoptions)) if results.adoptions else None
        for subject_id in [*results.departments, *results.people]:
            key = f"{year}:{subject_id}"
            placement = results.placements.get(subject_id)
            signature = _json([document["status"], cohort, entries[subject_id], ties.get(subject_id),
                               placement.position if placement else None])
            score, texts = scores[key], self._texts.get(key)
            if (changed is not None and key not in changed and self.signatures.get(key) == signature
                    and texts is not None and texts.score is score):
                # Nothing its explanation shows has moved: not scored again (its facts and its
                # department's exact score are as they were), and placed as it was.
                continue
            self.signatures[key] = signature
            frozen = self.frozen.get(key)
            facts = frozen if frozen is not None else state.appraisals[key].facts
            rows.appeals += appeal_rows(facts)
            body = None  # the breakdown's, when made here (a publication's breakdown starts from it)
            if texts is None or texts.score is not score:
                texts = self._texts[key] = _make_texts(score, facts, texts)
                body = texts.breakdown()
                self._document_rows(key, year, subject_id, texts.explanation(), body, rows)
            graded = results.subject(subject_id)
            assert graded is not None
            placed = self._placement(results, subject_id, graded, len(texts.figures), texts.rating_refs, status,
                                     adoptions)
            self._placement_row(key, year, placed, rows)
            if publication:
                self._published_row(key, publication, year, subject_id, body or texts.breakdown(), placed, rows)
            self._spill_documents(rows)

    def _document_rows(self, key: str, year: int, subject_id: str, explanation: str, breakdown: str,
                       rows: Rows) -> None:
        """An appraisal's explanation and breakdown (version 0) without what grading decides,
        unless written the same last time."""
        _storable((key, subject_id))
        digest = self._changed(("explanation", key, None), explanation)
        if digest:
            rows.explanations.append((key, year, subject_id, explanation, digest))
        digest = self._changed(("breakdown", key, 0), breakdown)
        if digest:
            rows.breakdowns.append((key, 0, year, subject_id, breakdown, digest))

    def _published_row(self, key: str, publication: int, year: int, subject_id: str, body: str,
                       placed: tuple[str, str, str, str], rows: Rows) -> None:
        """The breakdown as publication number `publication` shows it: whole."""
        full = _assembled_text(body, *placed[2:])
        digest = self._changed(("breakdown", key, publication), full)
        if digest:
            rows.breakdowns.append((key, publication, year, subject_id, full, digest))

    def _placement(self, results: YearResults, subject_id: str, graded: SubjectScore, before: int,
                   rating_refs: set[str], status: str, adoptions: str | None) -> tuple[str, str, str, str]:
        """What grading decides in an explanation and in its public breakdown: their added
        figures (JSON list items; the trace's first `before` are the score's own) and the rest of
        their parts, as JSON object members."""
        grading = [figure.as_dict() for figure in graded.trace[before:]]
        members = f'"status":{status},"summary":{_json(explanation_summary(results, subject_id, graded))}'
        return (",".join(_json(figure) for figure in grading),
                (f'"adoptions":{adoptions},' if adoptions is not None else "") + members,
                ",".join(_json(_public_figure(figure, rating_refs)) for figure in grading),
                members)

    def _placement_row(self, key: str, year: int, placed: tuple[str, str, str, str], rows: Rows) -> None:
        digest = self._changed(("placement", key), "\n".join(placed))
        if digest:
            rows.placements.append((key, year, _placement_text(placed[:2]), _placement_text(placed[2:]), digest))

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
            _storable((name, command_id, actor))  # raises: the event is set aside
        rows.audit.append((position, name, event.originator_version, change.kind,
                           command_id, actor, event.at.isoformat(), event.timestamp.isoformat(),
                           int(backdated(event.at, event.timestamp)), _detail_json(event),
                           self._figures_json(event, state, appraisal)))

    def _figures_json(self, event: LedgerEvent, state: LedgerState, appraisal: Appraisal | None) -> str:
        """`figures_fed` as JSON; a rating's (by far the most events) is the same for every rating
        of a leaf and period in a year and tree, so its text is made once."""
        if type(event) is not Appraisal.RatingRecorded or appraisal is None:
            return _json(figures_fed(event, state, appraisal))
        facts = appraisal.facts
        year = state.years.get(facts.year)
        if year is None:
            return "[]"
        key = (facts.year, year.scheme_id, year.scheme_version, facts.kind == "department",
               event.leaf, event.period)  # type: ignore[attr-defined]
        text = self._rating_figures.get(key)
        if text is None:
            text = self._rating_figures[key] = _json(figures_fed(event, state, appraisal))
        return text


def _make_texts(score: SubjectScore, facts: f.AppraisalFacts, before: _Texts | None) -> _Texts:
    """The parts of an explanation a score before grading decides. The facts' lines are taken from
    `before` (the texts of this appraisal's previous score) when its facts begin the new list: a
    new fact comes last (log order), and a fact never changes."""
    ordered = _extended(before.facts, facts) if before is not None else None
    if before is not None and ordered is not None:
        added = ordered[len(before.facts):]
        events = _list_text(before.events[1:-1], [_json(fact_line(fact)) for fact in added])
        others = before.others + [fact_line(fact) for fact in added if type(fact) is not f.Rating]
        rating_refs = before.rating_refs | {fact.ref for fact in added if type(fact) is f.Rating}
    else:
        ordered = sorted(facts.items.values(), key=lambda fact: f.ref_order(fact.ref))
        events = _json([fact_line(fact) for fact in ordered])
        others = [fact_line(fact) for fact in ordered if type(fact) is not f.Rating]  # what the breakdown lists
        rating_refs = {fact.ref for fact in ordered if type(fact) is f.Rating}
    # A figure object never changes once made: one of the previous score's (a person composed
    # again with a new department score keeps their individual tree's) keeps its texts. Whether
    # a reference is a rating's never changes either, so neither does its public text.
    kept = ({id(figure): index for index, figure in enumerate(before.figures)} if before is not None else {})
    figure_texts, public_texts = [], []
    for figure in score.trace:
        index = kept.get(id(figure))
        if index is not None and before is not None and before.figures[index] is figure:
            figure_texts.append(before.figure_texts[index])
            public_texts.append(before.public_figure_texts[index])
        else:
            data = figure.as_dict()
            figure_texts.append(_json(data))
            public_texts.append(_json(_public_figure(data, rating_refs)))
    struck = [item.as_dict() for item in score.struck]
    texts = _Texts(
        score=score, facts=ordered, events=events, figures=list(score.trace), figure_texts=figure_texts,
        public_figure_texts=public_texts, others=others,
        rating_refs=rating_refs, struck=_json(struck), public_struck=_json(_public_struck(struck, rating_refs)),
        not_applicable=_json([item.as_dict() for item in score.not_applicable]),
        subject=_json(explanation_subject(score)), scheme=_json(score.scheme),
        items=_json(_public_items(others, struck)), appeals=_json(_public_appeals(others)),
        key=score.key, year=facts.year,
    )
    return texts


def _extended(known: list[f.Fact], facts: f.AppraisalFacts) -> list[f.Fact] | None:
    """The appraisal's facts in log order when they are `known` (in log order) and facts recorded
    after them, else None. Facts are kept in the order they were recorded, so this is the usual
    case and needs no sort; anything else (a fact replaced under its command id) is sorted."""
    current = list(facts.items.values())
    if len(current) < len(known) or any(old is not new for old, new in zip(known, current, strict=False)):
        return None
    last = f.ref_order(known[-1].ref)[1] if known else -1
    for fact in current[len(known):]:
        version = f.ref_order(fact.ref)[1]
        if version <= last:
            return None
        last = version
    return current


def publication_row(year: Year) -> tuple[Any, ...]:
    """The year's latest publication (the one just recorded) as a row of rm_publications."""
    publication = year.publications[-1]
    return _storable((year.year, len(year.publications), publication["at"].isoformat(),
                      publication["recorded_at"].isoformat(), publication["digest"], _json(publication["document"])))


def appeal_rows(facts: f.AppraisalFacts) -> list[tuple[Any, ...]]:
    rows = []
    for appeal in facts.appeals.values():
        target = facts.items.get(appeal.target)
        decision = facts.decisions.get(appeal.command_id)
        due = appeal.at + timedelta(days=DECISION_DUE_DAYS)
        rows.append(_storable((appeal.command_id, facts.key, facts.year, appeal.actor, appeal.target,
                               f.FACT_KINDS[type(target)] if target else "unknown", appeal.grounds,
                               appeal.at.isoformat(), due.isoformat(), decision.at.isoformat() if decision else None,
                               decision.outcome if decision else None, decision.actor if decision else None,
                               decision.reason if decision else None), nullable=(9, 10, 11, 12)))
    return rows


_INT4 = 2**31  # PostgreSQL's INTEGER


def _storable(row: tuple[Any, ...], nullable: tuple[int, ...] = ()) -> tuple[Any, ...]:
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


class _PageWriter:
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


_REPLACED = "_replaced"  # the live tables a rebuild's swap replaced, until they are dropped
SPILL_EVERY = 300  # documents (explanations, breakdowns, placements) per batch a rebuild's final render spills


class TrackingMoved(RuntimeError):
    """The tracking row is not where this projection left it: a rebuild swapped its tables in
    behind it, or another worker ran. Its batch is rolled back; start again from the row."""


def _set_tracking(tx: Any, position: int, *, expected: int | None = None) -> None:
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


# --- the projection -----------------------------------------------------------------------------


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
        an older layout are rebuilt from zero."""
        position = self.tracking()
        if position and (self.layout_version() != VERSION or set_aside(self.db)):
            self.rebuild()  # set-aside events are tried again: this may be a fixed version
            return
        if position:
            with paused_gc():  # see `rebuild`
                for at, event in read_events(self.ledger, stop=position, tolerant=True):
                    self._fold_one(at, event, None)
            self.state.position = position
            self.renderer.load_digests(self.db)
            if self._pending:  # met by this version only
                with self.db.transaction() as tx:
                    write(tx, Rows(setaside=self._take_pending()))

    def catch_up(self, page: int = 2000) -> int:
        """Process every event after the tracking position; returns how many were processed."""
        processed = 0
        while True:
            with paused_gc():  # see `rebuild`
                batch = list(_take(read_events(self.ledger, start=self.state.position, page=page, tolerant=True),
                                   page))
                if not batch:
                    return processed
                self.process(batch)
            processed += len(batch)

    def process(self, batch: list[tuple[int, LedgerEvent]], suffix: str = "", *,
                writer: _PageWriter | None = None) -> Rows:
        """Fold a batch, render the years it touched, write rows and tracking in one transaction.
        A publication is rendered at its own position, so its breakdowns are what was published.
        (A rebuild's pages, into fresh tables and without tracking, go to its `writer`.)"""
        rows = Rows()
        dirty: set[int] = set()
        whole: set[int] = set()  # years with a year-wide change: every subject is rendered again
        changed: set[str] = set()  # appraisals whose facts changed
        expected = self.state.position  # where this projection left the tracking row
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
        if writer is not None:
            writer.put(rows)
            return rows
        with self.db.transaction() as tx:
            write(tx, rows, suffix)
            if not suffix:
                _set_tracking(tx, self.state.position, expected=expected)
        return rows

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
        renderer = self.renderer
        # What changed since the year was last rendered (None: all of it): looked at first.
        since = (set(renderer._stale.get(year_number, ())) if year_number in renderer._scores
                 and year_number not in renderer._stale_years else None)
        while True:
            attempt = Rows()
            try:
                renderer.year(self.state, year_number, attempt, **options)
            except Exception as error:
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
                if appraisal.facts.kind != kind or _render_error(scheme, appraisal.facts, department(appraisal.facts)) is None:
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
        mapper, folded, texts = self.ledger.mapper, None, None
        for index, item in enumerate(stored):
            folded = mapper.to_domain_event(item).mutate(folded)
            try:
                texts = _rendered(scheme, folded.facts, department, texts)
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

    def rebuild(self, page: int = 20000) -> int:
        """Rebuild every read model from zero into fresh tables, then swap them in at once; the
        number of events in the log. The cyclic garbage collector is paused meanwhile
        (api/gcpause.py): the fold and the rendering allocate millions of objects that form no
        cycles, and the collector would scan the growing folded state again and again to find
        none (two thirds of the time)."""
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
                tx.execute(f"DROP TABLE IF EXISTS {table}{_REPLACED}")  # left by a swap that stopped short
            create_tables(tx, suffix, indexes=False)
            generation = free_index_generation(tx.index_names("rm_audit"))
        return lambda tx: create_audit_indexes(tx, f"rm_audit{suffix}", generation)

    def _rebuild(self, page: int) -> int:
        suffix = "_next"
        same_layout = self.layout_version() == VERSION  # (before the writer has the connection)
        index = self._fresh_tables(suffix)
        self.state, self.renderer = LedgerState(), Renderer()
        processed = 0
        writer = _PageWriter(self.db, suffix)
        final = Rows()
        try:
            for batch in _pages(read_events(self.ledger, page=page, tolerant=True), page):
                if any(isinstance(event, Year.Published) for _, event in batch):
                    self.process(batch, suffix, writer=writer)  # rendered at the publication
                else:
                    writer.put(self._fold(batch))
                processed += len(batch)
            writer.put(index)  # by the writer, while the final render goes on
            self.renderer.spill = writer.put  # the documents go to the fresh tables as they are made
            try:
                for year_number in sorted(self.state.years):
                    self._render(year_number, final)
            finally:
                self.renderer.spill = None
            final.setaside += self._take_pending()
            writer.put(final)
            if self._suspended and same_layout:
                writer.put(partial(_keep_last_rows, self.db, sorted(self._suspended), suffix))
        finally:
            writer.close()
        self._swap(suffix, self.state.position)
        return processed

    def _swap(self, suffix: str, position: int) -> None:
        """The fresh tables (every row written) in, the tracking row moved, in one short
        transaction; the tables replaced are dropped after it, one at a time (writers to the store
        wait for neither)."""
        with self.db.transaction() as tx:
            for table in TABLES:
                if self.db.table_exists(table):
                    tx.execute(f"ALTER TABLE {table} RENAME TO {table}{_REPLACED}")
                tx.execute(f"ALTER TABLE {table}{suffix} RENAME TO {table}")
            _set_tracking(tx, position)
        for table in TABLES:
            with self.db.transaction() as tx:
                tx.execute(f"DROP TABLE IF EXISTS {table}{_REPLACED}")

    def close(self) -> None:
        self.db.close()


def set_aside(db: ViewDB) -> list[dict[str, Any]]:
    """The events set aside (rm_setaside), in log order; none before the tables exist."""
    if not db.table_exists("rm_setaside"):
        return []
    return db.query("SELECT position, aggregate, topic, stage, error, first_seen, code FROM rm_setaside "
                    "ORDER BY position, aggregate")


def _printable(text: str) -> str:
    """Text for rm_setaside, which both stores keep (a NUL character written as `\\x00`)."""
    return str(text).replace("\x00", "\\x00")


def code_version() -> str:
    """The version of this code, as a set-aside row records it."""
    try:
        package = metadata.version("appraisal-ledger")
    except metadata.PackageNotFoundError:
        package = "unknown"
    return f"{package} layout {VERSION}"


def _year_of(aggregate: Any) -> tuple[int | None, str | None, str]:
    """What a change of the aggregate touches (`Change`)."""
    if isinstance(aggregate, Appraisal):
        return aggregate.facts.year, aggregate.key, "SetAside"
    if isinstance(aggregate, Year):
        return aggregate.year, None, "SetAside"
    return None, None, "SetAside"


def _render_error(scheme: Scheme, facts: f.AppraisalFacts, department: SubjectScore | None) -> Exception | None:
    """What scoring and rendering an appraisal alone raises, if anything."""
    try:
        _rendered(scheme, facts, department, None)
    except Exception as error:
        return error
    return None


def _rendered(scheme: Scheme, facts: f.AppraisalFacts, department: SubjectScore | None,
              earlier: _Texts | None) -> _Texts:
    """An appraisal scored and rendered alone (raises what that raises); with `earlier` (the texts
    of the same facts before the last ones were added), scored and rendered as the renderer does,
    again only in what they changed."""
    score = earlier.score if earlier is not None else None
    if facts.kind == "department":
        score = score_department(scheme, facts, earlier=score)
    else:
        score = score_person(scheme, facts, department, earlier=score)
    texts = _make_texts(score, facts, earlier)
    texts.explanation()
    texts.breakdown()
    _storable((facts.key, facts.subject.id))
    appeal_rows(facts)
    for value in (score.score, score.total, score.department_score, score.adjustments, *score.leaves.values()):
        if value is not None:
            shown(value)
    return texts


YEAR_TABLES = ("rm_year_results", "rm_explanations", "rm_breakdowns", "rm_placements", "rm_person_history",
               "rm_department_history", "rm_appeals")


def _keep_last_rows(db: ViewDB, years: list[int], suffix: str, tx: Any) -> None:
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


def _take(events: Iterable[Any], n: int) -> Iterable[Any]:
    for index, item in enumerate(events):
        if index >= n:
            return
        yield item


def _pages(events: Iterable[Any], n: int) -> Iterable[list[Any]]:
    page: list[Any] = []
    for item in events:
        page.append(item)
        if len(page) >= n:
            yield page
            page = []
    if page:
        yield page


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.utcoffset() is None:
        raise ValueError(f"{text!r} needs an offset, e.g. 2026-01-03T00:00:00+08:00")
    return moment
