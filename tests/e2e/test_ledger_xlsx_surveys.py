"""Surveys in the Excel ledger (api/documents/ledger_workbook.py, SCORING.md §12): the sheet 满意度 surveys has a
row per questionnaire round and a column per option (`counts.<option>`); its rows are the same
`survey.record` commands as JSON Lines; a blank option is refused naming sheet, row and column;
a scheme without a survey has no such sheet by default. Through the command line on both stores."""

from __future__ import annotations

from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

from api.documents.ledger_workbook import import_workbook, read_workbook, template
from api.ledger import AppraisalLedger
from tests.builders.cli_kit import appraisal
from tests.builders.survey_scheme import ROUND_1, ROUND_2, survey_scheme

SURVEYS = "满意度 surveys"


def world(document: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    document = document or survey_scheme()
    base = {"actor": "admin", "at": "2025-01-02T09:00:00+08:00"}
    return [
        {"type": "scheme.publish", "id": "w-1", **base, "document": document},
        {"type": "org.person", "id": "w-2", **base, "person": "p-L1", "name": "李一", "position": "leader"},
        {"type": "org.department", "id": "w-3", **base, "department": "d-01", "name": "科室", "approved_posts": 8,
         "in_charge": "p-L1"},
        {"type": "appraisal.open", "id": "w-4", **base, "year": 2025, "subject": "d-01",
         "scheme": {"id": document["id"], "version": document["version"]}},
    ]


def _ledger(document: dict[str, Any] | None = None) -> AppraisalLedger:
    ledger = AppraisalLedger("memory://")
    ledger.submit(world(document))
    return ledger


def filled(data: bytes, *rows: list[Any]) -> bytes:
    book = load_workbook(BytesIO(data))
    for row in rows:
        book[SURVEYS].append(row)
    buffer = BytesIO()
    book.save(buffer)
    return buffer.getvalue()


ROWS = [["2025:d-01", "public_satisfaction", 40, 8, 2, "第一轮", datetime(2025, 12, 10, 9, 0)],
        ["2025:d-01", "public_satisfaction", "25", 5, 0, "第二轮", "2025-12-11T09:00:00"]]


def test_the_template_has_a_column_per_option_and_says_how_to_fill_it() -> None:
    book = load_workbook(BytesIO(template(_ledger(), 2025, ledger_name="2025-office")))
    assert book.sheetnames == ["说明", "评分 ratings", "计量 measurements", "计次 occurrences", SURVEYS,
                               "加减分 adjustments", "lists"]
    assert [c.value for c in book[SURVEYS][1]] == [
        "考核对象 appraisal", "数据项 input", "满意 counts.satisfied", "基本满意 counts.basically_satisfied",
        "不满意 counts.dissatisfied", "依据 evidence", "业务时间 at", "录入人 actor", "编号 id"]
    (counts,) = [v for v in book[SURVEYS].data_validations.dataValidation if str(v.sqref) == "C2:C5000"]
    assert (counts.type, counts.formula1) == ("whole", "0")
    (inputs,) = [v for v in book[SURVEYS].data_validations.dataValidation if str(v.sqref) == "B2:B5000"]
    letter = inputs.formula1.split("!$")[1][0]
    assert [c.value for c in book["lists"][letter][1:] if c.value is not None] == ["public_satisfaction"]
    text = " ".join(str(c.value) for row in book["说明"].iter_rows() for c in row if c.value is not None)
    assert "a column per option (counts.<option>)" in text and "无人选填 0" in text


def test_a_scheme_without_a_survey_has_no_survey_sheet_by_default() -> None:
    ledger = AppraisalLedger("memory://")
    ledger.submit([{**c, "document": None, "builtin": "bianban"} if c["type"] == "scheme.publish" else
                   {**c, "scheme": {"id": "bianban", "version": 1}} if c["type"] == "appraisal.open" else c
                   for c in world()])
    assert SURVEYS not in load_workbook(BytesIO(template(ledger, 2025))).sheetnames


def test_rows_are_survey_record_commands_and_score_as_section_12() -> None:
    ledger = _ledger()
    data = filled(template(ledger, 2025, ["surveys"], ledger_name="2025-office"), *ROWS)
    rows = read_workbook(data, actor="hr-office")
    assert [body for _, body in rows.commands] == [
        {"type": "survey.record", "appraisal": "2025:d-01", "input": "public_satisfaction", "counts": ROUND_1,
         "evidence": "第一轮", "at": "2025-12-10T09:00:00+08:00", "id": "xlsx:2025-office:surveys:2",
         "actor": "hr-office"},
        {"type": "survey.record", "appraisal": "2025:d-01", "input": "public_satisfaction",
         "counts": {**ROUND_2, "satisfied": "25"}, "evidence": "第二轮", "at": "2025-12-11T09:00:00+08:00",
         "id": "xlsx:2025-office:surveys:3", "actor": "hr-office"}]
    done = import_workbook(ledger, data, actor="hr-office")
    assert (done.accepted, done.refusal) == (2, None)
    department = ledger.results(2025)["departments"][0]
    assert department["leaves"]["public_satisfaction"] == "9.10"


def test_a_blank_option_is_refused_naming_sheet_row_and_column() -> None:
    ledger = _ledger()
    row = list(ROWS[1])
    row[3] = None  # basically_satisfied left blank
    data = filled(template(ledger, 2025, ["surveys"], ledger_name="2025-office"), ROWS[0], row)
    done = import_workbook(ledger, data, actor="hr-office")
    assert done.accepted == 1 and done.refusal is not None
    assert done.refusal.describe().startswith(
        "满意度 surveys 第3行 D列 (counts.basically_satisfied) — sheet 满意度 surveys, row 3, column D "
        "(counts.basically_satisfied): missing")
    assert done.refusal.rule == "survey-options"


def test_the_command_line_imports_a_survey_ledger(db_url: str, tmp_path: Path) -> None:
    ledger = AppraisalLedger(db_url)
    try:
        ledger.submit(world())
        data = filled(template(ledger, 2025, ledger_name="2025-office"), *ROWS)
    finally:
        ledger.close()
    path = tmp_path / "ledger.xlsx"
    path.write_bytes(data)
    done = appraisal(db_url, tmp_path, "import", str(path), "--actor", "hr-office")
    assert done.returncode == 0, done.stderr
    again = appraisal(db_url, tmp_path, "import", str(path), "--actor", "hr-office")
    assert again.returncode == 0, again.stderr
    ledger = AppraisalLedger(db_url)
    try:
        assert ledger.results(2025)["departments"][0]["leaves"]["public_satisfaction"] == "9.10"
    finally:
        ledger.close()
