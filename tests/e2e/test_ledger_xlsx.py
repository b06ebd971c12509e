"""Excel ledgers (api/documents/ledger_workbook.py): a template for a year, filled as a person fills it, imported
by the command line; the same log as the JSON Lines of the same commands; re-uploads skip accepted
rows; a broken cell is refused naming sheet, row and column. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from api.documents.ledger_workbook import WorkbookError, import_workbook, read_workbook, template
from api.ledger import AppraisalLedger
from tests.builders.cli_kit import appraisal, flat
from tests.builders.years import Years

RATINGS, MEASUREMENTS, OCCURRENCES, ADJUSTMENTS = ("评分 ratings", "计量 measurements", "计次 occurrences",
                                                   "加减分 adjustments")


def world() -> list[dict[str, Any]]:
    """One department and its people, the year 2025 open with no facts yet."""
    years = Years()
    for subject in ("d-01", *Years.PEOPLE):
        years.add("appraisal.open", "2025-03-01", year=2025, subject=subject,
                  scheme={"id": "bianban", "version": 1})
    return years.commands


def at(day: str, clock: str = "09:00:00") -> str:
    return f"{day}T{clock}+08:00"


# The ledger's commands as JSON Lines would give them, and the same rows as a person types them.
COMMANDS: list[dict[str, Any]] = [
    {"type": "rating.record", "actor": "p-L1", "at": at("2025-06-30", "10:00:00"), "appraisal": "2025:p-1",
     "leaf": "business", "period": "2025-06", "rater": "p-L1", "rater_role": "in_charge", "score": "87.5"},
    {"type": "rating.record", "actor": "p-L1", "at": at("2025-06-30", "00:00:00"), "appraisal": "2025:p-2",
     "leaf": "business", "period": "2025-06", "rater": "p-L1", "rater_role": "in_charge", "score": "90",
     "comment": "认真负责"},
    {"type": "rating.record", "actor": "p-L1", "at": at("2025-07-01", "08:30:00"), "appraisal": "2025:p-3",
     "leaf": "innovation", "period": "2025", "rater": "p-L1", "rater_role": "in_charge", "score": "85"},
    {"type": "measurement.record", "actor": "hr-office", "at": at("2025-06-30"), "appraisal": "2025:d-01",
     "input": "function_implementation_rate", "value": "95.5", "evidence": "编发〔2025〕3号"},
    {"type": "occurrence.record", "actor": "hr-office", "at": at("2025-06-30"), "appraisal": "2025:p-4",
     "item": "report_adopted_provincial", "count": 2},
    {"type": "occurrence.record", "actor": "hr-office", "at": at("2025-06-30"), "appraisal": "2025:p-5",
     "item": "report_adopted_provincial"},
    {"type": "adjustment.apply", "actor": "hr-office", "at": at("2025-06-30"), "appraisal": "2025:p-5",
     "item": "over_quota_hiring", "evidence": "超编 1 人"},
]


def fill(data: bytes) -> Any:
    """The template with COMMANDS' rows typed in (numbers as numbers, times as date cells, a month
    that Excel turned into a date), the actor left blank where the import's --actor gives it."""
    book = load_workbook(BytesIO(data))
    book[RATINGS].append(["2025:p-1", "business", "2025-06", "p-L1", "in_charge", 87.5, None,
                          datetime(2025, 6, 30, 10, 0), "p-L1"])
    book[RATINGS].append([])  # an empty row: skipped
    book[RATINGS].append(["2025:p-2", "business", datetime(2025, 6, 1), "p-L1", "in_charge", 90, "认真负责",
                          date(2025, 6, 30), "p-L1"])
    book[RATINGS].append(["2025:p-3", "innovation", 2025, "p-L1", "in_charge", "85", None,
                          "2025-07-01T08:30:00", "p-L1"])
    book[MEASUREMENTS].append(["2025:d-01", "function_implementation_rate", 95.5, "编发〔2025〕3号",
                               datetime(2025, 6, 30, 9, 0)])
    book[OCCURRENCES].append(["2025:p-4", "report_adopted_provincial", 2, None, datetime(2025, 6, 30, 9, 0)])
    book[OCCURRENCES].append(["2025:p-5", "report_adopted_provincial", None, None, at("2025-06-30")])
    book[ADJUSTMENTS].append(["2025:p-5", "over_quota_hiring", "超编 1 人", datetime(2025, 6, 30, 9, 0)])
    return book


def save(book: Any, path: Path) -> Path:
    book.save(path)
    return path


def events(db_url: str) -> list[tuple[Any, ...]]:
    """The log's events without what necessarily differs (recording time, command ids)."""
    ledger = AppraisalLedger(db_url)
    try:
        found = []
        for notification in ledger.recorder.select_notifications(start=1, limit=100000):
            event = ledger.mapper.to_domain_event(notification)
            state = {k: v for k, v in vars(event).items() if k not in ("timestamp", "command_id")}
            found.append((type(event).__qualname__, json.dumps(state, default=str, sort_keys=True)))
        return found
    finally:
        ledger.close()


def prepared(db_url: str) -> None:
    ledger = AppraisalLedger(db_url)
    try:
        ledger.submit(world())
    finally:
        ledger.close()


def test_round_trip_gives_the_log_of_the_same_json_lines(db_url: str, empty_url: str, tmp_path: Path) -> None:
    prepared(db_url)
    done = appraisal(db_url, tmp_path, "template", "--year", "2025", "-o", "ledger.xlsx")
    assert done.returncode == 0, done.stderr
    workbook = save(fill((tmp_path / "ledger.xlsx").read_bytes()), tmp_path / "六月台账.xlsx")
    done = appraisal(db_url, tmp_path, "import", str(workbook), "--actor", "hr-office")
    assert done.returncode == 0, done.stderr
    assert "imported 已导入 7 row(s); 0 already recorded" in flat(done.stderr)

    prepared(empty_url)
    lines = tmp_path / "same.jsonl"
    lines.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in COMMANDS), encoding="utf-8")
    done = appraisal(empty_url, tmp_path, "import", str(lines))
    assert done.returncode == 0, done.stderr
    assert events(db_url) == events(empty_url)
    kinds = [kind for kind, _ in events(db_url)]
    assert kinds.count("Appraisal.RatingRecorded") == 3 and "Appraisal.AdjustmentApplied" in kinds


def test_read_rows_are_the_commands_with_ids_from_ledger_sheet_and_row() -> None:
    data = template(_ledger(), 2025, ledger_name="2025-office")
    buffer = BytesIO()
    fill(data).save(buffer)
    rows = read_workbook(buffer.getvalue(), actor="hr-office")
    assert rows.problem is None
    places = [(place.sheet, place.row) for place, _ in rows.commands]
    assert places == [(RATINGS, 2), (RATINGS, 4), (RATINGS, 5), (MEASUREMENTS, 2), (OCCURRENCES, 2),
                      (OCCURRENCES, 3), (ADJUSTMENTS, 2)]
    bodies = [body for _, body in rows.commands]
    assert [body.pop("id") for body in bodies] == [
        "xlsx:2025-office:ratings:2", "xlsx:2025-office:ratings:4", "xlsx:2025-office:ratings:5",
        "xlsx:2025-office:measurements:2", "xlsx:2025-office:occurrences:2", "xlsx:2025-office:occurrences:3",
        "xlsx:2025-office:adjustments:2"]
    assert bodies == COMMANDS


def _ledger() -> AppraisalLedger:
    ledger = AppraisalLedger("memory://")
    ledger.submit(world())
    return ledger


def test_template_has_drop_downs_and_instructions() -> None:
    data = template(_ledger(), 2025, ["ratings", "adjustments"], ledger_name="2025-office")
    book = load_workbook(BytesIO(data))
    assert book.sheetnames == ["说明", RATINGS, ADJUSTMENTS, "lists"]
    assert book["lists"].sheet_state == "hidden"
    ratings = book[RATINGS]
    assert [c.value for c in ratings[1]] == ["考核对象 appraisal", "指标 leaf", "期间 period", "评价人 rater",
                                             "评价身份 rater_role", "分数 score", "意见 comment", "业务时间 at",
                                             "录入人 actor", "编号 id"]
    lists = {c.value: c.column_letter for c in book["lists"][1]}

    def listed(sheet: Any, column: str) -> list[str]:
        (validation,) = [v for v in sheet.data_validations.dataValidation if str(v.sqref) == f"{column}2:{column}5000"]
        assert validation.type == "list"
        letter = validation.formula1.split("!$")[1][0]
        return [c.value for c in book["lists"][letter][1:] if c.value is not None]

    assert listed(ratings, "A") == ["2025:d-01", "2025:p-1", "2025:p-2", "2025:p-3", "2025:p-4", "2025:p-5"]
    assert "business" in listed(ratings, "B") and "reform_tasks" in listed(ratings, "B")
    assert listed(ratings, "C")[:3] == ["2025", "2025-H1", "2025-H2"] and "2025-06" in listed(ratings, "C")
    assert listed(ratings, "D") == ["p-1", "p-2", "p-3", "p-4", "p-5", "p-L1", "p-L2"]
    assert listed(ratings, "E") == ["self", "superior", "in_charge", "leadership_team", "department_head"]
    assert listed(book[ADJUSTMENTS], "B") == ["over_quota_hiring"]
    assert "adjustments.item" in lists
    (score,) = [v for v in ratings.data_validations.dataValidation if str(v.sqref) == "F2:F5000"]
    assert (score.type, score.formula1, score.formula2) == ("decimal", "0", "100")
    assert ratings.column_dimensions["C"].number_format == "@"  # a typed 2025-06 stays text
    instructions = book["说明"]
    assert instructions["B2"].value == "2025-office" and book.defined_names["ledger"].attr_text == "'说明'!$B$2"
    text = " ".join(str(c.value) for row in instructions.iter_rows() for c in row if c.value is not None)
    for words in ("北京时间(+08:00)", "China time", "^-?[0-9]{1,9}(\\.[0-9]{1,6})?$", "评分、计量、计次、满意度、加减分",
                  "分数 score", "0–100 的分数"):
        assert words in text


def test_a_re_upload_skips_the_accepted_rows(db_url: str, tmp_path: Path) -> None:
    prepared(db_url)
    data = template(_ledger(), 2025, ledger_name="2025-office")
    book = fill(data)
    ledger = AppraisalLedger(db_url)
    try:
        buffer = BytesIO()
        book.save(buffer)
        first = import_workbook(ledger, buffer.getvalue(), actor="hr-office")
        assert (first.accepted, first.skipped, first.refusal) == (7, 0, None)
        count = ledger.event_count()
        # The same ledger, renamed and extended at the end of a sheet.
        book[RATINGS].append(["2025:p-4", "business", "2025-07", "p-L1", "in_charge", 70, None,
                              datetime(2025, 7, 31, 9, 0), "p-L1"])
        later = save(book, tmp_path / "七月台账 (2).xlsx")
    finally:
        ledger.close()
    done = appraisal(db_url, tmp_path, "import", str(later), "--actor", "hr-office")
    assert done.returncode == 0, done.stderr
    assert "imported 已导入 1 row(s); 7 already recorded (skipped 跳过)" in flat(done.stderr)
    ledger = AppraisalLedger(db_url)
    try:
        assert ledger.event_count() == count + 1
        assert "xlsx:2025-office:ratings:6" in ledger.commands(["xlsx:2025-office:ratings:6"])
    finally:
        ledger.close()


@pytest.mark.parametrize(("cell", "message"), [
    ("abc", 'number format: got "abc"'),
    (101, "out of range"),
])
def test_a_broken_cell_is_refused_naming_sheet_row_and_column(db_url: str, tmp_path: Path, cell: Any,
                                                              message: str) -> None:
    prepared(db_url)
    book = fill(template(_ledger(), 2025, ledger_name="2025-office"))
    book[RATINGS]["F5"] = cell
    path = save(book, tmp_path / "broken.xlsx")
    done = appraisal(db_url, tmp_path, "import", str(path), "--actor", "hr-office")
    assert done.returncode == 1
    text = flat(done.stderr)
    assert "recorded 已记录 2 row(s) before the refused one" in text
    assert "评分 ratings 第5行 F列 (score) — sheet 评分 ratings, row 5, column F (score)" in text
    assert message in text
    ledger = AppraisalLedger(db_url)
    try:  # the rows before it are kept, nothing after it is recorded
        ids = [f"xlsx:2025-office:{kind}:{row}" for kind, row in (("ratings", 2), ("ratings", 4),
                                                                 ("ratings", 5), ("measurements", 2))]
        assert set(ledger.commands(ids)) == set(ids[:2])
    finally:
        ledger.close()
    # Fixed, the same file imports the rest and skips what it recorded.
    book[RATINGS]["F5"] = 85
    save(book, path)
    done = appraisal(db_url, tmp_path, "import", str(path), "--actor", "hr-office")
    assert done.returncode == 0, done.stderr
    assert "imported 已导入 5 row(s); 2 already recorded" in flat(done.stderr)


def test_a_cell_that_is_not_its_field_stops_the_reading_at_its_row() -> None:
    ledger = _ledger()
    book = fill(template(ledger, 2025, ledger_name="2025-office"))
    book[OCCURRENCES]["E3"] = 45000.5  # a number where a business time belongs
    book[RATINGS]["C4"] = datetime(2025, 6, 15)  # a day is not a period
    buffer = BytesIO()
    book.save(buffer)
    done = import_workbook(ledger, buffer.getvalue(), actor="hr-office")
    assert done.refusal is not None and done.accepted == 1
    assert done.refusal.describe().startswith("评分 ratings 第4行 C列 (period) — sheet 评分 ratings, row 4, "
                                              "column C (period): 日期不是期间 a date is not a period")
    book[RATINGS]["C4"] = "2025-06"
    book.save(buffer := BytesIO())
    done = import_workbook(ledger, buffer.getvalue(), actor="hr-office")
    assert done.refusal is not None and done.accepted == 5
    assert "计次 occurrences 第3行 E列 (at)" in done.refusal.describe()


def test_a_workbook_that_is_no_ledger_is_refused_whole(tmp_path: Path) -> None:
    ledger = _ledger()
    with pytest.raises(WorkbookError, match="not an Excel workbook"):
        read_workbook(b"not a zip")
    book = fill(template(ledger, 2025, ledger_name="2025-office"))
    book.create_sheet("草稿")
    buffer = BytesIO()
    book.save(buffer)
    with pytest.raises(WorkbookError) as refused:
        read_workbook(buffer.getvalue())
    assert "unknown sheet '草稿'" in refused.value.describe()
    del book["草稿"]
    book[ADJUSTMENTS]["G2"] = "a note beside the row"
    book.save(buffer := BytesIO())
    rows = read_workbook(buffer.getvalue())
    assert rows.problem is not None and len(rows.commands) == 6
    assert rows.problem.describe().startswith("加减分 adjustments 第2行 G列 — sheet 加减分 adjustments, row 2, "
                                              "column G: G列无列名 a value in column G, which has no header")
    book[ADJUSTMENTS]["G2"] = None
    book["说明"]["B2"] = None
    book.save(buffer := BytesIO())
    with pytest.raises(WorkbookError, match="ledger's name is missing"):
        read_workbook(buffer.getvalue())
    assert ledger.event_count() == len(events_of_world())


def events_of_world() -> list[Any]:
    ledger = _ledger()
    return list(ledger.recorder.select_notifications(start=1, limit=100000))


def test_rows_inserted_above_accepted_ones_are_refused_not_recorded_twice() -> None:
    ledger = _ledger()
    book = fill(template(ledger, 2025, ledger_name="2025-office"))
    book.save(buffer := BytesIO())
    assert import_workbook(ledger, buffer.getvalue(), actor="hr-office").refusal is None
    count = ledger.event_count()
    book[RATINGS].insert_rows(2)
    for column, value in zip("ABCDEFGHI", ["2025:p-4", "business", "2025-07", "p-L1", "in_charge", 70, None,
                                           datetime(2025, 7, 31, 9, 0), "p-L1"], strict=True):
        book[RATINGS][f"{column}2"] = value
    book.save(buffer := BytesIO())
    done = import_workbook(ledger, buffer.getvalue(), actor="hr-office")
    assert done.refusal is not None and done.refusal.rule == "idempotency" and done.accepted == 0
    assert done.refusal.describe().startswith("评分 ratings 第2行 J列 (id) — sheet 评分 ratings, row 2, column J (id)")
    assert ledger.event_count() == count


def test_the_template_command_takes_several_kinds(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from api.cli.main import app

    url = f"sqlite:///{tmp_path / 'a.db'}"
    prepared(url)
    done = CliRunner().invoke(app, ["template", "--year", "2025", "--kind", "ratings", "--kind", "occurrences",
                                    "-o", str(tmp_path / "t.xlsx"), "--db", url])
    assert done.exit_code == 0, done.output
    assert load_workbook(tmp_path / "t.xlsx").sheetnames == ["说明", RATINGS, OCCURRENCES, "lists"]
    done = CliRunner().invoke(app, ["template", "--year", "2024", "--db", url])
    assert done.exit_code == 1 and "no appraisal is open for 2024" in flat(done.output)
