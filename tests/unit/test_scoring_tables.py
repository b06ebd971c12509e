"""Scoring as tables: recorded facts -> the figures people see (SCORING.md §1, §4–8, §10).

Every expected figure below was computed by hand from SCORING.md and is written as the 2-decimal
text of the results export; the arithmetic is in each row's comment. Scenarios run the real
handlers on an in-memory ledger (tests/builders/scenario.py explains the presets: a complete
department scores D = 100, a complete person I = 90).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from api.ledger import AppraisalLedger
from domain.grading import bands
from domain.scheme import Grade, builtin_document, parse_scheme
from tests.builders.scenario import (
    Scenario,
    department_row,
    figure,
    key,
    person_row,
    standard,
)
from tests.builders.worked_example import APPEAL, DEDUCTION, OVERTURN, build

BIANBAN = parse_scheme(builtin_document("bianban"))


# ==== §4 department leaves: shortfall, proportional, per_occurrence (negative) ==================

def _department(facts: dict[str, Any]) -> dict[str, Any]:
    """d-01 with the given facts; by default fir 95, zombie 100, reform 100 -> D 100."""
    scenario = Scenario().department("d-01", in_charge="p-L1", head="p-H1").open("d-01")
    for value in facts.get("fir", ["95"]):
        scenario.measure("d-01", "function_implementation_rate", value)
    for value in facts.get("zombie", ["100"]):
        scenario.measure("d-01", "zombie_cleanup_rate", value)
    for period, role, score in facts.get("reform", [("2025", "leadership_team", "100")]):
        role, _, rater = role.partition(":")
        scenario.rate("d-01", "reform_tasks", period, role, score, rater=rater or None)
    for count in facts.get("complaints", []):
        scenario.occur("d-01", "valid_complaint", count=count)
    return department_row(scenario.ledger().results(2025), "d-01")


DEPARTMENT_LEAVES = [
    # shortfall: duty 40, target 95, 2 per unit below it
    pytest.param({"fir": ["97"]}, {"duty": "40.00", "score": "100.00"}, id="shortfall-above-target"),
    pytest.param({"fir": ["95"]}, {"duty": "40.00", "score": "100.00"}, id="shortfall-at-target"),
    pytest.param({"fir": ["93.5"]}, {"duty": "37.00", "score": "97.00"},  # 40 - 2 x 1.5
                 id="shortfall-pro-rata-93.5"),
    pytest.param({"fir": ["90"]}, {"duty": "30.00", "score": "90.00"}, id="shortfall-90"),  # 40 - 2 x 5
    pytest.param({"fir": ["94.99"]}, {"duty": "39.98", "score": "99.98"},  # 40 - 2 x 0.01
                 id="shortfall-hundredth"),
    pytest.param({"fir": ["70"]}, {"duty": "0.00", "score": "60.00"},  # 40 - 50 -> clamped at 0
                 id="shortfall-clamped-at-0"),
    pytest.param({"fir": ["90", "96"]}, {"duty": "40.00", "score": "100.00"},
                 id="shortfall-latest-measurement-counts"),
    pytest.param({"fir": []}, {"duty": "40.00", "score": "100.00", "incomplete": True},
                 id="shortfall-required-missing-adjusts-nothing"),
    # proportional: zombie_cleanup 15 x min(value, 100) / 100
    pytest.param({"zombie": ["80"]}, {"zombie_cleanup": "12.00", "score": "97.00"}, id="proportional-80"),
    pytest.param({"zombie": ["100"]}, {"zombie_cleanup": "15.00", "score": "100.00"},
                 id="proportional-at-target"),
    pytest.param({"zombie": ["0"]}, {"zombie_cleanup": "0.00", "score": "85.00"}, id="proportional-0"),
    pytest.param({"zombie": []}, {"zombie_cleanup": "0.00", "score": "85.00", "incomplete": True},
                 id="proportional-required-missing"),
    # 15 x 0.333 = 4.995 exactly (a float gives 4.99499...); D 89.995; both round half up
    pytest.param({"zombie": [33.3]}, {"zombie_cleanup": "5.00", "score": "90.00"},
                 id="proportional-json-number-4.995-rounds-up"),
    # per_occurrence: collaboration 30, -5 per valid complaint, counts summed over events
    pytest.param({"complaints": []}, {"collaboration": "30.00", "score": "100.00"}, id="per-occurrence-none"),
    pytest.param({"complaints": [1]}, {"collaboration": "25.00", "score": "95.00"}, id="per-occurrence-one"),
    pytest.param({"complaints": [2, 1]}, {"collaboration": "15.00", "score": "85.00"},  # 30 - 5 x 3
                 id="per-occurrence-counts-summed"),
    pytest.param({"complaints": [7]}, {"collaboration": "0.00", "score": "70.00"},  # 30 - 35 -> 0
                 id="per-occurrence-clamped-at-0"),
    # rating with the department's raters (§10): self 0.3 x 80 + 0.7 x mean(85, 95) = 87 -> 13.05
    pytest.param({"reform": [("2025", "self", "80"), ("2025", "leadership_team:p-L2", "85"),
                             ("2025", "leadership_team:p-L3", "95")]},
                 {"reform_tasks": "13.05", "score": "98.05"}, id="rating-department-section-10"),
]


@pytest.mark.parametrize(("facts", "expected"), DEPARTMENT_LEAVES)
def test_department_leaves(facts, expected):
    row = _department(facts)
    shown = {**row["leaves"], "score": row["score"], "incomplete": row["incomplete"]}
    expected = {"incomplete": False, **expected}
    assert {name: shown[name] for name in expected} == expected


# ==== §4 proportional above its target: a scheme with zombie target 90 ===========================

def _capped_scheme() -> dict[str, Any]:
    document = builtin_document("bianban")
    document["id"] = "capped"
    document["department"][1]["children"][1]["base"]["target"] = "90"
    return document


@pytest.mark.parametrize(("value", "zombie"), [
    pytest.param("45", "7.50", id="below-target"),  # 15 x 45 / 90
    pytest.param("50", "8.33", id="below-target-non-terminating"),  # 15 x 50 / 90 = 8.333...
    pytest.param("90", "15.00", id="at-target"),
    pytest.param("95", "15.00", id="above-target-capped"),  # 15 x min(95, 90) / 90
])
def test_proportional_is_capped_at_its_target(value, zombie):
    scenario = Scenario(_capped_scheme()).department("d-01", in_charge="p-L1").open("d-01")
    scenario.complete_department("d-01", zombie=value)
    row = department_row(scenario.ledger().results(2025), "d-01")
    assert row["leaves"]["zombie_cleanup"] == zombie


# ==== §4 person leaves: excess_over_allowance, minimum_count, per_occurrence (±), clamping ========

def _person(facts: dict[str, Any]) -> dict[str, Any]:
    """Staff p-A of d-01 (D 100): business rated b by the leader in charge (base 60 x b/100),
    innovation rated v (20 x v/100), with the given counted items and measurements."""
    scenario = standard("p-A")
    scenario.rate("p-A", "business", "2025", "in_charge", facts.get("business", "100"))
    scenario.rate("p-A", "innovation", "2025", "in_charge", facts.get("innovation", "50"))
    for count in facts.get("reports", [1]):
        scenario.occur("p-A", "report_adopted_provincial", count=count)
    for name in ("review_total", "review_errors"):
        for value in facts.get(name, []):
            scenario.measure("p-A", name, value)
    for count in facts.get("absences", []):
        scenario.occur("p-A", "absence", count=count)
    for count in facts.get("adopted", []):
        scenario.occur("p-A", "innovation_adopted", count=count)
    return person_row(scenario.ledger().results(2025), "p-A")


PERSON_LEAVES = [
    # excess_over_allowance: -3 per error above floor(total x 1%); base 60
    pytest.param({"review_total": ["450"], "review_errors": ["3"]},
                 {"business": "60.00", "I": "90.00", "total": "95.00"}, id="excess-below-allowance-4"),
    pytest.param({"review_total": ["450"], "review_errors": ["4"]},
                 {"business": "60.00", "I": "90.00", "total": "95.00"}, id="excess-at-allowance-4"),
    pytest.param({"review_total": ["450"], "review_errors": ["5"]},
                 {"business": "57.00", "I": "87.00", "total": "93.50"}, id="excess-one-above"),
    pytest.param({"review_total": ["450"], "review_errors": ["6"]},
                 {"business": "54.00", "I": "84.00", "total": "92.00"}, id="excess-two-above"),
    pytest.param({"review_total": ["400"], "review_errors": ["6"]},  # §10: allowance 4 -> -6
                 {"business": "54.00", "I": "84.00", "total": "92.00"}, id="excess-section-10"),
    pytest.param({"review_total": ["99"], "review_errors": ["1"]},  # floor(0.99) = 0
                 {"business": "57.00", "I": "87.00", "total": "93.50"}, id="excess-allowance-floors-to-0"),
    pytest.param({"review_total": ["0"], "review_errors": ["0"]},
                 {"business": "60.00", "I": "90.00", "total": "95.00"}, id="excess-total-0-no-errors"),
    pytest.param({"review_total": ["0"], "review_errors": ["2"]},
                 {"business": "54.00", "I": "84.00", "total": "92.00"}, id="excess-total-0-two-errors"),
    pytest.param({"review_errors": ["1"]},  # optional total never recorded counts as 0
                 {"business": "57.00", "I": "87.00", "total": "93.50"}, id="excess-total-never-recorded"),
    pytest.param({"review_total": ["450"], "review_errors": ["9", "5"]},
                 {"business": "57.00", "I": "87.00", "total": "93.50"}, id="excess-latest-errors-count"),
    pytest.param({"review_total": ["450"], "review_errors": ["30"]},  # 60 - 3 x 26 -> 0
                 {"business": "0.00", "I": "30.00", "total": "65.00"}, id="excess-clamped-at-0"),
    # minimum_count: -10 when fewer than 1 adopted report
    pytest.param({"reports": []}, {"business": "50.00", "I": "80.00", "total": "90.00"},
                 id="minimum-below"),
    pytest.param({"reports": [1]}, {"business": "60.00", "I": "90.00", "total": "95.00"},
                 id="minimum-at"),
    pytest.param({"reports": [2]}, {"business": "60.00", "I": "90.00", "total": "95.00"},
                 id="minimum-above"),
    pytest.param({"reports": [], "review_total": ["450"], "review_errors": ["6"]},  # 60 - 6 - 10
                 {"business": "44.00", "I": "74.00", "total": "87.00"}, id="both-business-rules"),
    # per_occurrence, negative: discipline 20, -1 per absence
    pytest.param({"absences": []}, {"discipline": "20.00", "I": "90.00", "total": "95.00"},
                 id="absences-none"),
    pytest.param({"absences": [1]}, {"discipline": "19.00", "I": "89.00", "total": "94.50"},
                 id="absences-one"),
    pytest.param({"absences": [2, 1]}, {"discipline": "17.00", "I": "87.00", "total": "93.50"},
                 id="absences-counts-summed"),
    pytest.param({"absences": [25]}, {"discipline": "0.00", "I": "70.00", "total": "85.00"},
                 id="absences-clamped-at-0"),
    # per_occurrence, positive: innovation 20 x v/100, +5 per adopted proposal
    pytest.param({"adopted": [1]}, {"innovation": "15.00", "I": "95.00", "total": "97.50"},
                 id="adopted-one"),  # 10 + 5
    pytest.param({"innovation": "20", "adopted": [1, 2]},
                 {"innovation": "19.00", "I": "99.00", "total": "99.50"}, id="adopted-counts-summed"),
    pytest.param({"adopted": [1, 2]}, {"innovation": "20.00", "I": "100.00", "total": "100.00"},
                 id="adopted-clamped-at-full-points"),  # 10 + 15 = 25 -> 20
]


@pytest.mark.parametrize(("facts", "expected"), PERSON_LEAVES)
def test_person_leaves_and_totals(facts, expected):
    row = _person(facts)
    shown = {**row["leaves"], "I": row["individual_score"], "total": row["total"]}
    assert {name: shown[name] for name in expected} == expected
    assert row["department_score"] == "100.00"
    assert row["incomplete"] is False


# ==== §5 rating composites ========================================================================
# Staff p-A (d-01): self 0.3; others in_charge (p-L1) 0.6, department_head (p-H1) 0.4.
# Head p-H1 (d-01): self 0.3; others superior (p-S1) 0.4, in_charge (p-L1) 0.4, leadership_team 0.2.
# The innovation leaf (20 points, no rule triggered) shows 20 x R / 100 = R / 5.

COMPOSITES = [
    pytest.param("p-A", [("2025", "self", "80"), ("2025", "in_charge", "70"),
                         ("2025", "department_head", "60")],
                 "70.2", "14.04", id="staff-all-roles"),  # others 0.6x70+0.4x60=66; 0.3x80+0.7x66
    pytest.param("p-A", [("2025", "self", "80"), ("2025", "in_charge", "70")],
                 "73", "14.60", id="staff-missing-department-head"),  # others 70; 24 + 49
    pytest.param("p-A", [("2025", "self", "80"), ("2025", "department_head", "60")],
                 "66", "13.20", id="staff-missing-in-charge"),  # others 60; 24 + 42
    pytest.param("p-A", [("2025", "in_charge", "70"), ("2025", "department_head", "60")],
                 "66", "13.20", id="no-self-rating-composite-is-others"),
    pytest.param("p-A", [("2025-06", "self", "100"), ("2025-12", "self", "80"),
                         ("2025-12", "in_charge", "70"), ("2025-12", "department_head", "60")],
                 "70.2", "14.04", id="self-only-period-skipped"),
    pytest.param("p-A", [("2025-06", "self", "90"), ("2025-12", "self", "85")],
                 None, "0.00", id="only-self-ratings-leaf-0-incomplete"),
    pytest.param("p-A", [("2025-06", "self", "90"), ("2025-06", "in_charge", "80"),
                         ("2025-06", "department_head", "70"), ("2025-12", "self", "90"),
                         ("2025-12", "in_charge", "90"), ("2025-12", "department_head", "80")],
                 "83.7", "16.74", id="two-periods-mean"),  # (80.2 + 87.2) / 2
    pytest.param("p-A", [("2025-06", "in_charge", "80"), ("2025-06", "department_head", "70"),
                         ("2025-12", "self", "90"), ("2025-12", "in_charge", "90"),
                         ("2025-12", "department_head", "80")],
                 "81.6", "16.32", id="self-in-one-period-only"),  # (76 + 87.2) / 2
    pytest.param("p-A", [("2025-04", "in_charge", "80"), ("2025-08", "in_charge", "85"),
                         ("2025-12", "in_charge", "86")],
                 "251/3", "16.73", id="three-periods-non-terminating-mean"),  # 251/15 = 16.733...
    pytest.param("p-H1", [("2025", "self", "95"), ("2025", "superior", "90"), ("2025", "in_charge", "85"),
                          ("2025", "leadership_team:p-L2", "80"), ("2025", "leadership_team:p-L3", "90")],
                 "89.4", "17.88", id="head-all-roles-section-10"),  # others 36+34+17=87; 28.5+60.9
    pytest.param("p-H1", [("2025", "leadership_team:p-L2", "80"), ("2025", "leadership_team:p-L3", "85"),
                          ("2025", "leadership_team:p-L4", "86")],
                 "251/3", "16.73", id="head-group-mean-of-three-non-terminating"),
    pytest.param("p-H1", [("2025", "self", "90"), ("2025", "superior", "80"),
                          ("2025", "leadership_team:p-L2", "70")],
                 # others (0.4x80 + 0.2x70) / 0.6 = 230/3; 27 + 0.7 x 230/3 = 242/3; /5 = 16.133...
                 "242/3", "16.13", id="head-missing-in-charge-renormalised"),
    pytest.param("p-H1", [("2025", "self", "90"), ("2025", "superior", "90"), ("2025", "in_charge", "70")],
                 "83", "16.60", id="head-missing-leadership-team"),  # others (36+28)/0.8 = 80; 27+56
]


def _rated(subject: str, ratings: list[tuple[str, str, str]]) -> Scenario:
    scenario = standard("p-A")
    scenario.open("p-H1")
    scenario.complete_person("p-H1" if subject == "p-A" else "p-A")
    scenario.rate(subject, "business", "2025", "in_charge", "100")
    scenario.occur(subject, "report_adopted_provincial")
    for period, role, score in ratings:
        role, _, rater = role.partition(":")
        scenario.rate(subject, "innovation", period, role, score, rater=rater or None)
    return scenario


@pytest.mark.parametrize(("subject", "ratings", "r_exact", "innovation"), COMPOSITES)
def test_rating_composites(subject, ratings, r_exact, innovation):
    ledger = _rated(subject, ratings).ledger()
    row = person_row(ledger.results(2025), subject)
    assert row["leaves"]["innovation"] == innovation
    assert row["incomplete"] is (r_exact is None)
    base = figure(ledger.explain(key(subject)), "base:innovation")
    assert base.get("inputs", {}).get("R") == r_exact


def test_a_missing_role_group_is_shown_in_the_explanation():
    ledger = _rated("p-A", [("2025", "self", "80"), ("2025", "in_charge", "70")]).ledger()
    period = figure(ledger.explain("2025:p-A"), "period:innovation:2025")
    assert any("department_head" in note for note in period["notes"])


def test_a_replaced_rating_is_struck_and_the_later_one_counts():
    scenario = _rated("p-A", [("2025", "self", "80"), ("2025", "department_head", "60")])
    earlier = scenario.rate("p-A", "innovation", "2025", "in_charge", "50", at="2025-06-01T10:00:00+08:00")
    later = scenario.rate("p-A", "innovation", "2025", "in_charge", "70", at="2025-12-20T10:00:00+08:00")
    ledger = scenario.ledger()
    assert person_row(ledger.results(2025), "p-A")["leaves"]["innovation"] == "14.04"  # as with 70
    struck = ledger.explain("2025:p-A")["struck"]
    assert [s["command"] for s in struck] == [earlier]
    assert later not in [s["command"] for s in struck]


def test_the_latest_rating_is_latest_in_the_log_not_in_business_time():
    scenario = _rated("p-A", [("2025", "self", "80"), ("2025", "department_head", "60")])
    scenario.rate("p-A", "innovation", "2025", "in_charge", "70", at="2025-12-20T10:00:00+08:00")
    scenario.rate("p-A", "innovation", "2025", "in_charge", "50", at="2025-06-01T10:00:00+08:00")
    # others 0.6 x 50 + 0.4 x 60 = 54; 0.3 x 80 + 0.7 x 54 = 61.8; 20 x 0.618
    row = person_row(scenario.ledger().results(2025), "p-A")
    assert row["leaves"]["innovation"] == "12.36"


# ==== §1 rounding =================================================================================

def test_worked_example_total_79_155_rounds_up():
    ledger = AppraisalLedger("memory://")
    ledger.submit(build())
    results = ledger.results(2025)
    assert department_row(results, "d-01")["score"] == "87.05"
    assert person_row(results, "p-A")["total"] == "79.16"
    assert figure(ledger.explain("2025:p-A"), "total")["exact"] == "79.155"
    assert person_row(results, "p-H1")["total"] == "89.69"  # 89.686
    ledger.submit([DEDUCTION])
    assert person_row(ledger.results(2025), "p-H1")["total"] == "69.69"
    ledger.submit([APPEAL, OVERTURN])
    assert person_row(ledger.results(2025), "p-H1")["total"] == "89.69"
    assert [s["command"] for s in ledger.explain("2025:p-H1")["struck"]] == [DEDUCTION["id"]]


ROUNDING = [
    # innovation rated 70.05 -> 14.01; I 94.01; total 50 + 47.005 = 97.005 (a float gives 97.00499...)
    pytest.param({"innovation": "70.05"}, {"I": "94.01", "total": "97.01"}, "97.005",
                 id="total-ends-in-5-rounds-up"),
    # innovation over three periods: R 251/3, leaf 251/15; total 50 + (80 + 251/15) / 2 = 98.3666...
    pytest.param({"innovation_periods": ["80", "85", "86"]},
                 {"innovation": "16.73", "I": "96.73", "total": "98.37"}, "2951/30",
                 id="non-terminating-mean"),
    # zombie 33.3 -> D 89.995 ("90.00"); total 0.5 x 89.995 + 45 = 89.9975
    pytest.param({"zombie": "33.3"}, {"D": "90.00", "total": "90.00"}, "89.9975",
                 id="department-89.995-rounds-up"),
]


@pytest.mark.parametrize(("facts", "expected", "exact_total"), ROUNDING)
def test_rounding_half_up_at_the_end(facts, expected, exact_total):
    scenario = Scenario().department("d-01", in_charge="p-L1", head="p-H1").person("p-A", "staff", "d-01")
    scenario.open("d-01", "p-A")
    scenario.complete_department("d-01", zombie=facts.get("zombie", "100"))
    scenario.rate("p-A", "business", "2025", "in_charge", "100")
    scenario.occur("p-A", "report_adopted_provincial")
    periods = facts.get("innovation_periods")
    if periods:
        for month, score in zip(("2025-04", "2025-08", "2025-12"), periods, strict=True):
            scenario.rate("p-A", "innovation", month, "in_charge", score)
    else:
        scenario.rate("p-A", "innovation", "2025", "in_charge", facts.get("innovation", "50"))
    ledger = scenario.ledger()
    row = person_row(ledger.results(2025), "p-A")
    shown = {**row["leaves"], "I": row["individual_score"], "total": row["total"],
             "D": row["department_score"]}
    assert {name: shown[name] for name in expected} == expected
    assert figure(ledger.explain("2025:p-A"), "total")["exact"] == exact_total


def test_ranking_uses_the_rounded_total():
    # p-X: innovation 70.01 -> 14.002, I 94.002, total 97.001; p-Y: 14, 94, 97: all shown equal,
    # so both share rank 1 (n = 2: every position is tier 2, grade C)
    scenario = standard("p-X", "p-Y")
    scenario.complete_person("p-X", innovation="70.01")
    scenario.complete_person("p-Y", innovation="70")
    results = scenario.ledger().results(2025)
    rows = [person_row(results, p) for p in ("p-X", "p-Y")]
    assert [(r["total"], r["rank"], r["tier"], r["grade"]) for r in rows] == [
        ("97.00", 1, 2, "C"), ("97.00", 1, 2, "C")]
    assert results["unresolved_ties"] == []


# ==== §6 totals: floor at 0 =======================================================================

def test_the_total_is_floored_at_0():
    # d-02: fir 75 -> 40 - 40 = 0; reform 0; zombie 0; 6 complaints -> 30 - 30 = 0: D = 0.
    # p-B: business rated 10 -> 6 (one report); 20 absences -> discipline 0; innovation 0: I = 6.
    # total 0.5 x 0 + 0.5 x 6 - 20 = -17 -> 0.
    scenario = Scenario().department("d-02", in_charge="p-L2").person("p-B", "staff", "d-02")
    scenario.open("d-02", "p-B")
    scenario.complete_department("d-02", fir="75", zombie="0", reform="0", complaints=6)
    scenario.complete_person("p-B", business="10", innovation="0")
    scenario.occur("p-B", "absence", count=20)
    scenario.adjust("p-B")
    ledger = scenario.ledger()
    row = person_row(ledger.results(2025), "p-B")
    assert (row["department_score"], row["individual_score"], row["adjustments"], row["total"]) == (
        "0.00", "6.00", "-20.00", "0.00")
    total = figure(ledger.explain("2025:p-B"), "total")
    assert total["exact"] == "0"
    assert any("-17" in note for note in total["notes"])


# ==== §7 grading a cohort: vetoes and ties ========================================================

def _cohort(business: list[str]) -> Scenario:
    """Staff p-01..p-nn of d-01 (D 100), business rated b_i by p-L1, innovation 50, one report:
    total = 50 + 0.5 x (0.6 b + 20 + 10) = 65 + 0.3 b."""
    scenario = Scenario().department("d-01", in_charge="p-L1", head="p-H1")
    people = [f"p-{i:02d}" for i in range(1, len(business) + 1)]
    for person in people:
        scenario.person(person, "staff", "d-01")
    scenario.open("d-01", *people)
    scenario.complete_department("d-01")
    for person, score in zip(people, business, strict=True):
        scenario.complete_person(person, business=score)
    return scenario


DISTINCT = ["100", "95", "90", "80", "70", "60", "50", "40", "30", "20"]
# totals:    95.00  93.50  92.00  89.00  86.00  83.00  80.00  77.00  74.00  71.00
# n = 10: tier 1 = positions 1-2, tier 3 = position 10; grades A 1-3, B 4-6, C 7-9, D 10.


def _placements(results: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(p["id"], p["rank"], p["tier"], p["grade"], p["coefficient"]) for p in results["people"]]


def test_a_cohort_of_ten_is_placed_by_its_shares():
    results = _cohort(DISTINCT).ledger().results(2025)
    assert [p["total"] for p in results["people"]] == [
        "95.00", "93.50", "92.00", "89.00", "86.00", "83.00", "80.00", "77.00", "74.00", "71.00"]
    assert _placements(results) == [
        ("p-01", 1, 1, "A", "1.1"), ("p-02", 2, 1, "A", "1.1"), ("p-03", 3, 2, "A", "1.0"),
        ("p-04", 4, 2, "B", "1.0"), ("p-05", 5, 2, "B", "1.0"), ("p-06", 6, 2, "B", "1.0"),
        ("p-07", 7, 2, "C", "1.0"), ("p-08", 8, 2, "C", "1.0"), ("p-09", 9, 2, "C", "1.0"),
        ("p-10", 10, 3, "D", "0.9")]
    consequences = {p["id"]: [c["type"] for c in p["consequences"]] for p in results["people"]}
    assert consequences["p-01"] == ["innovation_award_nomination", "promotion_priority"]
    assert consequences["p-10"] == ["admonishment_talk", "off_post_training"]
    assert consequences["p-05"] == []


@pytest.mark.parametrize(("vetoed", "expected"), [
    pytest.param(["p-01"], [
        ("p-01", 10, 3, "D", "0.9"), ("p-02", 1, 1, "A", "1.1"), ("p-03", 2, 1, "A", "1.1"),
        ("p-04", 3, 2, "A", "1.0"), ("p-05", 4, 2, "B", "1.0"), ("p-06", 5, 2, "B", "1.0"),
        ("p-07", 6, 2, "B", "1.0"), ("p-08", 7, 2, "C", "1.0"), ("p-09", 8, 2, "C", "1.0"),
        ("p-10", 9, 2, "C", "1.0")], id="top-scorer-vetoed-placed-last"),
    # two vetoed > floor(0.1 x 10) = 1: tier 3 and D take the last 2 positions
    pytest.param(["p-01", "p-05"], [
        ("p-01", 9, 3, "D", "0.9"), ("p-02", 1, 1, "A", "1.1"), ("p-03", 2, 1, "A", "1.1"),
        ("p-04", 3, 2, "A", "1.0"), ("p-05", 10, 3, "D", "0.9"), ("p-06", 4, 2, "B", "1.0"),
        ("p-07", 5, 2, "B", "1.0"), ("p-08", 6, 2, "B", "1.0"), ("p-09", 7, 2, "C", "1.0"),
        ("p-10", 8, 2, "C", "1.0")], id="vetoed-count-above-bottom-share"),
])
def test_vetoed_people_are_tier_3_grade_d_and_last_but_keep_their_score(vetoed, expected):
    scenario = _cohort(DISTINCT)
    for person in vetoed:
        scenario.veto(person)
    results = scenario.ledger().results(2025)
    assert _placements(results) == expected
    p01 = person_row(results, "p-01")
    assert (p01["total"], p01["vetoed"]) == ("95.00", True)
    assert [c["type"] for c in p01["consequences"]] == ["admonishment_talk", "off_post_training"]


TIES = [
    # positions 2 and 3 tie at 92.00: tier 1 vs tier 2 -> unresolved, no rank/tier/grade/coefficient
    pytest.param(["100", "90", "90", "80", "70", "60", "50", "40", "30", "20"], [
        ("p-01", 1, 1, "A", "1.1"), ("p-02", None, None, None, None), ("p-03", None, None, None, None),
        ("p-04", 4, 2, "B", "1.0"), ("p-05", 5, 2, "B", "1.0"), ("p-06", 6, 2, "B", "1.0"),
        ("p-07", 7, 2, "C", "1.0"), ("p-08", 8, 2, "C", "1.0"), ("p-09", 9, 2, "C", "1.0"),
        ("p-10", 10, 3, "D", "0.9")],
        [{"people": ["p-02", "p-03"], "total": "92.00"}], id="straddles-tier-boundary"),
    # positions 6 and 7 tie at 83.00: both tier 2 but grade B vs C -> unresolved
    pytest.param(["100", "95", "90", "80", "70", "60", "60", "40", "30", "20"], [
        ("p-01", 1, 1, "A", "1.1"), ("p-02", 2, 1, "A", "1.1"), ("p-03", 3, 2, "A", "1.0"),
        ("p-04", 4, 2, "B", "1.0"), ("p-05", 5, 2, "B", "1.0"), ("p-06", None, None, None, None),
        ("p-07", None, None, None, None), ("p-08", 8, 2, "C", "1.0"), ("p-09", 9, 2, "C", "1.0"),
        ("p-10", 10, 3, "D", "0.9")],
        [{"people": ["p-06", "p-07"], "total": "83.00"}], id="straddles-grade-boundary"),
    # positions 5 and 6 tie at 86.00: both tier 2, grade B -> they share rank 5; next is 7
    pytest.param(["100", "95", "90", "80", "70", "70", "50", "40", "30", "20"], [
        ("p-01", 1, 1, "A", "1.1"), ("p-02", 2, 1, "A", "1.1"), ("p-03", 3, 2, "A", "1.0"),
        ("p-04", 4, 2, "B", "1.0"), ("p-05", 5, 2, "B", "1.0"), ("p-06", 5, 2, "B", "1.0"),
        ("p-07", 7, 2, "C", "1.0"), ("p-08", 8, 2, "C", "1.0"), ("p-09", 9, 2, "C", "1.0"),
        ("p-10", 10, 3, "D", "0.9")],
        [], id="within-one-band-shares-a-rank"),
]


@pytest.mark.parametrize(("business", "expected", "unresolved"), TIES)
def test_ties(business, expected, unresolved):
    results = _cohort(business).ledger().results(2025)
    assert _placements(results) == expected
    assert results["unresolved_ties"] == unresolved


def test_a_tie_break_resolves_a_straddling_tie():
    scenario = _cohort(["100", "90", "90", "80", "70", "60", "50", "40", "30", "20"])
    scenario.tie_break(["p-03", "p-02"])
    results = scenario.ledger().results(2025)
    assert results["unresolved_ties"] == []
    assert _placements(results)[:4] == [
        ("p-01", 1, 1, "A", "1.1"), ("p-02", 3, 2, "A", "1.0"), ("p-03", 2, 1, "A", "1.1"),
        ("p-04", 4, 2, "B", "1.0")]
    p03 = person_row(results, "p-03")
    assert [c["type"] for c in p03["consequences"]] == ["innovation_award_nomination", "promotion_priority"]



def test_people_in_an_unresolved_tie_get_no_consequences():
    results = _cohort(["100", "90", "90", "80", "70", "60", "50", "40", "30", "20"]).ledger().results(2025)
    assert [person_row(results, p)["consequences"] for p in ("p-02", "p-03")] == [[], []]


def test_the_members_of_an_unresolved_tie_share_one_list_of_it():
    """Early in a year the whole cohort is tied: a list of every member for each member would be
    quadratic (3,000 people: 9 million names held by one render)."""
    ledger = _cohort(["100", "90", "90", "90", "70", "60", "50", "40", "30", "20"]).ledger()
    placements = ledger.compute(2025).placements
    assert placements["p-02"].unresolved_tie == ["p-02", "p-03", "p-04"]
    assert placements["p-02"].unresolved_tie is placements["p-03"].unresolved_tie is placements["p-04"].unresolved_tie


ORDER_KEYS = [
    # p-X in d-01 (D 100), p-Y in d-02 (D 90 after 2 complaints): totals 0.5 D + 0.5 I
    # equal totals 90.00: the higher I (p-Y: 90 vs 80, p-X has no report) goes first
    pytest.param({"p-X": ("d-01", "100", "50", 0), "p-Y": ("d-02", "100", "50", 1)},
                 [("p-X", "90.00", "80.00", 2), ("p-Y", "90.00", "90.00", 1)], id="then-by-individual-score"),
    # equal totals 95.00 and I 90.00: p-X business 60 (+ innovation 10), p-Y business 50 (no report,
    # + innovation 20): the higher first leaf (business) goes first
    pytest.param({"p-X": ("d-01", "100", "50", 1), "p-Y": ("d-01", "100", "100", 0)},
                 [("p-X", "95.00", "90.00", 1), ("p-Y", "95.00", "90.00", 2)], id="then-by-business"),
    # equal keys all through: a shared rank (n = 2 has one band only: tier 2, grade C)
    pytest.param({"p-X": ("d-01", "100", "50", 1), "p-Y": ("d-01", "100", "50", 2)},
                 [("p-X", "95.00", "90.00", 1), ("p-Y", "95.00", "90.00", 1)], id="equal-keys-share"),
]


@pytest.mark.parametrize(("people", "expected"), ORDER_KEYS)
def test_the_order_key_after_the_total(people, expected):
    scenario = Scenario().department("d-01", in_charge="p-L1").department("d-02", in_charge="p-L2")
    for person, (department, _, _, _) in people.items():
        scenario.person(person, "staff", department)
    scenario.open("d-01", "d-02", *people)
    scenario.complete_department("d-01")
    scenario.complete_department("d-02", complaints=2)
    for person, (_, business, innovation, reports) in people.items():
        scenario.complete_person(person, business=business, innovation=innovation, reports=reports)
    results = scenario.ledger().results(2025)
    assert [(p["id"], p["total"], p["individual_score"], p["rank"]) for p in results["people"]] == expected


def test_incomplete_people_stay_in_the_cohort():
    # p-10 has no business rating: business 0 - 0 (one report) -> 0, incomplete; I = 0 + 20 + 10,
    # total 65.00, still ranked last of ten
    scenario = _cohort(DISTINCT[:9])
    scenario.person("p-10", "staff", "d-01").open("p-10")
    scenario.rate("p-10", "innovation", "2025", "in_charge", "50")
    scenario.occur("p-10", "report_adopted_provincial")
    results = scenario.ledger().results(2025)
    row = person_row(results, "p-10")
    assert (row["total"], row["incomplete"], row["rank"], row["tier"], row["grade"]) == (
        "65.00", True, 10, 3, "D")
    assert person_row(results, "p-09")["incomplete"] is False


def test_a_person_whose_department_has_no_appraisal_is_incomplete_with_d_0():
    scenario = Scenario().department("d-01", in_charge="p-L1").person("p-A", "staff", "d-01").open("p-A")
    scenario.complete_person("p-A")
    row = person_row(scenario.ledger().results(2025), "p-A")
    assert (row["department_score"], row["individual_score"], row["total"], row["incomplete"]) == (
        "0.00", "90.00", "45.00", True)


def test_a_person_of_an_incomplete_department_is_incomplete():
    scenario = Scenario().department("d-01", in_charge="p-L1").person("p-A", "staff", "d-01")
    scenario.open("d-01", "p-A")
    scenario.measure("d-01", "function_implementation_rate", "95")  # zombie_cleanup_rate missing
    scenario.rate("d-01", "reform_tasks", "2025", "leadership_team", "100")
    scenario.complete_person("p-A")
    results = scenario.ledger().results(2025)
    assert department_row(results, "d-01")["incomplete"] is True
    assert person_row(results, "p-A")["incomplete"] is True


# ==== §8 appeals ==================================================================================

def _deducted() -> tuple[Scenario, str]:
    """p-A (total 95) with an over_quota_hiring deduction recorded by hr-office on 2025-12-22."""
    scenario = standard("p-A")
    scenario.complete_person("p-A")
    return scenario, scenario.adjust("p-A")


APPEAL_OUTCOMES = [
    pytest.param("upheld", None, "-20.00", "75.00", False, id="upheld-no-change"),
    pytest.param("overturned", None, "0.00", "95.00", True, id="overturned-struck"),
    pytest.param("amended", "-10", "-10.00", "85.00", False, id="amended-to-minus-10"),
    pytest.param("amended", "-0.125", "-0.13", "94.88", False,  # 95 - 0.125 = 94.875
                 id="amended-negative-display-rounds-away-from-0"),
]


@pytest.mark.parametrize(("outcome", "points", "adjustments", "total", "struck"), APPEAL_OUTCOMES)
def test_appeal_outcomes_on_a_deduction(outcome, points, adjustments, total, struck):
    scenario, deduction = _deducted()
    appeal = scenario.appeal("p-A", deduction, at="2025-12-26T09:00:00+08:00")
    scenario.decide(appeal, outcome, points)
    ledger = scenario.ledger()
    row = person_row(ledger.results(2025), "p-A")
    assert (row["adjustments"], row["total"]) == (adjustments, total)
    explanation = ledger.explain("2025:p-A")
    assert [s["command"] for s in explanation["struck"]] == ([deduction] if struck else [])


def test_the_deduction_before_any_appeal():
    scenario, _ = _deducted()
    row = person_row(scenario.ledger().results(2025), "p-A")
    assert (row["adjustments"], row["total"]) == ("-20.00", "75.00")


def test_an_overturned_absence_no_longer_counts():
    scenario = standard("p-A")
    scenario.complete_person("p-A")
    absence = scenario.occur("p-A", "absence", count=2)
    scenario.occur("p-A", "absence")
    appeal = scenario.appeal("p-A", absence, at="2025-09-10T09:00:00+08:00")
    scenario.decide(appeal, "overturned", at="2025-09-20T09:00:00+08:00")
    ledger = scenario.ledger()
    assert person_row(ledger.results(2025), "p-A")["leaves"]["discipline"] == "19.00"  # 20 - 1
    assert [s["command"] for s in ledger.explain("2025:p-A")["struck"]] == [absence]


def test_an_overturned_measurement_gives_way_to_the_latest_one_still_standing():
    scenario = Scenario().department("d-01", in_charge="p-L1", head="p-H1").open("d-01")
    scenario.complete_department("d-01", fir="96")
    later = scenario.measure("d-01", "function_implementation_rate", "90")
    appeal = scenario.appeal("d-01", later, at="2025-12-15T09:00:00+08:00")  # by the head, p-H1
    before = scenario.ledger()
    assert department_row(before.results(2025), "d-01")["leaves"]["duty"] == "30.00"  # 40 - 2 x 5
    scenario.decide(appeal, "overturned")
    ledger = scenario.ledger()
    assert department_row(ledger.results(2025), "d-01")["leaves"]["duty"] == "40.00"  # 96 counts
    assert later in [s["command"] for s in ledger.explain("2025:d-01")["struck"]]


def test_an_overturned_only_measurement_is_as_if_never_recorded():
    scenario = Scenario().department("d-01", in_charge="p-L1", head="p-H1").open("d-01")
    scenario.complete_department("d-01", fir="90")
    measurement = scenario.commands[-3]["id"]  # the fir measurement of the preset
    assert scenario.commands[-3]["input"] == "function_implementation_rate"
    appeal = scenario.appeal("d-01", measurement, at="2025-12-15T09:00:00+08:00")
    scenario.decide(appeal, "overturned")
    row = department_row(scenario.ledger().results(2025), "d-01")
    assert (row["leaves"]["duty"], row["incomplete"]) == ("40.00", True)  # rule adjusts nothing


def test_an_overturned_veto_is_lifted():
    scenario = _cohort(DISTINCT)
    veto = scenario.veto("p-01")
    appeal = scenario.appeal("p-01", veto, at="2025-12-28T09:00:00+08:00")
    scenario.decide(appeal, "overturned")
    results = scenario.ledger().results(2025)
    assert _placements(results)[0] == ("p-01", 1, 1, "A", "1.1")
    assert person_row(results, "p-01")["vetoed"] is False


REFUSED_APPEALS = [
    # amended points more severe than the catalogue's -20
    pytest.param("amended-harsher", "points", "never-harsher", id="amended-harsher-than-original"),
    # filed after 30 days from the item (2025-12-22T09:00 -> 2026-01-21T09:00)
    pytest.param("late", "at", "appeal-window", id="after-the-30-day-window"),
    pytest.param("not-subject", "actor", "appeal-by-subject", id="by-someone-other-than-the-subject"),
    pytest.param("head-for-staff", "actor", "appeal-by-subject", id="by-the-subjects-head"),
    pytest.param("recorder-decides", "actor", "independent-decision", id="decided-by-the-recorder"),
]


@pytest.mark.parametrize(("case", "field", "rule"), REFUSED_APPEALS)
def test_refused_appeals_record_nothing(case, field, rule):
    scenario, deduction = _deducted()
    if case == "amended-harsher":
        appeal = scenario.appeal("p-A", deduction, at="2025-12-26T09:00:00+08:00")
        scenario.decide(appeal, "amended", "-25")
    elif case == "late":
        scenario.appeal("p-A", deduction, at="2026-01-21T09:00:01+08:00")
    elif case == "not-subject":
        scenario.appeal("p-A", deduction, at="2025-12-26T09:00:00+08:00", actor="p-L1")
    elif case == "head-for-staff":
        scenario.appeal("p-A", deduction, at="2025-12-26T09:00:00+08:00", actor="p-H1")
    else:
        appeal = scenario.appeal("p-A", deduction, at="2025-12-26T09:00:00+08:00")
        scenario.decide(appeal, "overturned", actor="hr-office")
    error, before, after = scenario.refusal()
    assert (error.field, error.rule) == (field, rule)
    assert after == before


def test_an_appeal_on_the_last_day_of_the_window_is_accepted():
    scenario, deduction = _deducted()
    scenario.appeal("p-A", deduction, at="2026-01-21T09:00:00+08:00")  # exactly 30 days
    scenario.ledger()


@pytest.mark.parametrize(("filed", "accepted"), [
    pytest.param("2026-02-09T09:00:00+08:00", True, id="within-30-days-of-publication"),
    pytest.param("2026-02-09T09:00:01+08:00", False, id="after-30-days-of-publication"),
])
def test_the_window_runs_from_the_publication_when_that_is_later(filed, accepted):
    scenario = standard("p-A")
    scenario.complete_person("p-A")
    absence = scenario.occur("p-A", "absence", at="2025-09-01T09:00:00+08:00")
    scenario.publish_year(at="2026-01-10T09:00:00+08:00")
    scenario.appeal("p-A", absence, at=filed)
    if accepted:
        scenario.ledger()
    else:
        error, before, after = scenario.refusal()
        assert (error.field, error.rule, after) == ("at", "appeal-window", before)


# ==== §7 department ranking and the staffing cut ==================================================

def _departments(rows: list[tuple[str, int, int]]) -> dict[str, Any]:
    """(department, approved posts, complaints): D = 100 - 5 x complaints."""
    scenario = Scenario()
    for department, posts, _ in rows:
        scenario.department(department, in_charge="p-L1", approved_posts=posts)
    scenario.open(*(department for department, _, _ in rows))
    for department, _, complaints in rows:
        scenario.complete_department(department, complaints=complaints)
    results = scenario.ledger().results(2025)
    return {d["id"]: (d["score"], d["rank"], d["consequences"]) for d in results["departments"]}


def cut(posts: int) -> list[dict[str, Any]]:
    return [{"type": "staffing_cut", "posts": posts}]


DEPARTMENT_RANKING = [
    pytest.param([("d-01", 8, 0), ("d-02", 4, 1)],
                 {"d-01": ("100.00", 1, []), "d-02": ("95.00", 2, cut(1))},
                 id="4-posts-0.4-at-least-1"),
    pytest.param([("d-01", 8, 0), ("d-02", 15, 1)],
                 {"d-01": ("100.00", 1, []), "d-02": ("95.00", 2, cut(2))},
                 id="15-posts-1.5-rounds-up-to-2"),
    pytest.param([("d-01", 8, 0), ("d-02", 24, 1)],
                 {"d-01": ("100.00", 1, []), "d-02": ("95.00", 2, cut(2))},
                 id="24-posts-2.4-rounds-down-to-2"),
    pytest.param([("d-01", 8, 0), ("d-02", 25, 1)],
                 {"d-01": ("100.00", 1, []), "d-02": ("95.00", 2, cut(3))},
                 id="25-posts-2.5-rounds-up-to-3"),
    pytest.param([("d-01", 8, 0), ("d-02", 0, 1)],
                 {"d-01": ("100.00", 1, []), "d-02": ("95.00", 2, cut(0))},
                 id="0-posts-0"),
    pytest.param([("d-01", 10, 0), ("d-02", 12, 1), ("d-03", 30, 2)],
                 {"d-01": ("100.00", 1, []), "d-02": ("95.00", 2, []), "d-03": ("90.00", 3, cut(3))},
                 id="only-the-last-of-three"),
    pytest.param([("d-01", 8, 0), ("d-02", 15, 1), ("d-03", 4, 1)],
                 {"d-01": ("100.00", 1, []), "d-02": ("95.00", 2, cut(2)), "d-03": ("95.00", 2, cut(1))},
                 id="tied-last-both-cut"),
    pytest.param([("d-01", 8, 3)], {"d-01": ("85.00", 1, [])}, id="single-department-no-cut"),
]


@pytest.mark.parametrize(("rows", "expected"), DEPARTMENT_RANKING)
def test_department_ranking_and_staffing_cut(rows, expected):
    assert _departments(rows) == expected


# ==== §7 bands of the bianban scheme ==============================================================

T = BIANBAN.grading.tiers
G = BIANBAN.grading.grades

BANDS = [
    # n, vetoed: tiers (1 = first floor(0.2n), 3 = last max(floor(0.1n), vetoed)); grades A/B
    # floor(0.3n) each from the top, D max(floor(0.1n), vetoed) from the bottom, C the rest
    pytest.param(1, 0, [2], ["C"], id="n1"),
    pytest.param(3, 0, [2, 2, 2], ["C", "C", "C"], id="n3"),
    pytest.param(10, 0, [1, 1, 2, 2, 2, 2, 2, 2, 2, 3], ["A"] * 3 + ["B"] * 3 + ["C"] * 3 + ["D"], id="n10"),
    pytest.param(11, 0, [1, 1] + [2] * 8 + [3], ["A"] * 3 + ["B"] * 3 + ["C"] * 4 + ["D"], id="n11"),
    pytest.param(48, 0, [1] * 9 + [2] * 35 + [3] * 4, ["A"] * 14 + ["B"] * 14 + ["C"] * 16 + ["D"] * 4,
                 id="n48"),
    pytest.param(1, 1, [3], ["D"], id="n1-one-vetoed"),
    pytest.param(3, 1, [2, 2, 3], ["C", "C", "D"], id="n3-one-vetoed"),
    pytest.param(10, 3, [1, 1, 2, 2, 2, 2, 2, 3, 3, 3], ["A"] * 3 + ["B"] * 3 + ["C"] + ["D"] * 3,
                 id="n10-three-vetoed"),
    pytest.param(10, 5, [1, 1, 2, 2, 2, 3, 3, 3, 3, 3], ["A"] * 3 + ["B"] * 2 + ["D"] * 5,
                 id="n10-five-vetoed-d-overlaps-b"),
    pytest.param(10, 9, [1] + [3] * 9, ["A"] + ["D"] * 9, id="n10-nine-vetoed-overlaps-tier-1-and-a"),
    pytest.param(48, 6, [1] * 9 + [2] * 33 + [3] * 6, ["A"] * 14 + ["B"] * 14 + ["C"] * 14 + ["D"] * 6,
                 id="n48-six-vetoed"),
]


@pytest.mark.parametrize(("n", "vetoed", "tiers", "grades"), BANDS)
def test_bands(n, vetoed, tiers, grades):
    assert bands(T, n, vetoed) == tiers
    assert bands(G, n, vetoed) == grades


# Grades A 20% from the top, B the rest, then C 20% and D 10% filling from the bottom (§7: entries
# after the one without a share fill from the bottom; the bottom one takes at least the vetoed).
TWO_FROM_THE_BOTTOM = [Grade(id="A", share=Decimal("0.2")), Grade(id="B"),
                       Grade(id="C", share=Decimal("0.2")), Grade(id="D", share=Decimal("0.1"))]


@pytest.mark.parametrize(("vetoed", "grades"), [
    pytest.param(0, ["A", "A", "B", "B", "B", "B", "B", "C", "C", "D"], id="none-vetoed"),
    pytest.param(3, ["A", "A", "B", "B", "B", "C", "C", "D", "D", "D"], id="three-vetoed-push-c-up"),
])
def test_bands_with_two_entries_after_the_rest(vetoed, grades):
    assert bands(TWO_FROM_THE_BOTTOM, 10, vetoed) == grades

