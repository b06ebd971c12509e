"""The diff between two scheme versions (domain/scheme_diff.py): every kind of rule change, by path,
old and new value, in document order; numbers compared as numbers."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from domain.scheme import builtin_document, parse_scheme
from domain.scheme_diff import diff_document, diff_schemes, diff_text
from tests.builders.corrected_scheme import (
    ALL_FOUR,
    absence_points,
    corrected,
    implementation_target,
    staff_raters,
    staff_weights,
    without_department_head_raters,
    without_innovation,
)

V1 = parse_scheme(builtin_document("bianban"))
IDENTITY = {"supersedes", "reason"}


def changes(document: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
    """(path, old, new) of every change from v1, identity lines left out."""
    return [(c.path, c.old, c.new) for c in diff_schemes(V1, parse_scheme(document)) if c.path not in IDENTITY]


def test_the_same_version_has_no_differences() -> None:
    assert diff_schemes(V1, V1) == []
    assert "no differences" in diff_text(V1, V1)


def test_a_new_version_names_what_it_supersedes_and_why() -> None:
    diff = diff_schemes(V1, parse_scheme(corrected()))
    assert [(c.path, c.old, c.new, c.kind) for c in diff] == [
        ("supersedes", None, "1", "added"),
        ("reason", None, corrected()["reason"], "added")]


@pytest.mark.parametrize(("edit", "expected"), [
    pytest.param(staff_weights, [("composition.staff.department", "0.5", "0.4"),
                                 ("composition.staff.individual", "0.5", "0.6")], id="composition-weight"),
    pytest.param(implementation_target, [("department.duty.rules.implementation_shortfall.target", "95", "90")],
                 id="threshold"),
    pytest.param(absence_points, [("individual.discipline.rules.absences.points_each", "-1", "-2")],
                 id="rule-points"),
    pytest.param(staff_raters, [("raters.staff.self", "0.3", "0.2"),
                                ("raters.staff.others.in_charge", "0.6", "0.5"),
                                ("raters.staff.others.department_head", "0.4", "0.5")], id="rater-shares"),
    pytest.param(without_department_head_raters, [("raters.staff.others.in_charge", "0.6", "1"),
                                                  ("raters.staff.others.department_head", "0.4", None)],
                 id="rater-role-removed"),
])
def test_each_correction_is_one_line_per_value(edit: Any, expected: list[tuple[str, str, str | None]]) -> None:
    assert changes(corrected(edit)) == expected


def test_all_four_corrections_in_document_order() -> None:
    assert changes(corrected(*ALL_FOUR)) == [
        ("composition.staff.department", "0.5", "0.4"),
        ("composition.staff.individual", "0.5", "0.6"),
        ("raters.staff.self", "0.3", "0.2"),
        ("raters.staff.others.in_charge", "0.6", "0.5"),
        ("raters.staff.others.department_head", "0.4", "0.5"),
        ("department.duty.rules.implementation_shortfall.target", "95", "90"),
        ("individual.discipline.rules.absences.points_each", "-1", "-2"),
    ]


def test_a_removed_leaf_is_one_change_and_its_points_go_elsewhere() -> None:
    diff = [c for c in diff_schemes(V1, parse_scheme(corrected(without_innovation))) if c.path not in IDENTITY]
    assert [(c.path, c.kind) for c in diff] == [("individual.discipline.points", "changed"),
                                                 ("individual.innovation", "removed")]
    removed = diff[1]
    assert removed.old == "20 points, base rating, rules adopted_proposals" and removed.new is None
    assert "创新能力" in removed.label and "removed" in removed.label


def test_added_nodes_rules_inputs_catalogue_items_and_moves() -> None:
    document = corrected()
    document["inputs"]["overtime_days"] = {"kind": "count", "name": {"zh": "加班", "en": "overtime"}}
    discipline = document["individual"][1]
    discipline["rules"].append({"id": "overtime", "type": "per_occurrence", "input": "overtime_days",
                                "points_each": "0.5"})
    document["adjustments"]["late_report"] = {"points": "-2", "name": {"zh": "迟报", "en": "late report"}}
    document["adjustments"]["over_quota_hiring"]["points"] = "-15"
    del document["vetoes"]["major_accident"]
    document["vetoes"]["bribery"] = {"name": {"zh": "受贿", "en": "bribery"}}
    # key_tasks split: zombie_cleanup moves to the top level, key_tasks keeps reform_tasks only
    key_tasks = document["department"][1]
    zombie = key_tasks["children"].pop(1)
    key_tasks["points"] = "15"
    document["department"].insert(2, zombie)
    document["department"][2]["base"]["target"] = "100.0"  # the same number: no change
    assert changes(document) == [
        ("inputs.overtime_days", None, "count"),
        ("department.key_tasks.points", "30", "15"),
        ("department.key_tasks.children", "reform_tasks, zombie_cleanup", "reform_tasks"),
        ("department.zombie_cleanup.parent", "key_tasks", "(top)"),
        ("individual.discipline.rules.overtime", None, "type per_occurrence, input overtime_days, points_each 0.5"),
        ("adjustments.over_quota_hiring.points", "-20", "-15"),
        ("adjustments.late_report", None, "-2"),
        ("vetoes.major_accident", "履职不力导致重大事故 dereliction causing a major accident", None),
        ("vetoes.bribery", None, "受贿 bribery"),
    ]


def test_grading_deadlines_and_inputs() -> None:
    document = corrected()
    document["grading"]["tiers"][0].update({"share": "0.25", "coefficient": "1.2"})
    document["grading"]["grades"][1]["share"] = "0.30"  # the same number written differently: no change
    document["grading"]["grades"][2]["share"] = "0.2"
    document["grading"]["grades"][1].pop("share")  # B takes the rest now, C has a share
    document["appeal_window_days"] = 15
    document["publicity_working_days"] = 7
    document["inputs"]["review_total"]["required"] = True
    assert changes(document) == [
        ("inputs.review_total.required", "false", "true"),
        ("grading.tiers.1.share", "0.2", "0.25"),
        ("grading.tiers.1.coefficient", "1.1", "1.2"),
        ("grading.grades.B.share", "0.3", "rest 其余"),
        ("grading.grades.C.share", "rest 其余", "0.2"),
        ("appeal_window_days", "30", "15"),
        ("publicity_working_days", "5", "7"),
    ]


def test_base_and_rule_type_changes() -> None:
    document = corrected()
    document["individual"][2]["base"] = {"type": "full"}  # innovation: rating -> full
    rule = document["individual"][0]["rules"][1]  # reports: minimum_count minimum 1, penalty -10
    rule.update({"minimum": "2", "penalty": "-5"})
    document["individual"][0]["rules"][0]["allowance_rate"] = "2"
    assert changes(document) == [
        ("individual.business.rules.review_errors.allowance_rate", "1", "2"),
        ("individual.business.rules.reports.minimum", "1", "2"),
        ("individual.business.rules.reports.penalty", "-10", "-5"),
        ("individual.innovation.base.type", "rating", "full"),
    ]


def test_the_text_and_json_forms() -> None:
    new = parse_scheme(corrected(*ALL_FOUR))
    text = diff_text(V1, new)
    assert text.splitlines()[0] == "方案差异 scheme diff bianban@1 → bianban@2"
    assert "取代 supersedes bianban@1" in text
    assert "总分构成 composition weight · 工作人员 staff · 部门得分 department score: 0.5 → 0.4" in text
    assert "每次分值 points each: -1 → -2  [individual.discipline.rules.absences.points_each]" in text
    document = diff_document(V1, new)
    assert (document["old"], document["new"], document["supersedes"]) == ("bianban@1", "bianban@2", 1)
    assert document["changes"][2] == {
        "category": "composition", "path": "composition.staff.department", "kind": "changed",
        "old": "0.5", "new": "0.4",
        "label": "总分构成 composition weight · 工作人员 staff · 部门得分 department score"}


def test_the_diff_does_not_touch_either_document() -> None:
    document = corrected(*ALL_FOUR)
    before = copy.deepcopy(document)
    new = parse_scheme(document)
    diff_schemes(V1, new)
    assert new.document() == parse_scheme(before).document()
    assert V1.document() == parse_scheme(builtin_document("bianban")).document()
