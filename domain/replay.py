"""A replay report (SCORING.md §9): the year's current results beside the same facts scored under
another scheme version, subject by subject.

Both sides are `YearResults` computed by the one scoring engine from the same facts; this module
only compares what they show (the 2-decimal figures of the export and of the trace), so a replay
never scores anything a second way. Per subject: old and new total (a department's score), rank,
tier, grade, coefficient and consequences, the leaves whose shown value changed, the rule figures
(`rule:*`, `base:*`, `adjustment:*`, a survey's rate `survey:*`) whose shown value changed with the parameters that changed
with them, and the facts the new version has no place for. A summary counts the subjects whose
tier, grade and rank change and lists the largest moves; the scheme diff says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.errors import DomainError
from domain.numbers import shown, shown_difference, shown_value
from domain.results import YearResults, export
from domain.scheme import Scheme
from domain.scheme_diff import diff_schemes
from domain.trace import Figure

RULE_FIGURES = ("rule:", "base:", "adjustment:", "survey:")  # survey: a survey's rate (SCORING.md §12)
LARGEST_MOVES = 5
PERSON_FIELDS = ("total", "department_score", "individual_score", "adjustments", "rank", "tier", "grade",
                 "coefficient", "vetoed", "incomplete", "consequences")
DEPARTMENT_FIELDS = ("score", "rank", "incomplete", "consequences")


def parse_scheme_ref(text: str, field: str = "scheme") -> tuple[str, int]:
    """`"bianban@2"` -> `("bianban", 2)`; anything else is refused naming the field."""
    scheme_id, _, version = text.strip().partition("@")
    if not scheme_id or not version.isdigit() or int(version) < 1:
        raise DomainError(field, f"expected ID@VERSION (e.g. bianban@2), got {text!r}", rule="scheme-ref")
    return scheme_id, int(version)


@dataclass(slots=True)
class ReplaySide:
    """What a replay report reads from one side's results: the export and, per subject, the rule
    figures and the facts not applicable. Small beside the `YearResults` it came from, so a caller
    can let go of one year's full trace before computing the other."""

    year: int
    scheme: Scheme
    status: str
    document: dict[str, Any]
    rule_figures: dict[str, dict[str, Figure]]  # subject id -> figure key -> figure
    not_applicable: dict[str, list[dict[str, Any]]]


def replay_side(results: YearResults) -> ReplaySide:
    scores = [*results.departments.values(), *results.people.values()]
    return ReplaySide(
        year=results.year, scheme=results.scheme, status=results.status, document=export(results),
        rule_figures={s.subject.id: {f.key: f for f in s.trace if f.key.startswith(RULE_FIGURES)} for s in scores},
        not_applicable={s.subject.id: [item.as_dict() for item in s.not_applicable] for s in scores},
    )


def replay_report(current: YearResults, replayed: YearResults) -> dict[str, Any]:
    """The difference, per subject, between the year's current results and a replay."""
    return compare_sides(replay_side(current), replay_side(replayed))


def compare_sides(current: ReplaySide, replayed: ReplaySide) -> dict[str, Any]:
    if current.year != replayed.year:
        raise ValueError(f"comparing year {current.year} with year {replayed.year}")
    old_doc, new_doc = current.document, replayed.document
    departments = _subjects(current, replayed, old_doc["departments"], new_doc["departments"],
                            DEPARTMENT_FIELDS, "score")
    people = _subjects(current, replayed, old_doc["people"], new_doc["people"], PERSON_FIELDS, "total")
    return {
        "year": current.year,
        "current": {"scheme": current.scheme.ref, "status": current.status},
        "replayed": {"scheme": replayed.scheme.ref, "status": "replay"},
        "scheme_diff": [change.as_dict() for change in diff_schemes(current.scheme, replayed.scheme)],
        "summary": _summary(departments, people),
        "unresolved_ties": {"old": old_doc["unresolved_ties"], "new": new_doc["unresolved_ties"]},
        "departments": departments,
        "people": people,
    }


def _subjects(current: ReplaySide, replayed: ReplaySide, old_rows: list[dict[str, Any]],
              new_rows: list[dict[str, Any]], fields: tuple[str, ...], measure: str) -> list[dict[str, Any]]:
    old_by_id = {row["id"]: row for row in old_rows}
    new_by_id = {row["id"]: row for row in new_rows}
    entries = []
    for subject_id in sorted(set(old_by_id) | set(new_by_id)):
        old_row, new_row = old_by_id.get(subject_id), new_by_id.get(subject_id)
        row = old_row or new_row
        assert row is not None
        entry: dict[str, Any] = {"id": subject_id}
        if "department" in row:
            entry.update({"department": row["department"], "position": row["position"]})
        entry["old"] = {name: old_row[name] for name in fields} if old_row else None
        entry["new"] = {name: new_row[name] for name in fields} if new_row else None
        entry["delta"] = (_delta(old_row[measure], new_row[measure]) if old_row and new_row else None)
        entry["changed"] = [name for name in fields
                            if old_row is None or new_row is None or old_row[name] != new_row[name]]
        entry["leaves"] = _changed_values(old_row["leaves"] if old_row else {},
                                          new_row["leaves"] if new_row else {})
        entry["rules"] = _changed_rules(current.rule_figures.get(subject_id, {}),
                                        replayed.rule_figures.get(subject_id, {}))
        entry["not_applicable"] = replayed.not_applicable.get(subject_id, [])
        entries.append(entry)
    return entries


def _changed_values(old: dict[str, str], new: dict[str, str]) -> dict[str, dict[str, str | None]]:
    return {key: {"old": old.get(key), "new": new.get(key)}
            for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)}


def _changed_rules(old: dict[str, Figure], new: dict[str, Figure]) -> dict[str, dict[str, Any]]:
    changes: dict[str, dict[str, Any]] = {}
    for key in sorted(set(old) | set(new)):
        was, now = old.get(key), new.get(key)
        was_value = shown(was.value) if was is not None and was.value is not None else None
        now_value = shown(now.value) if now is not None and now.value is not None else None
        if was_value == now_value:
            continue
        change: dict[str, Any] = {"old": was_value, "new": now_value}
        figure = now or was
        assert figure is not None
        if figure.rule is not None:
            change["rule"] = figure.rule.as_dict()
        params = _changed_values(_params(was), _params(now))
        if params:
            change["params"] = params
        changes[key] = change
    return changes


def _params(figure: Figure | None) -> dict[str, str]:
    return {} if figure is None else figure.as_dict().get("params", {})


def _delta(old: str, new: str) -> str:
    return shown_difference(old, new)


def _summary(departments: list[dict[str, Any]], people: list[dict[str, Any]]) -> dict[str, Any]:
    both = [p for p in people if p["old"] is not None and p["new"] is not None]
    moved = [p for p in both if shown_value(p["delta"]) != 0]
    up = sorted((p for p in moved if shown_value(p["delta"]) > 0), key=lambda p: (-shown_value(p["delta"]), p["id"]))
    down = sorted((p for p in moved if shown_value(p["delta"]) < 0), key=lambda p: (shown_value(p["delta"]), p["id"]))
    return {
        "departments": len(departments),
        "people": len(people),
        "people_changed": sum(1 for p in people if _any_change(p)),
        "departments_changed": sum(1 for d in departments if _any_change(d)),
        "total_changed": len(moved),
        "tier_changed": sum(1 for p in people if "tier" in p["changed"]),
        "grade_changed": sum(1 for p in people if "grade" in p["changed"]),
        "rank_changed": sum(1 for p in people if "rank" in p["changed"]),
        "coefficient_changed": sum(1 for p in people if "coefficient" in p["changed"]),
        "consequences_changed": sum(1 for p in people if "consequences" in p["changed"]),
        "department_score_changed": sum(1 for d in departments if "score" in d["changed"]),
        "department_rank_changed": sum(1 for d in departments if "rank" in d["changed"]),
        "not_applicable": sum(len(s["not_applicable"]) for s in [*departments, *people]),
        "largest_moves": {"up": [_move(p) for p in up[:LARGEST_MOVES]],
                          "down": [_move(p) for p in down[:LARGEST_MOVES]]},
    }


def _any_change(entry: dict[str, Any]) -> bool:
    return bool(entry["changed"] or entry["leaves"] or entry["rules"] or entry["not_applicable"])


def _move(entry: dict[str, Any]) -> dict[str, Any]:
    return {"id": entry["id"], "old": entry["old"]["total"], "new": entry["new"]["total"], "delta": entry["delta"],
            "old_rank": entry["old"]["rank"], "new_rank": entry["new"]["rank"],
            "old_tier": entry["old"]["tier"], "new_tier": entry["new"]["tier"],
            "old_grade": entry["old"]["grade"], "new_grade": entry["new"]["grade"]}


__all__ = ["ReplaySide", "compare_sides", "parse_scheme_ref", "replay_report", "replay_side"]
