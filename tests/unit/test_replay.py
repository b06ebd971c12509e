"""Replays of the worked example (SCORING.md §10) under corrected versions of `bianban`
(SCORING.md §9): every changed figure checked against its hand computation, the report's shape,
not-applicable facts, and that a replay records nothing and equals the results after adoption.

The worked example under v1 (SCORING.md §10):
    d-01: duty 37 (93.5 vs target 95: 40 − 2 × 1.5), reform_tasks 13.05, zombie_cleanup 12,
          collaboration 25 → D = 87.05
    p-A (staff, 0.5/0.5): business 34.22 (base 50.22, −6 review errors, −10 no report),
          discipline 18 (two absences × −1), innovation 19.04 (14.04 + 5) → I = 71.26,
          total 0.5 × 87.05 + 0.5 × 71.26 = 79.155 → 79.16
    p-H1 (department head, 0.6/0.4): business 53.64, discipline 20, innovation 20 → I = 93.64,
          total 0.6 × 87.05 + 0.4 × 93.64 = 52.23 + 37.456 = 89.686 → 89.69
A cohort of two: floor(0.2 × 2) = 0 in tier 1, floor(0.1 × 2) = 0 in tier 3 → both tier 2;
grades A and B floor(0.3 × 2) = 0, D 0 → both C. H1 ranks 1, A ranks 2.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from api.ledger import AppraisalLedger
from api.store.logstore import log_store
from domain.errors import DomainError, NotFound
from domain.results import YearResults
from projections.events import fold
from projections.reading import results_at
from projections.replays import replay, replay_results, replayed_results
from tests.builders.corrected_scheme import (
    ALL_FOUR,
    absence_points,
    adopt,
    corrected,
    implementation_target,
    publish,
    staff_raters,
    staff_weights,
    wider_top_bands,
    without_department_head_raters,
    without_innovation,
)
from tests.builders.worked_example import build

V1_PEOPLE = {
    "p-A": {"total": "79.16", "department_score": "87.05", "individual_score": "71.26",
            "leaves": {"business": "34.22", "discipline": "18.00", "innovation": "19.04"}},
    "p-H1": {"total": "89.69", "department_score": "87.05", "individual_score": "93.64",
             "leaves": {"business": "53.64", "discipline": "20.00", "innovation": "20.00"}},
}


def ledger_with(*edits: Any) -> AppraisalLedger:
    ledger = AppraisalLedger("memory://")
    ledger.submit([*build(), publish(corrected(*edits))])
    return ledger


def report_for(*edits: Any) -> dict[str, Any]:
    return replay(ledger_with(*edits), 2025, "bianban@2")


def person(report: dict[str, Any], person_id: str) -> dict[str, Any]:
    return next(p for p in report["people"] if p["id"] == person_id)


def department(report: dict[str, Any], department_id: str = "d-01") -> dict[str, Any]:
    return next(d for d in report["departments"] if d["id"] == department_id)


def figure_value(results: YearResults, subject: str, key: str) -> str | None:
    score = results.subject(subject)
    assert score is not None
    figure = next(f for f in score.trace if f.key == key)
    return figure.as_dict()["value"]


def rules(entry: dict[str, Any]) -> dict[str, tuple[str | None, str | None]]:
    return {key: (change["old"], change["new"]) for key, change in entry["rules"].items()}


def leaves(entry: dict[str, Any]) -> dict[str, tuple[str | None, str | None]]:
    return {key: (change["old"], change["new"]) for key, change in entry["leaves"].items()}


def assert_unchanged(entry: dict[str, Any]) -> None:
    assert entry["old"] == entry["new"]
    assert (entry["changed"], entry["leaves"], entry["rules"], entry["not_applicable"]) == ([], {}, {}, [])


# --- (a) a composition weight: staff 0.5 / 0.5 -> 0.4 / 0.6 ---------------------------------------


def test_a_composition_weight() -> None:
    report = report_for(staff_weights)
    # A: 0.4 × 87.05 + 0.6 × 71.26 = 34.82 + 42.756 = 77.576 -> 77.58 (D, I and the leaves unchanged)
    a = person(report, "p-A")
    assert (a["old"]["total"], a["new"]["total"], a["delta"]) == ("79.16", "77.58", "-1.58")
    assert (a["new"]["department_score"], a["new"]["individual_score"]) == ("87.05", "71.26")
    assert a["changed"] == ["total"]
    assert (a["leaves"], a["rules"]) == ({}, {})  # a weight is no rule figure: only the total moves
    # H1 is a department head (0.6 / 0.4 unchanged); d-01 unchanged
    assert_unchanged(person(report, "p-H1"))
    assert_unchanged(department(report))
    assert report["summary"]["largest_moves"] == {"up": [], "down": [
        {"id": "p-A", "old": "79.16", "new": "77.58", "delta": "-1.58", "old_rank": 2, "new_rank": 2,
         "old_tier": 2, "new_tier": 2, "old_grade": "C", "new_grade": "C"}]}


# --- (b) a threshold: function_implementation_rate target 95 -> 90 -----------------------------------


def test_b_a_threshold() -> None:
    report = report_for(implementation_target)
    # d-01: 93.5 ≥ 90: shortfall max(0, 90 − 93.5) = 0 -> duty 40; D = 40 + 13.05 + 12 + 25 = 90.05
    d = department(report)
    assert (d["old"]["score"], d["new"]["score"], d["delta"]) == ("87.05", "90.05", "3.00")
    assert leaves(d) == {"duty": ("37.00", "40.00")}
    assert rules(d) == {"rule:implementation_shortfall": ("-3.00", "0.00")}
    assert d["rules"]["rule:implementation_shortfall"]["params"] == {"target": {"old": "95", "new": "90"}}
    # A: 0.5 × 90.05 + 0.5 × 71.26 = 45.025 + 35.63 = 80.655 -> 80.66
    a = person(report, "p-A")
    assert (a["new"]["department_score"], a["new"]["total"], a["delta"]) == ("90.05", "80.66", "1.50")
    assert a["changed"] == ["total", "department_score"] and a["leaves"] == {} and a["rules"] == {}
    # H1: 0.6 × 90.05 + 0.4 × 93.64 = 54.03 + 37.456 = 91.486 -> 91.49
    h1 = person(report, "p-H1")
    assert (h1["new"]["department_score"], h1["new"]["total"], h1["delta"]) == ("90.05", "91.49", "1.80")
    summary = report["summary"]
    assert (summary["total_changed"], summary["department_score_changed"], summary["rank_changed"]) == (2, 1, 0)
    assert [m["id"] for m in summary["largest_moves"]["up"]] == ["p-H1", "p-A"]  # 1.80 before 1.50


# --- (c) a rule's points: absence -1 -> -2 -------------------------------------------------------------


def test_c_a_rules_points() -> None:
    report = report_for(absence_points)
    # A: two absences × −2 = −4 -> discipline 20 − 4 = 16; I = 34.22 + 16 + 19.04 = 69.26;
    # total 0.5 × 87.05 + 0.5 × 69.26 = 43.525 + 34.63 = 78.155 -> 78.16
    a = person(report, "p-A")
    assert (a["new"]["individual_score"], a["new"]["total"], a["delta"]) == ("69.26", "78.16", "-1.00")
    assert leaves(a) == {"discipline": ("18.00", "16.00")}
    assert rules(a) == {"rule:absences": ("-2.00", "-4.00")}
    assert a["rules"]["rule:absences"]["params"] == {"points_each": {"old": "-1", "new": "-2"}}
    assert a["rules"]["rule:absences"]["rule"] == {"scheme": "bianban@2", "id": "absences",
                                                   "type": "per_occurrence", "path": "individual[1].rules[0]"}
    # H1 has no absences; d-01 reads no absences
    assert_unchanged(person(report, "p-H1"))
    assert_unchanged(department(report))


# --- (d) the rater shares: staff self 0.3 -> 0.2, in_charge 0.6 -> 0.5, department_head 0.4 -> 0.5 --------


def test_d_the_rater_shares() -> None:
    ledger = ledger_with(staff_raters)
    current, replayed = replay_results(fold(ledger), 2025, ("bianban", 2))
    # business 2025-06: others 0.5 × 80 + 0.5 × 70 = 75; composite 0.2 × 90 + 0.8 × 75 = 18 + 60 = 78
    # business 2025-12: others 0.5 × 90 + 0.5 × 80 = 85; composite 0.2 × 90 + 0.8 × 85 = 18 + 68 = 86
    # R = (78 + 86) / 2 = 82; base 60 × 0.82 = 49.2; business 49.2 − 6 − 10 = 33.2
    assert figure_value(replayed, "p-A", "period:business:2025-06") == "78.00"
    assert figure_value(replayed, "p-A", "period:business:2025-12") == "86.00"
    assert figure_value(replayed, "p-A", "base:business") == "49.20"
    # innovation 2025: others 0.5 × 70 + 0.5 × 60 = 65; composite 0.2 × 80 + 0.8 × 65 = 16 + 52 = 68;
    # base 20 × 0.68 = 13.6; + 5 -> 18.6
    assert figure_value(replayed, "p-A", "period:innovation:2025") == "68.00"
    assert figure_value(current, "p-A", "period:innovation:2025") == "70.20"

    report = replay(ledger, 2025, "bianban@2")
    # I = 33.2 + 18 + 18.6 = 69.8; total 0.5 × 87.05 + 0.5 × 69.8 = 43.525 + 34.9 = 78.425 -> 78.43
    a = person(report, "p-A")
    assert (a["new"]["individual_score"], a["new"]["total"], a["delta"]) == ("69.80", "78.43", "-0.73")
    assert leaves(a) == {"business": ("34.22", "33.20"), "innovation": ("19.04", "18.60")}
    assert rules(a) == {"base:business": ("50.22", "49.20"), "base:innovation": ("14.04", "13.60")}
    assert a["rules"]["base:business"]["params"] == {
        "others.department_head": {"old": "0.4", "new": "0.5"},
        "others.in_charge": {"old": "0.6", "new": "0.5"},
        "self": {"old": "0.3", "new": "0.2"}}
    # H1 is rated under the department_head shares, d-01 under the department's: unchanged
    assert_unchanged(person(report, "p-H1"))
    assert_unchanged(department(report))


# --- all four together --------------------------------------------------------------------------------


def test_all_four_corrections_together() -> None:
    report = report_for(*ALL_FOUR)
    # d-01: D = 90.05 (b)
    d = department(report)
    assert (d["new"]["score"], leaves(d), rules(d)) == (
        "90.05", {"duty": ("37.00", "40.00")}, {"rule:implementation_shortfall": ("-3.00", "0.00")})
    # A: business 33.2 (d), discipline 20 − 2 × 2 = 16 (c), innovation 18.6 (d) -> I = 67.8;
    # total 0.4 × 90.05 + 0.6 × 67.8 = 36.02 + 40.68 = 76.70 (a, b)
    a = person(report, "p-A")
    assert a["new"] == {**a["old"], "total": "76.70", "department_score": "90.05", "individual_score": "67.80"}
    assert a["delta"] == "-2.46"
    assert leaves(a) == {"business": ("34.22", "33.20"), "discipline": ("18.00", "16.00"),
                         "innovation": ("19.04", "18.60")}
    assert rules(a) == {"base:business": ("50.22", "49.20"), "base:innovation": ("14.04", "13.60"),
                        "rule:absences": ("-2.00", "-4.00")}
    # H1: only D moves: 0.6 × 90.05 + 0.4 × 93.64 = 54.03 + 37.456 = 91.486 -> 91.49
    h1 = person(report, "p-H1")
    assert h1["new"] == {**h1["old"], "total": "91.49", "department_score": "90.05"}
    assert (h1["leaves"], h1["rules"]) == ({}, {})
    # ranks, tiers and grades stay (H1 1, A 2; both tier 2, grade C)
    summary = report["summary"]
    assert {k: summary[k] for k in ("people", "departments", "people_changed", "departments_changed",
                                    "total_changed", "tier_changed", "grade_changed", "rank_changed",
                                    "coefficient_changed", "consequences_changed", "department_score_changed",
                                    "department_rank_changed", "not_applicable")} == {
        "people": 2, "departments": 1, "people_changed": 2, "departments_changed": 1, "total_changed": 2,
        "tier_changed": 0, "grade_changed": 0, "rank_changed": 0, "coefficient_changed": 0,
        "consequences_changed": 0, "department_score_changed": 1, "department_rank_changed": 0,
        "not_applicable": 0}
    assert [m["id"] for m in summary["largest_moves"]["up"]] == ["p-H1"]
    assert [m["id"] for m in summary["largest_moves"]["down"]] == ["p-A"]
    assert [c["path"] for c in report["scheme_diff"]] == [
        "supersedes", "reason", "composition.staff.department", "composition.staff.individual",
        "raters.staff.self", "raters.staff.others.in_charge", "raters.staff.others.department_head",
        "department.duty.rules.implementation_shortfall.target",
        "individual.discipline.rules.absences.points_each"]
    assert (report["year"], report["current"], report["replayed"]) == (
        2025, {"scheme": "bianban@1", "status": "provisional"}, {"scheme": "bianban@2", "status": "replay"})
    assert [p["id"] for p in report["people"]] == ["p-A", "p-H1"]  # ordered by id


def test_tier_and_grade_changes_are_counted() -> None:
    report = report_for(wider_top_bands)
    # floor(0.5 × 2) = 1: H1 (rank 1) moves to tier 1 (coefficient 1.1) and grade A, with the
    # tier-1 consequences; A stays tier 2, grade C
    h1 = person(report, "p-H1")
    assert (h1["old"]["tier"], h1["new"]["tier"], h1["old"]["grade"], h1["new"]["grade"]) == (2, 1, "C", "A")
    assert (h1["old"]["coefficient"], h1["new"]["coefficient"]) == ("1.0", "1.1")
    assert h1["new"]["consequences"] == [{"type": "innovation_award_nomination"}, {"type": "promotion_priority"}]
    assert h1["changed"] == ["tier", "grade", "coefficient", "consequences"]
    assert h1["delta"] == "0.00"
    assert_unchanged(person(report, "p-A"))
    summary = report["summary"]
    assert (summary["tier_changed"], summary["grade_changed"], summary["coefficient_changed"],
            summary["consequences_changed"], summary["total_changed"]) == (1, 1, 1, 1, 0)
    assert summary["largest_moves"] == {"up": [], "down": []}


# --- facts the new version has no place for -------------------------------------------------------------


def test_a_removed_leaf_lists_its_ratings_and_items_as_not_applicable() -> None:
    ledger = ledger_with(without_innovation)
    report = replay(ledger, 2025, "bianban@2")
    a = person(report, "p-A")
    # A's innovation ratings (self, L1, H1: #12, #13, #14) and innovation_adopted (#15) count no more
    assert [(n["ref"], n["kind"]) for n in a["not_applicable"]] == [
        ("2025:p-A#12", "rating"), ("2025:p-A#13", "rating"), ("2025:p-A#14", "rating"),
        ("2025:p-A#15", "occurrence")]
    assert a["not_applicable"][0]["why"] == "no rating leaf innovation in bianban@2"
    assert a["not_applicable"][3]["why"] == "item innovation_adopted is not read in bianban@2"
    # discipline is worth 40 now: 40 − 2 = 38; I = 34.22 + 38 = 72.22;
    # total 0.5 × 87.05 + 0.5 × 72.22 = 43.525 + 36.11 = 79.635 -> 79.64
    assert (a["new"]["individual_score"], a["new"]["total"]) == ("72.22", "79.64")
    assert leaves(a) == {"discipline": ("18.00", "38.00"), "innovation": ("19.04", None)}
    assert rules(a)["rule:adopted_proposals"] == ("5.00", None)
    h1 = person(report, "p-H1")
    assert len(h1["not_applicable"]) == 6  # 4 innovation ratings, 2 innovation_adopted
    assert report["summary"]["not_applicable"] == 10
    assert department(report)["not_applicable"] == []


def test_a_rater_role_without_weight_lists_those_ratings_as_not_applicable() -> None:
    report = report_for(without_department_head_raters)
    a = person(report, "p-A")
    # H1 rated A as department_head: business 2025-06 (#4), 2025-12 (#7), innovation (#14)
    assert [(n["ref"], n["why"]) for n in a["not_applicable"]] == [
        ("2025:p-A#4", "rater role department_head has no weight in bianban@2"),
        ("2025:p-A#7", "rater role department_head has no weight in bianban@2"),
        ("2025:p-A#14", "rater role department_head has no weight in bianban@2")]
    # business: 2025-06 0.3 × 90 + 0.7 × 80 = 83; 2025-12 0.3 × 90 + 0.7 × 90 = 90; R = 86.5 -> 51.9;
    # 51.9 − 16 = 35.9. innovation 0.3 × 80 + 0.7 × 70 = 73 -> 14.6 + 5 = 19.6.
    # I = 35.9 + 18 + 19.6 = 73.5; total 0.5 × 87.05 + 0.5 × 73.5 = 80.275 -> 80.28
    assert leaves(a) == {"business": ("34.22", "35.90"), "innovation": ("19.04", "19.60")}
    assert (a["new"]["individual_score"], a["new"]["total"]) == ("73.50", "80.28")
    assert person(report, "p-H1")["not_applicable"] == []


# --- a replay records nothing, and equals the results after adopting the same version -------------------


def store_fingerprint(ledger: AppraisalLedger) -> tuple[Any, ...]:
    """Everything a replay could have written: events, their positions, the command table, the
    hash chain's head."""
    from api.integrity.verification import walk

    store = log_store(ledger.recorder)
    walked = walk(store)
    assert walked.problem is None
    return (ledger.event_count(), ledger.recorder.max_notification_id(),
            sorted(json.dumps(row, sort_keys=True, default=str) for row in store.command_rows()),
            walked.size, walked.position, walked.chain)


def test_a_replay_records_nothing() -> None:
    ledger = ledger_with(*ALL_FOUR)
    before = store_fingerprint(ledger)
    replay(ledger, 2025, "bianban@2")
    replayed_results(ledger, 2025, "bianban@2")
    ledger.results(2025, ("bianban", 2))
    assert store_fingerprint(ledger) == before
    assert ledger.results(2025)["scheme"] == {"id": "bianban", "version": 1}


def without_history(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key not in ("status", "adoptions")}


@pytest.mark.parametrize("edits", [
    pytest.param((staff_weights,), id="a"), pytest.param((implementation_target,), id="b"),
    pytest.param((absence_points,), id="c"), pytest.param((staff_raters,), id="d"),
    pytest.param(ALL_FOUR, id="all-four"), pytest.param((wider_top_bands,), id="grading"),
    pytest.param((without_innovation,), id="removed-leaf"),
])
def test_a_replay_equals_the_results_after_adopting_the_same_version(edits: tuple[Any, ...]) -> None:
    ledger = ledger_with(*edits)
    replayed = replayed_results(ledger, 2025, "bianban@2")
    report = replay(ledger, 2025, "bianban@2")
    ledger.submit([adopt()])
    adopted = ledger.results(2025)
    assert adopted["scheme"] == {"id": "bianban", "version": 2}
    assert without_history(replayed) == without_history(adopted)
    assert without_history(results_at(ledger, 2025)) == without_history(adopted)
    # and the report's "new" side is what the adopted results show
    for entry in report["people"]:
        row = next(p for p in adopted["people"] if p["id"] == entry["id"])
        assert entry["new"] == {name: row[name] for name in entry["new"]}
    # after the adoption, replaying v2 changes nothing; replaying v1 shows the way back
    assert report_unchanged(replay(ledger, 2025, "bianban@2"))
    back = replay(ledger, 2025, "bianban@1")
    assert {p["id"]: p["new"]["total"] for p in back["people"]} == {
        p: V1_PEOPLE[p]["total"] for p in V1_PEOPLE}


def report_unchanged(report: dict[str, Any]) -> bool:
    return all(not (e["changed"] or e["leaves"] or e["rules"]) for e in report["people"] + report["departments"])


def test_replaying_the_years_own_version_changes_nothing() -> None:
    ledger = ledger_with(*ALL_FOUR)
    report = replay(ledger, 2025, "bianban@1")
    assert report["scheme_diff"] == []
    assert report_unchanged(report)
    assert report["summary"]["people_changed"] == 0


def test_replay_refuses_unknown_versions_years_and_references() -> None:
    ledger = ledger_with(*ALL_FOUR)
    with pytest.raises(NotFound, match="bianban@9 is not published"):
        replay(ledger, 2025, "bianban@9")
    with pytest.raises(NotFound, match="no appraisal is open for 2024"):
        replay(ledger, 2024, "bianban@2")
    with pytest.raises(DomainError) as refused:
        replay(ledger, 2025, "bianban")
    assert refused.value.field == "scheme"


def test_the_report_is_deterministic() -> None:
    first = report_for(*ALL_FOUR)
    second = report_for(*ALL_FOUR)
    assert first == second
