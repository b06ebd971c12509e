"""The demo's rule change (api/cli/demo.py `rule_change_commands`, SCORING.md §9 and §12): bianban v2
published with its reason, the year adopted to it with a reason, two questionnaire rounds per
department; every command accepted, the year complete under v2, the adoption in the explanation,
and a replay under v1 moving the points back. `appraisal demo` writes them after the year."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from api.cli.demo import ADOPTION_REASON, SATISFACTION_REASON, demo_commands, rule_change_commands
from api.cli.main import app
from api.documents.text import explanation_text
from api.ledger import AppraisalLedger
from projections.replays import replay

DEPARTMENTS = 2


def test_the_rule_change_is_deterministic_and_two_rounds_per_department() -> None:
    commands = rule_change_commands(departments=DEPARTMENTS)
    assert commands == rule_change_commands(departments=DEPARTMENTS)
    assert [c["type"] for c in commands[:2]] == ["scheme.publish", "year.adopt"]
    assert commands[0]["document"]["reason"] == SATISFACTION_REASON and commands[1]["reason"] == ADOPTION_REASON
    rounds = commands[2:]
    assert sorted(c["appraisal"] for c in rounds) == ["2025:d-01", "2025:d-01", "2025:d-02", "2025:d-02"]
    assert all(c["type"] == "survey.record" and sum(c["counts"].values()) >= 40 for c in rounds)
    assert len({c["id"] for c in commands}) == len(commands)


def test_the_demo_year_with_its_rule_change_is_complete_under_v2() -> None:
    ledger = AppraisalLedger("memory://")
    ledger.submit([*demo_commands(departments=DEPARTMENTS, staff_per_department=2),
                   *rule_change_commands(departments=DEPARTMENTS)])
    results = ledger.results(2025)
    assert results["scheme"] == {"id": "bianban", "version": 2}
    for department in results["departments"]:
        assert not department["incomplete"]
        assert set(department["leaves"]) == {"duty", "reform_tasks", "zombie_cleanup", "collaboration",
                                             "public_satisfaction"}
        assert Decimal(0) < Decimal(department["leaves"]["public_satisfaction"]) <= Decimal(10)
    doc = ledger.explain("2025:d-01")
    assert [(a["from"], a["to"], a["reason"]) for a in doc["adoptions"]] == [("bianban@1", "bianban@2", ADOPTION_REASON)]
    text = explanation_text(doc)
    assert "方案变更 scheme adopted bianban@1 → bianban@2" in text and "满意度测评 survey" in text
    report = replay(ledger, 2025, "bianban@1")
    for entry in report["departments"]:
        assert entry["leaves"]["public_satisfaction"]["new"] is None
        assert [n["kind"] for n in entry["not_applicable"]] == ["survey", "survey"]


def test_appraisal_demo_writes_the_rule_change_after_the_year(tmp_path: Path) -> None:
    out = tmp_path / "demo.jsonl"
    done = CliRunner().invoke(app, ["demo", "--out", str(out), "--departments", "2", "--staff-per-department", "1"])
    assert done.exit_code == 0, done.output
    commands = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert commands[-6:] == rule_change_commands(departments=2)
    done = CliRunner().invoke(app, ["demo", "--out", str(out), "--departments", "2", "--no-correction"])
    assert not any(json.loads(line)["type"] == "survey.record" for line in out.read_text("utf-8").splitlines())
