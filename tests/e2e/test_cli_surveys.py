"""SCORING.md §12's example through the command line, as a user runs it (`appraisal import` and
`appraisal results --format json`), on SQLite and PostgreSQL: rounds {satisfied 40, basically 8,
dissatisfied 2} and {25, 5, 0}: 80 responses, weighted 72.8, rate 91 %, a 10-point leaf
`proportional: public_satisfaction, target: 100` scores 9.10; with `min_responses` 100 the input is
missing and the appraisal incomplete."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.builders.cli_kit import appraisal
from tests.builders.survey_scheme import ROUND_1, ROUND_2, survey_scheme

AT = "2025-12-10T09:00:00+08:00"


def _commands(min_responses: int | None) -> list[dict[str, Any]]:
    document = survey_scheme(min_responses=min_responses)
    scheme = {"id": document["id"], "version": document["version"]}
    base = {"actor": "admin", "at": "2025-01-02T09:00:00+08:00"}
    commands = [
        {"type": "scheme.publish", "id": "c-1", **base, "document": document},
        {"type": "org.person", "id": "c-2", **base, "person": "p-L1", "name": "李一", "position": "leader"},
        {"type": "org.person", "id": "c-2b", **base, "person": "p-L2", "name": "李二", "position": "leader"},
        {"type": "org.department", "id": "c-3", **base, "department": "d-01", "name": "科室", "approved_posts": 8,
         "in_charge": "p-L1"},
        {"type": "appraisal.open", "id": "c-4", **base, "year": 2025, "subject": "d-01", "scheme": scheme},
    ]
    recorder = {"actor": "hr-office", "at": AT, "appraisal": "2025:d-01"}
    # the other leaves full: duty 40, key tasks 30, collaboration 20 (D = 90 + the survey leaf)
    commands += [
        {"type": "measurement.record", "id": "m-1", **recorder, "input": "function_implementation_rate", "value": "95"},
        {"type": "measurement.record", "id": "m-2", **recorder, "input": "zombie_cleanup_rate", "value": "100"},
        {"type": "rating.record", "id": "m-3", **recorder, "actor": "p-L2", "leaf": "reform_tasks", "period": "2025",
         "rater_role": "leadership_team", "score": "100"},
    ]
    commands += [
        {"type": "survey.record", "id": f"round-{n}", **recorder, "input": "public_satisfaction", "counts": counts,
         "evidence": f"第{n}轮问卷"} for n, counts in ((1, ROUND_1), (2, ROUND_2))]
    return commands


@pytest.mark.parametrize(("min_responses", "leaf", "score", "incomplete"), [
    pytest.param(None, "9.10", "99.10", False, id="min-responses-30"),
    pytest.param(100, "0.00", "90.00", True, id="min-responses-100"),
])
def test_section_12_example_through_import_and_results(db_url: str, tmp_path: Path, min_responses: int | None,
                                                        leaf: str, score: str, incomplete: bool) -> None:
    path = tmp_path / "surveys.jsonl"
    path.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in _commands(min_responses)), "utf-8")
    done = appraisal(db_url, tmp_path, "import", str(path))
    assert done.returncode == 0, done.stderr
    done = appraisal(db_url, tmp_path, "results", "--year", "2025", "--format", "json")
    assert done.returncode == 0, done.stderr
    department = json.loads(done.stdout)["departments"][0]
    assert (department["id"], department["leaves"]["public_satisfaction"], department["score"],
            department["incomplete"]) == ("d-01", leaf, score, incomplete)
    done = appraisal(db_url, tmp_path, "explain", "2025:d-01", "--format", "text")
    assert done.returncode == 0, done.stderr
    if incomplete:
        assert "survey public_satisfaction: 80 responses, fewer than 100" in done.stdout
    else:
        assert "率 rate 91.00 (exact 91) = 100 × 加权 weighted 72.8 / 答卷 responses 80" in done.stdout


def test_a_refused_round_stops_the_import_naming_the_line_and_the_option(db_url: str, tmp_path: Path) -> None:
    commands = _commands(None)
    commands[-1]["counts"] = {**ROUND_2, "neutral": 1}
    path = tmp_path / "surveys.jsonl"
    path.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in commands), "utf-8")
    done = appraisal(db_url, tmp_path, "import", str(path))
    assert done.returncode != 0
    text = " ".join(done.stderr.split())
    assert "line 10" in text and "recorded 已记录 9 command(s)" in text and "counts.neutral" in text and "survey-options" in text
