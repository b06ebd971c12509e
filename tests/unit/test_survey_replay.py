"""Surveys and rule changes (SCORING.md §9, §12): the scheme diff and the replay show a survey
input and leaf added, removed or re-weighted; rounds a version has no place for are not applicable.

The worked example (SCORING.md §10) with the demo's `bianban` v2 (collaboration 30 -> 20, a
10-point `public_satisfaction` leaf, proportional, target 100) adopted and the §12 example's two
rounds on d-01 (rate 91 %):
    d-01: duty 37 + reform 13.05 + zombie 12 + collaboration 20 − 5 = 15 + satisfaction 9.10 = 86.15
    p-A:  0.5 × 86.15 + 0.5 × 71.26 = 78.705 -> 78.71;  p-H1: 0.6 × 86.15 + 0.4 × 93.64 = 89.146 -> 89.15
"""

from __future__ import annotations

import copy
from typing import Any

from api.cli.demo import SATISFACTION_REASON, satisfaction_scheme_document
from api.ledger import AppraisalLedger
from domain.scheme import builtin_document, parse_scheme
from domain.scheme_diff import diff_schemes, diff_text
from projections.replays import replay
from tests.builders.corrected_scheme import adopt, publish
from tests.builders.survey_scheme import ROUND_1, ROUND_2
from tests.builders.worked_example import build

V1 = parse_scheme(builtin_document("bianban"))
V2_DOCUMENT = satisfaction_scheme_document()
V2 = parse_scheme(V2_DOCUMENT)


def v3(edit: Any) -> dict[str, Any]:
    document = copy.deepcopy(V2_DOCUMENT)
    document.update(version=3, supersedes=2, reason="满意度测评调整 survey changed")
    edit(document["inputs"]["public_satisfaction"])
    return document


def _rounds() -> list[dict[str, Any]]:
    return [{"type": "survey.record", "id": f"round-{n}", "actor": "hr-office", "at": at, "appraisal": "2025:d-01",
             "input": "public_satisfaction", "counts": counts, "evidence": f"第{n}轮"}
            for n, (counts, at) in enumerate([(ROUND_1, "2026-01-12T09:00:00+08:00"),
                                              (ROUND_2, "2026-01-13T09:00:00+08:00")], start=1)]


def adopted(*later: dict[str, Any]) -> AppraisalLedger:
    ledger = AppraisalLedger("memory://")
    ledger.submit([*build(), publish(V2_DOCUMENT), adopt(2), *_rounds(), *later])
    return ledger


def entry(report: dict[str, Any], subject: str) -> dict[str, Any]:
    return next(e for e in [*report["departments"], *report["people"]] if e["id"] == subject)


# --- the scheme diff -----------------------------------------------------------------------------------

def test_the_diff_from_v1_shows_the_survey_input_and_leaf_added_and_the_points_moved() -> None:
    changes = [(c.path, c.kind, c.old, c.new) for c in diff_schemes(V1, V2)]
    assert changes == [
        ("supersedes", "added", None, "1"),
        ("reason", "added", None, SATISFACTION_REASON),
        ("inputs.public_satisfaction", "added", None,
         "survey %; options satisfied 1, basically_satisfied 0.6, dissatisfied 0; min_responses 30"),
        ("department.collaboration.points", "changed", "30", "20"),
        ("department.public_satisfaction", "added", None, "10 points, base proportional"),
    ]
    assert [(c.path, c.kind) for c in diff_schemes(V2, V1)][2:] == [
        ("inputs.public_satisfaction", "removed"), ("department.collaboration.points", "changed"),
        ("department.public_satisfaction", "removed")]


def test_the_diff_shows_a_survey_reweighted() -> None:
    def edit(survey: dict[str, Any]) -> None:
        survey["min_responses"] = 50
        survey["options"][1]["weight"] = "0.50"
        survey["options"].pop(2)
        survey["options"].append({"id": "unsure", "name": {"zh": "不清楚", "en": "unsure"}, "weight": "0.3"})
    new = parse_scheme(v3(edit))
    changes = [(c.path, c.old, c.new) for c in diff_schemes(V2, new) if c.category == "inputs"]
    assert changes == [
        ("inputs.public_satisfaction.min_responses", "30", "50"),
        ("inputs.public_satisfaction.options.basically_satisfied.weight", "0.6", "0.50"),
        ("inputs.public_satisfaction.options.dissatisfied", "不满意 dissatisfied, weight 0", None),
        ("inputs.public_satisfaction.options.unsure", None, "不清楚 unsure, weight 0.3"),
    ]
    assert "选项 option basically_satisfied · 权重 weight: 0.6 → 0.50" in diff_text(V2, new)


def test_reordered_options_are_one_change() -> None:
    new = parse_scheme(v3(lambda survey: survey["options"].reverse()))
    assert [(c.path, c.new) for c in diff_schemes(V2, new) if c.category == "inputs"] == [
        ("inputs.public_satisfaction.options.order", "dissatisfied, basically_satisfied, satisfied")]


# --- the replay -------------------------------------------------------------------------------------

def test_replaying_v1_beside_v2_before_adoption_shows_the_leaf_added_and_the_year_incomplete() -> None:
    ledger = AppraisalLedger("memory://")
    ledger.submit([*build(), publish(V2_DOCUMENT)])
    report = replay(ledger, 2025, "bianban@2")
    d = entry(report, "d-01")
    # no survey recorded under v1: public_satisfaction is missing under v2 (0 points, incomplete)
    assert d["leaves"] == {"collaboration": {"old": "25.00", "new": "15.00"},
                           "public_satisfaction": {"old": None, "new": "0.00"}}
    assert (d["old"]["score"], d["new"]["score"], d["new"]["incomplete"]) == ("87.05", "77.05", True)
    assert entry(report, "p-A")["new"]["incomplete"] is True  # their department is incomplete


def test_after_adoption_the_results_carry_the_survey_leaf() -> None:
    results = adopted().results(2025)
    d = next(row for row in results["departments"] if row["id"] == "d-01")
    assert (d["score"], d["incomplete"]) == ("86.15", False)
    assert d["leaves"] == {"duty": "37.00", "reform_tasks": "13.05", "zombie_cleanup": "12.00",
                           "collaboration": "15.00", "public_satisfaction": "9.10"}
    totals = {p["id"]: p["total"] for p in results["people"]}
    assert totals == {"p-A": "78.71", "p-H1": "89.15"}


def test_replaying_v1_after_adoption_lists_the_rounds_as_not_applicable() -> None:
    report = replay(adopted(), 2025, "bianban@1")
    d = entry(report, "d-01")
    assert (d["old"]["score"], d["new"]["score"]) == ("86.15", "87.05")
    assert d["leaves"]["public_satisfaction"] == {"old": "9.10", "new": None}
    assert d["rules"]["survey:public_satisfaction"]["old"] == "91.00"
    assert [(n["command"], n["kind"], n["why"]) for n in d["not_applicable"]] == [
        (f"round-{n}", "survey", "survey public_satisfaction is not read in bianban@1") for n in (1, 2)]


def test_replaying_a_reweighted_survey_shows_the_rate_and_the_weights_that_moved() -> None:
    # basically_satisfied 0.6 -> 0.5: 65 + 0.5 × 13 = 71.5 / 80 = 89.375 % -> 8.9375 -> 8.94;
    # D = 37 + 13.05 + 12 + 15 + 8.9375 = 85.9875 -> 85.99
    ledger = adopted(publish(v3(lambda s: s["options"][1].update(weight="0.5")), command_id="v3"))
    d = entry(replay(ledger, 2025, "bianban@3"), "d-01")
    assert (d["new"]["score"], d["leaves"]) == ("85.99", {"public_satisfaction": {"old": "9.10", "new": "8.94"}})
    survey = d["rules"]["survey:public_satisfaction"]
    assert (survey["old"], survey["new"]) == ("91.00", "89.38")
    assert survey["params"] == {"weight.basically_satisfied": {"old": "0.6", "new": "0.5"}}
    assert d["not_applicable"] == []


def test_replaying_a_higher_min_responses_makes_the_survey_missing() -> None:
    ledger = adopted(publish(v3(lambda s: s.update(min_responses=100)), command_id="v3"))
    d = entry(replay(ledger, 2025, "bianban@3"), "d-01")
    assert (d["new"]["score"], d["new"]["incomplete"]) == ("77.05", True)
    assert d["rules"]["survey:public_satisfaction"]["new"] is None


def test_a_new_option_counts_0_in_earlier_rounds_and_a_removed_one_makes_them_not_applicable() -> None:
    added = adopted(publish(v3(lambda s: s["options"].append(
        {"id": "unsure", "name": {"zh": "不清楚", "en": "unsure"}, "weight": "0.3"})), command_id="v3"))
    assert entry(replay(added, 2025, "bianban@3"), "d-01")["leaves"] == {}  # still 91 %
    removed = adopted(publish(v3(lambda s: s["options"].pop(1)), command_id="v3"))
    d = entry(replay(removed, 2025, "bianban@3"), "d-01")
    assert [(n["command"], n["why"]) for n in d["not_applicable"]] == [
        (f"round-{n}", "option(s) basically_satisfied of public_satisfaction are not in bianban@3") for n in (1, 2)]
    assert (d["leaves"]["public_satisfaction"]["new"], d["new"]["incomplete"]) == ("0.00", True)


def test_a_version_reading_the_input_as_a_measurement_lists_the_rounds_as_not_applicable() -> None:
    def as_measurement(survey: dict[str, Any]) -> None:
        for part in ("options", "min_responses"):
            survey.pop(part)
        survey.update(kind="measurement", required=True)
    d = entry(replay(adopted(publish(v3(as_measurement), command_id="v3")), 2025, "bianban@3"), "d-01")
    assert [n["command"] for n in d["not_applicable"]] == ["round-1", "round-2"]
    assert d["new"]["incomplete"] is True  # the required measurement was never recorded
