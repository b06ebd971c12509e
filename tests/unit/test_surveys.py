"""Surveys, the qualitative evaluation (SCORING.md §12), as tables: scheme documents with a survey
input and their refusals, `survey.record` and its refusals, the rate and what reads it, rounds
struck on appeal, too few responses. Every expected figure is computed by hand in its comment.

The scheme is the demo's `bianban` v2 as a scheme of its own (tests/builders/survey_scheme.py): department
tree duty 40 + key_tasks 30 + collaboration 20 + public_satisfaction 10 (proportional to the
survey's rate, target 100); options satisfied 1, basically_satisfied 0.6, dissatisfied 0;
min_responses 30. `complete_department` makes the other leaves full: D = 90 + the survey leaf.
"""

from __future__ import annotations

from typing import Any

import pytest

from api.cli.demo import satisfaction_scheme_document
from api.documents.text import explanation_text
from domain.errors import InvalidDocument
from domain.scheme import parse_scheme
from tests.builders.scenario import Scenario, department_row, figure, key
from tests.builders.survey_scheme import ROUND_1, ROUND_2, survey_scheme


def _scenario(document: dict[str, Any] | None = None) -> Scenario:
    scenario = Scenario(document or survey_scheme()).department("d-01", in_charge="p-L1", head="p-H1")
    scenario.open("d-01").complete_department("d-01")
    return scenario


def _row(scenario: Scenario) -> dict[str, Any]:
    return department_row(scenario.ledger().results(2025), "d-01")


# ==== scheme documents ===========================================================================

def _problems(document: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(InvalidDocument) as caught:
        parse_scheme(document)
    return caught.value.problems


def _edit(edit: Any) -> dict[str, Any]:
    document = survey_scheme()
    edit(document["inputs"]["public_satisfaction"], document)
    return document


def test_the_demo_v2_parses_and_keeps_the_survey_in_its_canonical_document() -> None:
    scheme = parse_scheme(satisfaction_scheme_document())
    survey = scheme.inputs["public_satisfaction"]
    assert (survey.kind, survey.min_responses) == ("survey", 30)
    assert [(o.id, str(o.weight)) for o in survey.options or ()] == [
        ("satisfied", "1"), ("basically_satisfied", "0.6"), ("dissatisfied", "0")]
    document = scheme.document()["inputs"]["public_satisfaction"]
    assert document["options"][1] == {"id": "basically_satisfied", "name": {"zh": "基本满意", "en": "basically satisfied"},
                                      "weight": "0.6"}
    assert "options" not in scheme.document()["inputs"]["function_implementation_rate"]
    assert scheme.inputs_read("department") >= {"public_satisfaction"}
    assert sum(node.points for node in scheme.department) == 100


SCHEME_REFUSALS = [
    pytest.param(lambda s, d: s["options"][1].update(weight="1.2"),
                 "inputs.public_satisfaction.options[1].weight", id="weight-over-1"),
    pytest.param(lambda s, d: s["options"][2].update(weight="-0.1"),
                 "inputs.public_satisfaction.options[2].weight", id="weight-negative"),
    pytest.param(lambda s, d: s["options"][0].update(weight="0.9"),
                 "inputs.public_satisfaction.options", id="no-option-weighted-1"),
    pytest.param(lambda s, d: s["options"][2].update(id="satisfied"),
                 "inputs.public_satisfaction.options[2].id", id="duplicate-option-id"),
    pytest.param(lambda s, d: s.update(options=[]), "inputs.public_satisfaction.options", id="no-options"),
    pytest.param(lambda s, d: s.pop("options"), "inputs.public_satisfaction.options", id="options-missing"),
    pytest.param(lambda s, d: s.update(min_responses=0), "inputs.public_satisfaction.min_responses",
                 id="min-responses-0"),
    pytest.param(lambda s, d: s.pop("min_responses"), "inputs.public_satisfaction.min_responses",
                 id="min-responses-missing"),
    pytest.param(lambda s, d: d["inputs"]["zombie_cleanup_rate"].update(min_responses=3),
                 "inputs.zombie_cleanup_rate.min_responses", id="min-responses-on-a-measurement"),
    pytest.param(lambda s, d: d["department"][2].update(rules=[{
        "id": "bad", "type": "per_occurrence", "input": "public_satisfaction", "points_each": "-1"}]),
        "department[2].rules[0].input", id="survey-read-as-a-count"),
    pytest.param(lambda s, d: d["department"][2].update(rules=[{
        "id": "bad", "type": "minimum_count", "input": "public_satisfaction", "minimum": "1", "penalty": "-1"}]),
        "department[2].rules[0].input", id="survey-read-by-minimum-count"),
]


@pytest.mark.parametrize(("edit", "path"), SCHEME_REFUSALS)
def test_a_broken_survey_input_is_refused_naming_its_path(edit: Any, path: str) -> None:
    assert path in [where for where, _ in _problems(_edit(edit))]


def test_a_weight_outside_the_number_grammar_is_refused_as_number_format() -> None:
    document = _edit(lambda s, d: s["options"][1].update(weight="6e-1"))
    with pytest.raises(InvalidDocument) as caught:
        parse_scheme(document)
    assert caught.value.rule == "number-format"
    assert caught.value.problems[0][0] == "inputs.public_satisfaction.options[1].weight"


def test_publishing_a_broken_survey_is_refused_and_records_nothing() -> None:
    scenario = Scenario()
    ledger = scenario.ledger()
    before = ledger.event_count()
    document = _edit(lambda s, d: s["options"][0].update(weight="0.9"))
    error, count, after = scenario.refusal({"type": "scheme.publish", "id": "x", "actor": "admin",
                                            "document": document})
    assert (error.field, error.rule) == ("document.inputs.public_satisfaction.options", "scheme-invariants")
    assert count == after == before


# ==== the rate and what reads it =================================================================

SURVEY_TABLE = [
    # SCORING.md §12: 80 responses, weighted 65 + 0.6 × 13 = 72.8, rate 91 %, 10 × 0.91 = 9.10
    pytest.param({}, [ROUND_1, ROUND_2], {"leaf": "9.10", "score": "99.10", "rate": "91"}, id="section-12-example"),
    # one round: 40 + 4.8 = 44.8 / 50 = 89.6 % -> 8.96
    pytest.param({}, [ROUND_1], {"leaf": "8.96", "score": "98.96", "rate": "89.6"}, id="one-round"),
    # three rounds: 72.8 + (10 + 0.6 × 20) = 94.8 / 120 = 79 % -> 7.90
    pytest.param({}, [ROUND_1, ROUND_2, {"satisfied": 10, "basically_satisfied": 20, "dissatisfied": 10}],
                 {"leaf": "7.90", "score": "97.90", "rate": "79"}, id="three-rounds"),
    # weights 1 / 0.5 / 0.2: 65 + 6.5 + 0.4 = 71.9 / 80 = 89.875 % -> 8.9875 -> 8.99
    pytest.param({"weights": {"basically_satisfied": "0.5", "dissatisfied": "0.2"}}, [ROUND_1, ROUND_2],
                 {"leaf": "8.99", "score": "98.99", "rate": "89.875"}, id="other-weights"),
    # every answer weighted 1: 100 % -> 10
    pytest.param({"weights": {"basically_satisfied": "1", "dissatisfied": "1"}}, [ROUND_1],
                 {"leaf": "10.00", "score": "100.00", "rate": "100"}, id="all-weighted-1"),
    # all dissatisfied: 0 % -> 0
    pytest.param({}, [{"satisfied": 0, "basically_satisfied": 0, "dissatisfied": 30}],
                 {"leaf": "0.00", "score": "90.00", "rate": "0"}, id="all-dissatisfied"),
    # rounding at .xx5: 1801 / 2000 = 90.05 % -> 9.005 exactly -> 9.01 (half up; a float gives 9.0049…)
    pytest.param({}, [{"satisfied": 1801, "basically_satisfied": 0, "dissatisfied": 199}],
                 {"leaf": "9.01", "score": "99.01", "rate": "90.05"}, id="rounds-half-up-at-xx5"),
    # 2 / 3 = 66.66… % -> 6.666… -> 6.67; D 96.666… -> 96.67: exact until shown
    pytest.param({}, [{"satisfied": 20, "basically_satisfied": 0, "dissatisfied": 10}],
                 {"leaf": "6.67", "score": "96.67", "rate": "200/3"}, id="a-third-stays-exact"),
    # proportional with target 90: min(91, 90) / 90 -> the full 10 points
    pytest.param({"target": "90"}, [ROUND_1, ROUND_2], {"leaf": "10.00", "score": "100.00", "rate": "91"},
                 id="proportional-above-target"),
    # proportional with target 95: 10 × 91 / 95 = 9.5789… -> 9.58
    pytest.param({"target": "95"}, [ROUND_1, ROUND_2], {"leaf": "9.58", "score": "99.58", "rate": "91"},
                 id="proportional-target-95"),
    # shortfall, target 95, 0.5 per point: 10 − 0.5 × (95 − 91) = 8
    pytest.param({"shortfall": ("95", "0.5")}, [ROUND_1, ROUND_2], {"leaf": "8.00", "score": "98.00", "rate": "91"},
                 id="shortfall-below-target"),
    # shortfall, target 90: 91 ≥ 90, nothing deducted
    pytest.param({"shortfall": ("90", "0.5")}, [ROUND_1, ROUND_2], {"leaf": "10.00", "score": "100.00", "rate": "91"},
                 id="shortfall-above-target"),
    # shortfall, target 95, 0.25 per point, one round at 89.6: 10 − 0.25 × 5.4 = 8.65
    pytest.param({"shortfall": ("95", "0.25")}, [ROUND_1], {"leaf": "8.65", "score": "98.65", "rate": "89.6"},
                 id="shortfall-pro-rata"),
    # too few responses (SCORING.md §12, min_responses 100 > 80): missing, incomplete, leaf 0
    pytest.param({"min_responses": 100}, [ROUND_1, ROUND_2],
                 {"leaf": "0.00", "score": "90.00", "rate": None, "incomplete": True}, id="too-few-responses"),
    # exactly min_responses counts
    pytest.param({"min_responses": 80}, [ROUND_1, ROUND_2], {"leaf": "9.10", "score": "99.10", "rate": "91"},
                 id="exactly-min-responses"),
    # no round at all: missing
    pytest.param({}, [], {"leaf": "0.00", "score": "90.00", "rate": None, "incomplete": True}, id="no-round"),
    # too few responses read by shortfall: the rule adjusts nothing (the leaf keeps its 10), incomplete
    pytest.param({"shortfall": ("95", "0.5"), "min_responses": 100}, [ROUND_1, ROUND_2],
                 {"leaf": "10.00", "score": "100.00", "rate": None, "incomplete": True},
                 id="shortfall-too-few-adjusts-nothing"),
]


@pytest.mark.parametrize(("variant", "rounds", "expected"), SURVEY_TABLE)
def test_survey_table(variant: dict[str, Any], rounds: list[dict[str, int]], expected: dict[str, Any]) -> None:
    scenario = _scenario(survey_scheme(**variant))
    for counts in rounds:
        scenario.survey("d-01", counts)
    ledger = scenario.ledger()
    row = department_row(ledger.results(2025), "d-01")
    assert row["leaves"]["public_satisfaction"] == expected["leaf"]
    assert row["score"] == expected["score"]
    assert row["incomplete"] is expected.get("incomplete", False)
    doc = ledger.explain(key("d-01"))
    survey = figure(doc, "survey:public_satisfaction")
    assert survey["inputs"]["responses"] == str(sum(sum(counts.values()) for counts in rounds))
    if expected["rate"] is None:
        assert survey["value"] is None and survey["inputs"]["rate"] == "missing"
        assert any("public_satisfaction" in why and "fewer than" in why for why in doc["summary"]["incomplete"])
        assert any("fewer than min_responses" in note for note in survey["notes"])
    else:
        assert survey["exact"] == expected["rate"]


def test_the_explanation_shows_each_round_the_totals_and_the_rate() -> None:
    scenario = _scenario()
    first = scenario.survey("d-01", ROUND_1, evidence="第一轮:服务对象问卷")
    second = scenario.survey("d-01", ROUND_2, at="2025-12-12T15:00:00+08:00", evidence="第二轮:基层单位问卷")
    ledger = scenario.ledger()
    doc = ledger.explain(key("d-01"))
    survey = figure(doc, "survey:public_satisfaction")
    assert (survey["inputs"]["rounds"], survey["inputs"]["responses"], survey["inputs"]["weighted"],
            survey["inputs"]["rate"]) == ("2", "80", "72.8", "91")
    assert survey["params"] == {"min_responses": "30", "weight.satisfied": "1", "weight.basically_satisfied": "0.6",
                                "weight.dissatisfied": "0"}
    refs = [e["ref"] for e in doc["events"] if e["command"] in (first, second)]
    assert survey["events"] == refs
    rounds = [figure(doc, f"survey-round:{ref}") for ref in refs]
    assert [r["exact"] for r in rounds] == ["44.8", "28"]  # 40 + 0.6 × 8; 25 + 0.6 × 5
    assert rounds[1]["inputs"] | {"recorded_at": "-"} == {
        "count.satisfied": "25", "count.basically_satisfied": "5", "count.dissatisfied": "0", "responses": "30",
        "recorder": "hr-office", "at": "2025-12-12T15:00:00+08:00", "recorded_at": "-",
        "evidence": "第二轮:基层单位问卷"}
    base = figure(doc, "base:public_satisfaction")
    assert base["inputs"]["public_satisfaction"] == "91" and base["events"] == refs
    event = next(e for e in doc["events"] if e["command"] == second)
    assert (event["kind"], event["input"], event["counts"]) == ("survey", "public_satisfaction", ROUND_2)
    text = explanation_text(doc)
    assert "满意度测评 survey 群众满意度 public satisfaction: 率 rate 91.00 (exact 91) = 100 × 加权 weighted 72.8 / 答卷 responses 80" in text
    assert "satisfied 25, basically_satisfied 5, dissatisfied 0 → 30 responses, weighted 28; 记录人 recorder hr-office, at 2025-12-12T15:00" in text
    assert "(第一轮:服务对象问卷)" in text


# ==== appeals of a round (SCORING.md §8) =========================================================

APPEALED_AT = "2025-12-15T09:00:00+08:00"


@pytest.mark.parametrize(("outcome", "min_responses", "expected"), [
    # overturned: round 2 stops counting -> round 1 alone, 89.6 % -> 8.96
    pytest.param("overturned", 30, {"leaf": "8.96", "incomplete": False, "struck": True}, id="overturned"),
    # overturned below min_responses (50 < 60): the input is missing, the appraisal incomplete
    pytest.param("overturned", 60, {"leaf": "0.00", "incomplete": True, "struck": True}, id="overturned-too-few"),
    # upheld: no change
    pytest.param("upheld", 30, {"leaf": "9.10", "incomplete": False, "struck": False}, id="upheld"),
])
def test_an_appealed_round(outcome: str, min_responses: int, expected: dict[str, Any]) -> None:
    scenario = _scenario(survey_scheme(min_responses=min_responses))
    scenario.survey("d-01", ROUND_1)
    target = scenario.survey("d-01", ROUND_2)
    appeal = scenario.appeal("d-01", target, at=APPEALED_AT)
    scenario.decide(appeal, outcome)
    ledger = scenario.ledger()
    row = department_row(ledger.results(2025), "d-01")
    assert (row["leaves"]["public_satisfaction"], row["incomplete"]) == (expected["leaf"], expected["incomplete"])
    doc = ledger.explain(key("d-01"))
    struck = [s for s in doc["struck"] if s["command"] == target]
    assert bool(struck) is expected["struck"]
    if expected["struck"]:
        assert struck[0]["kind"] == "survey" and struck[0]["why"].startswith(f"overturned on appeal {appeal}")
        survey = figure(doc, "survey:public_satisfaction")
        assert [s["command"] for s in survey["struck"]] == [target]
        assert survey["inputs"]["responses"] == "50"
        assert "~~struck~~" in explanation_text(doc)


def test_a_round_cannot_be_amended_and_the_refusal_records_nothing() -> None:
    scenario = _scenario()
    target = scenario.survey("d-01", ROUND_1)
    appeal = scenario.appeal("d-01", target, at=APPEALED_AT)
    error, before, after = scenario.refusal({"type": "appeal.decide", "id": "x", "actor": "admin-2",
                                             "at": "2026-01-20T09:00:00+08:00", "appeal": appeal,
                                             "outcome": "amended", "points": "-1", "reason": "r"})
    assert (error.field, error.rule, before) == ("outcome", "amend-deductions", after)


def test_only_the_subject_appeals_a_round() -> None:
    scenario = _scenario()
    target = scenario.survey("d-01", ROUND_1)
    error, before, after = scenario.refusal({"type": "appeal.file", "id": "x", "actor": "p-L1", "at": APPEALED_AT,
                                             "appraisal": key("d-01"), "target": target, "grounds": "g"})
    assert (error.rule, before) == ("appeal-by-subject", after)


# ==== survey.record refusals =====================================================================

def _refusal(counts: Any, **fields: Any) -> Any:
    scenario = _scenario()
    scenario.person("p-A", "staff", "d-01")
    scenario.open("p-A")
    body = {"type": "survey.record", "id": "bad", "actor": "hr-office", "at": "2025-12-10T09:00:00+08:00",
            "appraisal": key("d-01"), "input": "public_satisfaction", "counts": counts, **fields}
    error, before, after = scenario.refusal(body)
    assert before == after, "a refused round records nothing"
    return error


@pytest.mark.parametrize(("counts", "fields", "field", "rule"), [
    pytest.param({**ROUND_1, "neutral": 3}, {}, "counts.neutral", "survey-options", id="unknown-option"),
    pytest.param({"satisfied": 40, "dissatisfied": 2}, {}, "counts.basically_satisfied", "survey-options",
                 id="missing-option"),
    pytest.param({**ROUND_1, "dissatisfied": -2}, {}, "counts.dissatisfied", "survey-counts", id="negative-count"),
    pytest.param({"satisfied": 0, "basically_satisfied": 0, "dissatisfied": 0}, {}, "counts", "survey-counts",
                 id="no-responses"),
    pytest.param({**ROUND_1, "satisfied": "40.5"}, {}, "counts.satisfied", "number-format", id="fractional-count"),
    pytest.param({**ROUND_1, "satisfied": "1e2"}, {}, "counts.satisfied", "number-format", id="exponent-count"),
    pytest.param({**ROUND_1, "satisfied": True}, {}, "counts.satisfied", "number-format", id="boolean-count"),
    pytest.param({}, {}, "counts", "command-fields", id="empty-counts"),
    pytest.param(ROUND_1, {"input": "zombie_cleanup_rate"}, "input", "known-inputs", id="a-measurement-input"),
    pytest.param(ROUND_1, {"input": "nps"}, "input", "known-inputs", id="unknown-input"),
    pytest.param(ROUND_1, {"appraisal": key("p-A")}, "input", "known-inputs", id="not-read-by-the-person-tree"),
    pytest.param(ROUND_1, {"appraisal": key("d-09")}, "appraisal", "appraisal-open", id="no-such-appraisal"),
])
def test_survey_record_refusals(counts: Any, fields: dict[str, Any], field: str, rule: str) -> None:
    error = _refusal(counts, **fields)
    assert (error.field, error.rule) == (field, rule), error


def test_the_counts_are_recorded_in_the_schemes_option_order() -> None:
    scenario = _scenario()
    command = scenario.survey("d-01", {"dissatisfied": 2, "satisfied": 40, "basically_satisfied": "8"})
    doc = scenario.ledger().explain(key("d-01"))
    event = next(e for e in doc["events"] if e["command"] == command)
    assert list(event["counts"].items()) == list(ROUND_1.items())
