"""A year's results: scoring every appraisal, grading the cohort, and the documents people see
(the results export of COMMANDS.md and the explanation of one appraisal)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from operator import attrgetter
from typing import Any

from domain import facts as f
from domain.grading import (
    Cohort,
    DepartmentPlacement,
    Placement,
    grade_people,
    person_figures,
    rank_departments,
)
from domain.numbers import SIGNIFICANT, decimal_str, decimal_text
from domain.scheme import Scheme
from domain.scoring import SubjectScore, score_department, score_person
from domain.times import backdated
from domain.trace import Figure, Struck


@dataclass(slots=True)
class YearFacts:
    """Everything the engine needs to score a year: no storage, no clock."""

    year: int
    scheme: Scheme
    appraisals: list[f.AppraisalFacts]
    tie_breaks: list[dict[str, Any]] = field(default_factory=list)
    history: dict[int, dict[str, int | None]] = field(default_factory=dict)  # published tiers
    status: str = "provisional"
    adoptions: list[dict[str, Any]] = field(default_factory=list)  # Year.adoptions: rebindings (§9)


@dataclass(slots=True)
class YearResults:
    year: int
    scheme: Scheme
    status: str
    departments: dict[str, SubjectScore]
    department_placements: dict[str, DepartmentPlacement]
    people: dict[str, SubjectScore]
    placements: dict[str, Placement]
    unresolved_ties: list[dict[str, Any]]
    cohort: Cohort
    adoptions: list[dict[str, Any]] = field(default_factory=list)

    def subject(self, subject_id: str) -> SubjectScore | None:
        """A subject's score before grading."""
        return self.people.get(subject_id) or self.departments.get(subject_id)

    def graded_figures(self, subject_id: str) -> list[Figure]:
        """The figures grading adds after a subject's trace (made when asked, for a person)."""
        if subject_id in self.people:
            return person_figures(self.scheme, self.people[subject_id], self.placements[subject_id], self.cohort)
        return list(self.department_placements[subject_id].figures)


def compute_year(facts: YearFacts) -> YearResults:
    """Score every appraisal of the year under `facts.scheme`, then grade the cohort."""
    return grade_year(facts, *score_year(facts))


def score_year(facts: YearFacts, known: dict[str, SubjectScore] | None = None,
               stale: set[str] | frozenset[str] = frozenset()) -> tuple[dict[str, SubjectScore], dict[str, SubjectScore]]:
    """Every appraisal's score before grading (departments, people; by subject id). A score in
    `known` (by appraisal key, made by this function under the same scheme version) is taken as it
    is unless its appraisal is in `stale` (its facts changed since) or, for a person, their
    department's score was made again: a score is a function of the scheme, the appraisal's facts
    and the department's score, nothing else (the projection rescores only what changed). A stale
    appraisal is scored again with its known score as `earlier` (its unchanged periods' figures)."""
    scheme = facts.scheme
    known = known or {}
    departments: dict[str, SubjectScore] = {}
    rescored: set[str] = set()
    for a in facts.appraisals:
        if a.kind == "department":
            score = known.get(a.key)
            if score is None or score.subject is not a.subject:
                score = score_department(scheme, a)
                rescored.add(a.subject.id)
            elif a.key in stale:
                score = score_department(scheme, a, earlier=score)
                rescored.add(a.subject.id)
            departments[a.subject.id] = score
    people: dict[str, SubjectScore] = {}
    for a in facts.appraisals:
        if a.kind == "person":
            department = a.subject.department or ""
            score = known.get(a.key)
            if score is None or score.subject is not a.subject:
                score = score_person(scheme, a, departments.get(department))
            elif a.key in stale:
                score = score_person(scheme, a, departments.get(department), earlier=score)
            elif department in rescored or (score.department_score is None) != (department not in departments):
                # Only the department's score moved: the individual tree stands as it was scored.
                score = score_person(scheme, a, departments.get(department), score.individual_part)
            people[a.subject.id] = score
    return departments, people


def grade_year(facts: YearFacts, departments: dict[str, SubjectScore],
               people: dict[str, SubjectScore]) -> YearResults:
    """Grade the cohort and rank the departments. The scores given stay as they were (grading's
    figures, rank, tier, grade and staffing cut, are `YearResults.graded_figures`), so that they
    can be graded again after another change."""
    scheme = facts.scheme
    placements, unresolved, cohort = grade_people(scheme, list(people.values()), facts.tie_breaks,
                                                  facts.history, facts.year)
    department_placements = rank_departments(scheme, list(departments.values()))
    return YearResults(facts.year, scheme, facts.status, dict(departments), department_placements, dict(people),
                       placements, unresolved, cohort, list(facts.adoptions))


def _leaves(score: SubjectScore) -> dict[str, str]:
    return dict(score.shown_texts()["leaves"])


def coefficient_text(value: Decimal | None) -> str | None:
    if value is None:
        return None
    if value.adjusted() >= SIGNIFICANT - 1:  # only in a scheme recorded before the number grammar
        return decimal_text(value)
    return str(value if value.as_tuple().exponent < 0 else value.quantize(Decimal("0.1")))  # type: ignore[operator]


def export(results: YearResults) -> dict[str, Any]:
    """The results export of COMMANDS.md (`appraisal results --format json`)."""
    departments = []
    for dep_id in sorted(results.departments):
        score = results.departments[dep_id]
        ranked = results.department_placements[dep_id]
        departments.append({
            "id": dep_id, "score": score.shown_texts()["score"], "rank": ranked.rank,
            "incomplete": score.is_incomplete, "leaves": _leaves(score),
            "consequences": sorted(ranked.consequences, key=lambda c: c["type"]),
        })
    people = []
    for person_id in sorted(results.people):
        score = results.people[person_id]
        placement = results.placements[person_id]
        texts = score.shown_texts()
        people.append({
            "id": person_id, "department": score.subject.department, "position": score.subject.position,
            "department_score": texts["department_score"],
            "individual_score": texts["score"], "adjustments": texts["adjustments"],
            "total": texts["total"], "vetoed": score.vetoed,
            "incomplete": score.is_incomplete, "rank": placement.rank, "tier": placement.tier,
            "coefficient": coefficient_text(placement.coefficient), "grade": placement.grade,
            "leaves": _leaves(score), "consequences": placement.consequences,
        })
    document = {
        "year": results.year,
        "scheme": {"id": results.scheme.id, "version": results.scheme.version},
        "status": results.status,
        "departments": departments,
        "people": people,
        "unresolved_ties": results.unresolved_ties,
    }
    if results.adoptions:  # optional: only a year rebound to another scheme version has it
        document["adoptions"] = adoption_lines(results.adoptions)
    return document


def adoption_lines(adoptions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each switch of the year's scheme version: from, to, when (business and recording time), why."""
    return [{"from": a["from"], "to": a["to"], "at": a["at"].isoformat(),
             "recorded_at": a["recorded_at"].isoformat(), "actor": a["actor"], "reason": a["reason"]}
            for a in adoptions]


def explanation(results: YearResults, subject_id: str, facts: f.AppraisalFacts) -> dict[str, Any]:
    """How one appraisal's figures arose: the trace, the facts behind it, what was struck. The one
    builder of an explanation: its body (what the appraisal's score decides) and its placement
    (what grading the cohort decides), put together."""
    score = results.subject(subject_id)
    assert score is not None
    document = assemble(explanation_body(score, facts), explanation_placement(results, subject_id))
    return {key: document[key] for key in _EXPLANATION_ORDER if key in document}


_EXPLANATION_ORDER = ("appraisal", "year", "subject", "scheme", "status", "summary", "figures", "struck",
                      "not_applicable", "events", "adoptions")


def explanation_body(score: SubjectScore, facts: f.AppraisalFacts) -> dict[str, Any]:
    """The part of an explanation that the appraisal's score decides (before or after grading:
    the figures are the score's trace), keys in sorted order."""
    return {
        "appraisal": score.key,
        "events": fact_lines(facts),
        "figures": [figure.as_dict() for figure in score.trace],
        "not_applicable": [item.as_dict() for item in score.not_applicable],
        "scheme": score.scheme,
        "struck": [item.as_dict() for item in score.struck],
        "subject": explanation_subject(score),
        "year": facts.year,
    }


def explanation_placement(results: YearResults, subject_id: str) -> dict[str, Any]:
    """The part of an explanation that grading the cohort decides: the figures grading adds after
    the trace, the status, the summary, and the adoptions (the scheme of the body is the current
    one; they say since when and before what)."""
    graded = results.subject(subject_id)
    assert graded is not None
    placement: dict[str, Any] = {}
    if results.adoptions:
        placement["adoptions"] = adoption_lines(results.adoptions)
    placement["figures"] = [figure.as_dict() for figure in results.graded_figures(subject_id)]
    placement["status"] = results.status
    placement["summary"] = explanation_summary(results, subject_id, graded)
    return placement


def assemble(body: dict[str, Any], placement: dict[str, Any]) -> dict[str, Any]:
    """An explanation (or a public breakdown) from its body and its placement: the figures grading
    added go after the body's, its other members beside the body's; keys in sorted order."""
    document = dict(body)
    document["figures"] = body["figures"] + placement["figures"]
    document.update((key, value) for key, value in placement.items() if key != "figures")
    return dict(sorted(document.items()))


def explanation_subject(score: SubjectScore) -> dict[str, Any]:
    return {"id": score.subject.id, "kind": score.subject.kind, "name": score.subject.name,
            "position": score.subject.position, "department": score.subject.department}


def fact_lines(facts: f.AppraisalFacts) -> list[dict[str, Any]]:
    """The recorded facts of an appraisal in log order, as an explanation lists them."""
    return [fact_line(fact) for fact in sorted(facts.items.values(), key=lambda x: f.ref_order(x.ref))]


def explanation_summary(results: YearResults, subject_id: str, score: SubjectScore) -> dict[str, Any]:
    texts = score.shown_texts()
    summary: dict[str, Any] = {"score": texts["score"], "leaves": _leaves(score),
                               "incomplete": score.incomplete}
    if score.subject.kind == "person":
        placement = results.placements[subject_id]
        summary.update({
            "department_score": texts["department_score"],
            "adjustments": texts["adjustments"], "total": texts["total"],
            "vetoed": score.vetoed, "rank": placement.rank, "tier": placement.tier,
            "grade": placement.grade, "coefficient": coefficient_text(placement.coefficient),
            "consequences": placement.consequences, "unresolved_tie": placement.unresolved_tie,
        })
    else:
        placement_d = results.department_placements[subject_id]
        summary.update({"rank": placement_d.rank, "consequences": placement_d.consequences})
    return summary


def fact_line(fact: f.Fact) -> dict[str, Any]:
    """One recorded fact as an inspector sees it in an explanation: the common fields (with
    `backdated: true` when its business time is more than 7 days before its recording time), then
    the fields of its kind (`__slots__`, read at once), exact numbers as their text."""
    kind, names, read = _LINE_FIELDS[type(fact)]
    data: dict[str, Any] = {"ref": fact.ref, "kind": kind, "command": fact.command_id,
                            "actor": fact.actor, "at": fact.at.isoformat(),
                            "recorded_at": fact.recorded_at.isoformat()}
    if backdated(fact.at, fact.recorded_at):  # COMMANDS.md § Envelope: inspectors see it
        data["backdated"] = True
    values = read(fact)
    for name, value in zip(names, values if len(names) > 1 else (values,), strict=True):
        data[name] = decimal_str(value) if isinstance(value, Decimal) else value
    return data


_LINE_FIELDS = {cls: (kind, cls.__slots__, attrgetter(*cls.__slots__))  # type: ignore[attr-defined]
                for cls, kind in f.FACT_KINDS.items()}


__all__ = ["YearFacts", "YearResults", "adoption_lines", "assemble", "compute_year", "explanation",
           "explanation_body", "explanation_placement", "explanation_subject", "explanation_summary", "export", "fact_line", "fact_lines", "grade_year", "score_year", "Struck"]
