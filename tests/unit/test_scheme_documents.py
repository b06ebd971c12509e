"""Scheme documents (SCORING.md §4): the shipped bianban v1 parses; a document that breaks an
invariant is refused with the path of the offending value, and publishing it records nothing;
a published version never changes."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from api.ledger import AppraisalLedger, Refused
from domain.errors import InvalidDocument
from domain.scheme import builtin_document, parse_scheme

DROP = object()


def edited(*edits: tuple[str, Any]) -> dict[str, Any]:
    """bianban v1 with each (dotted path, value) set, or removed when the value is DROP;
    a number in the path indexes a list (`individual.0.rules.0.input`)."""
    document = builtin_document("bianban")
    for path, value in edits:
        *parents, last = [int(part) if part.isdigit() else part for part in path.split(".")]
        node: Any = document
        for part in parents:
            node = node[part]
        if value is DROP:
            del node[last]
        elif isinstance(node, list) and last == len(node):
            node.append(value)
        else:
            node[last] = value
    return document


def problems(document: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidDocument) as caught:
        parse_scheme(document)
    assert all(message for _, message in caught.value.problems)
    return [path for path, _ in caught.value.problems]


# ---- the shipped document ------------------------------------------------------------------------

def test_the_shipped_bianban_document_parses_as_section_11():
    scheme = parse_scheme(builtin_document("bianban"))
    assert (scheme.id, scheme.version, scheme.supersedes) == ("bianban", 1, None)
    assert [leaf.id for leaf in scheme.leaves("department")] == [
        "duty", "reform_tasks", "zombie_cleanup", "collaboration"]
    assert [leaf.id for leaf in scheme.leaves("person")] == ["business", "discipline", "innovation"]
    assert [(n.id, n.points) for n in scheme.department] == [
        ("duty", Decimal(40)), ("key_tasks", Decimal(30)), ("collaboration", Decimal(30))]
    assert [(n.id, n.points) for n in scheme.individual] == [
        ("business", Decimal(60)), ("discipline", Decimal(20)), ("innovation", Decimal(20))]
    composition = {k: (w.department, w.individual) for k, w in scheme.composition.items()}
    assert composition == {"department_head": (Decimal("0.6"), Decimal("0.4")),
                           "staff": (Decimal("0.5"), Decimal("0.5"))}
    raters = {k: (r.self_share, r.others) for k, r in scheme.raters.items()}
    assert raters == {
        "department": (Decimal("0.3"), {"leadership_team": Decimal(1)}),
        "department_head": (Decimal("0.3"), {"superior": Decimal("0.4"), "in_charge": Decimal("0.4"),
                                             "leadership_team": Decimal("0.2")}),
        "staff": (Decimal("0.3"), {"in_charge": Decimal("0.6"), "department_head": Decimal("0.4")}),
    }
    assert scheme.adjustments["over_quota_hiring"].points == Decimal(-20)
    assert set(scheme.vetoes) == {"major_accident", "data_falsification"}
    assert [(t.id, t.share, t.coefficient) for t in scheme.grading.tiers] == [
        (1, Decimal("0.2"), Decimal("1.1")), (2, None, Decimal("1.0")), (3, Decimal("0.1"), Decimal("0.9"))]
    assert [(g.id, g.share) for g in scheme.grading.grades] == [
        ("A", Decimal("0.3")), ("B", Decimal("0.3")), ("C", None), ("D", Decimal("0.1"))]
    assert (scheme.appeal_window_days, scheme.publicity_working_days) == (30, 5)
    required = {name for name, spec in scheme.inputs.items() if spec.required}
    assert required == {"function_implementation_rate", "zombie_cleanup_rate"}


def test_json_numbers_are_read_from_their_text():
    # 0.1 + 0.2 + 0.7 is 1.0000000000000002 in binary floats, exactly 1 from the text
    document = edited(("raters.department_head.others",
                       {"superior": 0.1, "in_charge": 0.2, "leadership_team": 0.7}))
    scheme = parse_scheme(document)
    assert scheme.raters["department_head"].others == {
        "superior": Decimal("0.1"), "in_charge": Decimal("0.2"), "leadership_team": Decimal("0.7")}


# ---- broken invariants -------------------------------------------------------------------------

BROKEN = [
    pytest.param([("composition.staff.individual", "0.6")], "composition.staff",
                 id="composition-weights-sum-1.1"),
    pytest.param([("composition.staff", DROP)], "composition.staff", id="composition-position-missing"),
    pytest.param([("department.1.children.0.points", "20")], "department[1].points",
                 id="children-points-35-under-30"),
    pytest.param([("department.0.points", "30")], "department", id="top-level-points-90"),
    pytest.param([("individual.0.rules.0.type", "bonus")], "individual[0].rules[0]",
                 id="unknown-rule-type"),
    pytest.param([("individual.0.rules.0.input", "review_mistakes")], "individual[0].rules[0].input",
                 id="unknown-input"),
    pytest.param([("individual.0.rules.0.total", "reviews")], "individual[0].rules[0].total",
                 id="unknown-total-input"),
    pytest.param([("department.1.children.1.base.input", "clean_up")],
                 "department[1].children[1].base.input", id="unknown-proportional-input"),
    pytest.param([("individual.1.rules.0.input", "review_total")], "individual[1].rules[0].input",
                 id="per-occurrence-reading-a-measurement"),
    pytest.param([("individual.2.id", "discipline")], "individual[2].id", id="duplicate-node-id"),
    pytest.param([("individual.1.rules.1", {"id": "reports", "type": "per_occurrence", "input": "absence",
                                            "points_each": "-1"})],
                 "individual[1].rules[1].id", id="duplicate-rule-id"),
    pytest.param([("individual.1.base", DROP)], "individual[1].base", id="leaf-without-base"),
    pytest.param([("raters.staff.others.in_charge", "0.5")], "raters.staff.others",
                 id="rater-weights-sum-0.9"),
    pytest.param([("raters.staff.self", "1")], "raters.staff.self", id="self-share-1"),
    pytest.param([("raters.department.others", {"department_head": "1"})],
                 "raters.department.others.department_head", id="rater-role-not-for-departments"),
    pytest.param([("composition.staff.department", "half")], "composition.staff.department",
                 id="weight-not-a-number"),
    pytest.param([("grading.tiers.0.share", DROP)], "grading.tiers", id="two-tiers-without-share"),
    pytest.param([("grading.grades.2.share", "0.3")], "grading.grades", id="no-grade-without-share"),
    pytest.param([("version", 2)], "supersedes", id="version-2-without-supersedes"),
    pytest.param([("version", 2), ("supersedes", 1)], "reason", id="version-2-without-reason"),
    pytest.param([("version", 2), ("supersedes", 3), ("reason", "typo")], "supersedes",
                 id="supersedes-a-later-version"),
    pytest.param([("weights", {})], "weights", id="unknown-part"),
]


@pytest.mark.parametrize(("edits", "path"), BROKEN)
def test_a_broken_invariant_is_refused_with_its_path(edits, path):
    assert path in problems(edited(*edits))


@pytest.mark.parametrize(("edits", "path"), [
    pytest.param([("composition.leader", {"department": "0.5", "individual": "0.5"})],
                 "composition.leader", id="composition-for-a-non-appraised-position"),
    pytest.param([("raters.leader", {"self": "0.3", "others": {"superior": "1"}})],
                 "raters.leader", id="raters-for-an-unknown-subject"),
])
def test_an_unknown_key_is_named_by_its_document_path(edits, path):
    assert problems(edited(*edits)) == [path]


def test_every_problem_is_listed():
    found = problems(edited(("composition.staff.individual", "0.6"),
                            ("individual.0.rules.0.input", "review_mistakes")))
    assert {"composition.staff", "individual[0].rules[0].input"} <= set(found)


# ---- publishing through the ledger -------------------------------------------------------------

def publish(document: dict[str, Any], command_id: str | None = None) -> dict[str, Any]:
    command = {"type": "scheme.publish", "actor": "admin", "at": "2025-01-02T09:00:00+08:00",
               "document": document}
    return {**command, "id": command_id} if command_id else command


def refused(ledger: AppraisalLedger, command: dict[str, Any]) -> Any:
    with pytest.raises(Refused) as caught:
        ledger.submit([command])
    return caught.value.outcome.error


@pytest.mark.parametrize(("edits", "field"), [
    pytest.param([("composition.staff.individual", "0.6")], "document.composition.staff", id="weights"),
    pytest.param([("department.1.children.0.points", "20")], "document.department[1].points",
                 id="children-points"),
    pytest.param([("individual.0.rules.0.input", "review_mistakes")],
                 "document.individual[0].rules[0].input", id="unknown-input"),
])
def test_publishing_a_broken_document_is_refused_and_records_nothing(edits, field):
    ledger = AppraisalLedger("memory://")
    ledger.submit([{"type": "scheme.publish", "actor": "admin", "builtin": "bianban"}])
    before = ledger.event_count()
    document = edited(*edits, ("id", "broken"))
    error = refused(ledger, publish(document))
    assert (error.field, error.rule) == (field, "scheme-invariants")
    assert ledger.event_count() == before
    opening = {"type": "appraisal.open", "actor": "admin", "year": 2025, "subject": "d-01",
               "scheme": {"id": "broken", "version": 1}}
    ledger.submit([{"type": "org.person", "actor": "admin", "person": "p-L1", "name": "李一",
                    "position": "leader"},
                   {"type": "org.department", "actor": "admin", "department": "d-01", "name": "科室",
                    "approved_posts": 8, "in_charge": "p-L1"}])
    assert refused(ledger, opening).rule == "scheme-published"


def test_publishing_the_same_version_with_the_same_content_is_a_no_op():
    ledger = AppraisalLedger("memory://")
    custom = edited(("id", "custom"))
    ledger.submit([publish(custom)])
    before = ledger.event_count()
    (outcome,) = ledger.submit([publish(copy.deepcopy(custom))])
    assert outcome.accepted and outcome.answer["events"] == 0
    assert ledger.event_count() == before


def test_the_builtin_and_its_document_are_the_same_content():
    ledger = AppraisalLedger("memory://")
    ledger.submit([{"type": "scheme.publish", "actor": "admin", "builtin": "bianban"}])
    before = ledger.event_count()
    (outcome,) = ledger.submit([publish(builtin_document("bianban"))])
    assert outcome.accepted and outcome.answer["events"] == 0
    assert ledger.event_count() == before


def test_publishing_the_same_version_with_other_content_is_refused():
    ledger = AppraisalLedger("memory://")
    ledger.submit([{"type": "scheme.publish", "actor": "admin", "builtin": "bianban"}])
    before = ledger.event_count()
    error = refused(ledger, publish(edited(("adjustments.over_quota_hiring.points", "-10"))))
    assert (error.field, error.rule) == ("document.version", "scheme-immutable")
    assert ledger.event_count() == before
    assert ledger.scheme("bianban", 1).adjustments["over_quota_hiring"].points == Decimal(-20)


def test_a_new_version_supersedes_a_published_one():
    ledger = AppraisalLedger("memory://")
    ledger.submit([{"type": "scheme.publish", "actor": "admin", "builtin": "bianban"}])
    before = ledger.event_count()
    v2 = edited(("version", 2), ("supersedes", 1), ("reason", "扣分减半"),
                ("adjustments.over_quota_hiring.points", "-10"))
    (outcome,) = ledger.submit([publish(v2)])
    assert outcome.accepted and ledger.event_count() > before
    assert ledger.scheme("bianban", 2).adjustments["over_quota_hiring"].points == Decimal(-10)
    assert ledger.scheme("bianban", 1).adjustments["over_quota_hiring"].points == Decimal(-20)


def test_a_version_superseding_an_unpublished_one_is_refused():
    ledger = AppraisalLedger("memory://")
    before = ledger.event_count()
    v2 = edited(("version", 2), ("supersedes", 1), ("reason", "新版"))
    error = refused(ledger, publish(v2))
    assert error.field == "document.supersedes"
    assert ledger.event_count() == before
