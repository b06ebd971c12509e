"""Monthly ledgers in Excel (台账): a workbook template for a year, and its rows read back as the
commands of a batch import (COMMANDS.md). Bytes in, bytes out: the command line and a page call
the same functions.

The workbook: one sheet per kind (评分 ratings, 计量 measurements, 计次 occurrences, 满意度 surveys,
加减分 adjustments), row 1 the headers "中文 field" (the last word is the command's field), one command
per row from row 2; drop-downs for the known ids (a hidden sheet `lists` holds them); a sheet 说明
with the instructions in Chinese and English and the ledger's name (cell B2, named `ledger`).

Surveys (SCORING.md §12): one row per questionnaire round, a column per option of the scheme's
survey inputs (header "满意 counts.satisfied": the round's `counts` by option; 0 where no one chose
it, blank for the options of another survey). The sheet is in the default set only when the year's
scheme has a survey input.

Reading: the sheets in the fixed order ratings, measurements, occurrences, surveys, adjustments
(whatever the workbook's order), rows top to bottom, empty rows skipped. A row without an `id` gets
`xlsx:<ledger>:<kind>:<row>`: the ledger's name is made once per template (`<year>-<random>`) and
travels inside the workbook, so a renamed file, re-uploaded and extended by rows at the end, skips
the rows already accepted. The caveat: inserting, deleting or sorting rows above accepted ones
moves them to other row numbers; such a row is then refused (`idempotency`: its id was used for
another command), never recorded twice.

Cells: numbers as numbers or text; a float cell is read through its shortest text (87.5 -> "87.5",
95.0 -> "95"), then the one number grammar applies. Business time: a date or date-and-time cell, or
ISO 8601 text; a time without an offset is China time (+08:00), a date alone its midnight.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from io import BytesIO
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.datavalidation import DataValidation

from api.ledger import AppraisalLedger, Outcome, Refused
from domain.errors import DomainError, NotFound
from domain.times import OFFICE_TZ

MAX_ROW = 5000  # the rows the drop-downs and formats cover
LISTS = "lists"
INSTRUCTIONS = "说明"

# kind -> (sheet title, command type, the command's fields)
KINDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "ratings": ("评分 ratings", "rating.record",
                ("appraisal", "leaf", "period", "rater", "rater_role", "score", "comment")),
    "measurements": ("计量 measurements", "measurement.record", ("appraisal", "input", "value", "evidence")),
    "occurrences": ("计次 occurrences", "occurrence.record", ("appraisal", "item", "count", "evidence")),
    # and a column `counts.<option>` per option of the scheme's surveys, after `input`
    "surveys": ("满意度 surveys", "survey.record", ("appraisal", "input", "evidence")),
    "adjustments": ("加减分 adjustments", "adjustment.apply", ("appraisal", "item", "evidence")),
}
ENVELOPE = ("at", "actor", "id")
NUMBERS = {"score", "value"}
INTEGERS = {"count"}
COUNTS = "counts."  # a survey's column per option: `counts.<option>`, an integer ≥ 0

# field -> (中文, what the column means 中文, English)
COLUMNS: dict[str, tuple[str, str, str]] = {
    "appraisal": ("考核对象", "年度:对象编号,如 2025:p-017(部门为 2025:d-01)",
                  'the appraisal, "<year>:<subject>", e.g. 2025:p-017'),
    "leaf": ("指标", "被评分的末级指标编号", "the indicator leaf rated"),
    "period": ("期间", "年 2025、月 2025-06、季 2025-Q2、半年 2025-H1 或周 2025-W23(文本)",
               "year 2025, month 2025-06, quarter 2025-Q2, half 2025-H1 or ISO week 2025-W23 (text)"),
    "rater": ("评价人", "评价人的人员编号;空则为录入人", "the rater's person id; blank: the actor"),
    "rater_role": ("评价身份", "self / superior / in_charge / leadership_team / department_head",
                   "the rater's role"),
    "score": ("分数", "0–100 的分数", "a score from 0 to 100"),
    "comment": ("意见", "评价意见(可空)", "comment (optional)"),
    "input": ("数据项", "计量或满意度测评数据项编号", "the measured input, or the survey"),
    "value": ("数值", "计量值", "the measured value"),
    "evidence": ("依据", "依据、文号(可空)", "evidence, document number (optional)"),
    "item": ("事项", "计次事项或加减分事项编号", "the counted item or the adjustment item"),
    "count": ("次数", "正整数,空为 1", "a whole number from 1; blank: 1"),
    "at": ("业务时间", "发生时间:日期或日期时间单元格,或 ISO 8601 文本;无时区按北京时间 +08:00;空为导入时刻",
           "business time: a date or date-time cell, or ISO 8601 text; no offset means China time "
           "+08:00; blank: the time of the import"),
    "actor": ("录入人", "发出命令者;空则用导入时的 --actor", "who issues the command; blank: the import's --actor"),
    "id": ("编号", "命令编号(可空):空则按台账编号、工作表和行号生成", "command id (optional); blank: derived "
           "from the ledger, the sheet and the row"),
}
TEXT_FIELDS = {"appraisal", "leaf", "period", "rater", "rater_role", "comment", "input", "evidence", "item",
               "actor", "id"}


# --- the template ------------------------------------------------------------------------------

def template(ledger: AppraisalLedger, year: int, kinds: Iterable[str] | None = None, *,
             ledger_name: str | None = None) -> bytes:
    """The workbook for `year` (its open appraisals, its scheme's ids, the organisation's people),
    with a sheet for each of `kinds` (default: every kind, surveys only when the scheme has one),
    as .xlsx bytes."""
    for kind in kinds or ():
        if kind not in KINDS:
            raise DomainError("kind", f"unknown kind {kind!r} (known: {', '.join(KINDS)})", rule="xlsx-kind")
    record = ledger.year(year)
    if record is None:
        raise NotFound("year", f"no appraisal is open for {year}", rule="year-open")
    scheme = ledger.scheme(record.scheme_id, record.scheme_version)
    surveys = {name: spec for name, spec in scheme.inputs.items() if spec.kind == "survey"}
    options: dict[str, Any] = {}  # every survey's options, in the scheme's order: a column each
    for spec in surveys.values():
        for option in spec.options or ():
            options.setdefault(option.id, option)
    chosen = list(kinds or (kind for kind in KINDS if kind != "surveys" or surveys))
    organisation = ledger.organisation()
    people = sorted(organisation.people) if organisation is not None else []
    subjects = sorted(record.subjects)
    leaves = sorted({leaf.id for tree in ("department", "individual") for leaf in scheme.leaves(tree)})
    lists: dict[str, list[str]] = {
        "appraisal": [f"{year}:{subject}" for subject in subjects],
        "leaf": leaves,
        "period": _periods(year),
        "rater": people,
        "actor": people,
        "rater_role": ["self", "superior", "in_charge", "leadership_team", "department_head"],
        "input": sorted(i for i, spec in scheme.inputs.items() if spec.kind == "measurement"),
        "occurrences.item": sorted(i for i, spec in scheme.inputs.items() if spec.kind == "count"),
        "surveys.input": sorted(surveys),
        "adjustments.item": sorted(scheme.adjustments),
    }
    name = ledger_name or f"{year}-{secrets.token_hex(4)}"
    book = Workbook()
    instructions = book.active
    instructions.title = INSTRUCTIONS
    hidden = book.create_sheet(LISTS)
    hidden.sheet_state = "hidden"
    ranges: dict[str, str] = {}
    for column, (key, values) in enumerate(lists.items(), start=1):
        letter = get_column_letter(column)
        hidden.cell(1, column, key)
        for row, value in enumerate(values, start=2):
            hidden.cell(row, column, value)
        ranges[key] = f"{quote_sheetname(LISTS)}!${letter}$2:${letter}${max(2, len(values) + 1)}"
    for kind in chosen:
        title, _, fields = KINDS[kind]
        sheet = book.create_sheet(title, index=book.index(hidden))
        columns = _columns(kind, fields, options)
        for number, name_ in enumerate(columns, start=1):
            heading = options[name_[len(COUNTS):]].name.zh if name_.startswith(COUNTS) else COLUMNS[name_][0]
            cell = sheet.cell(1, number, f"{heading} {name_}")
            cell.font = Font(bold=True)
            letter = get_column_letter(number)
            sheet.column_dimensions[letter].width = 18 if name_ not in ("comment", "evidence") else 30
            if name_ in TEXT_FIELDS:
                sheet.column_dimensions[letter].number_format = "@"  # typed 2025-06 stays text
            elif name_ == "at":
                sheet.column_dimensions[letter].number_format = "yyyy-mm-dd hh:mm"
            validation = _validation(kind, name_, ranges)
            if validation is not None:
                sheet.add_data_validation(validation)
                validation.add(f"{letter}2:{letter}{MAX_ROW}")
        sheet.freeze_panes = "A2"
    _instructions(instructions, name, year, scheme.ref, chosen, options)
    book.defined_names["ledger"] = DefinedName("ledger", attr_text=f"{quote_sheetname(INSTRUCTIONS)}!$B$2")
    buffer = BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _columns(kind: str, fields: tuple[str, ...], options: dict[str, Any]) -> tuple[str, ...]:
    if kind != "surveys":
        return (*fields, *ENVELOPE)
    return (*fields[:2], *(f"{COUNTS}{option}" for option in options), *fields[2:], *ENVELOPE)


def _periods(year: int) -> list[str]:
    weeks = 53 if date(year, 12, 28).isocalendar().week == 53 else 52
    return [str(year), *(f"{year}-H{h}" for h in (1, 2)), *(f"{year}-Q{q}" for q in range(1, 5)),
            *(f"{year}-{m:02d}" for m in range(1, 13)), *(f"{year}-W{w:02d}" for w in range(1, weeks + 1))]


def _validation(kind: str, name: str, ranges: dict[str, str]) -> DataValidation | None:
    if name.startswith(COUNTS):
        return DataValidation(type="whole", operator="between", formula1="0", formula2="999999999", allow_blank=True,
                              showErrorMessage=True, errorTitle=name, error="0 或正整数 a whole number from 0")
    label = f"{COLUMNS[name][0]} {name}"
    if name == "score":
        return DataValidation(type="decimal", operator="between", formula1="0", formula2="100",
                              showErrorMessage=True, errorTitle=label, error="0–100 的分数 a score from 0 to 100")
    if name == "count":
        return DataValidation(type="whole", operator="between", formula1="1", formula2="10000", allow_blank=True,
                              showErrorMessage=True, errorTitle=label, error="正整数 a whole number from 1")
    key = f"{kind}.{name}" if f"{kind}.{name}" in ranges else name
    if key not in ranges:
        return None
    return DataValidation(type="list", formula1=f"={ranges[key]}", allow_blank=True, showErrorMessage=True,
                          errorTitle=label, error=f"请从下拉列表选择 choose from the list ({name})")


def _instructions(sheet: Any, name: str, year: int, scheme: str, kinds: list[str], options: dict[str, Any]) -> None:
    sheet.column_dimensions["A"].width = 24
    sheet.column_dimensions["B"].width = 22
    sheet.column_dimensions["C"].width = 60
    sheet.column_dimensions["D"].width = 60
    rows: list[list[Any]] = [
        ["绩效考核台账 appraisal ledger"],
        ["台账编号 ledger", name, "导入时按此编号与行号识别已导入的行:请勿修改;新的台账请另下载模板",
         "identifies the rows already imported (with the row number): do not change it; "
         "download a new template for a new ledger"],
        ["年度 year", year],
        ["方案 scheme", scheme],
        [],
        ["工作表 sheet", "列 column", "说明", "meaning"],
    ]
    for kind in kinds:
        title, _, fields = KINDS[kind]
        for field_ in _columns(kind, fields, options):
            if field_.startswith(COUNTS):
                option = options[field_[len(COUNTS):]]
                rows.append([title, f"{option.name.zh} {field_}",
                             f"本轮选“{option.name.zh}”的答卷数(0 或正整数;无人选填 0;其他测评的选项留空)",
                             f"responses choosing “{option.name.en}” in this round (a whole number from 0; 0 when "
                             "no one chose it; blank for the options of another survey)"])
                continue
            zh, meaning_zh, meaning_en = COLUMNS[field_]
            rows.append([title, f"{zh} {field_}", meaning_zh, meaning_en])
    rows += [
        [],
        ["规则 rules"],
        ["每行一条命令", "", "每个工作表第1行为列名(最后一个词为字段名),第2行起每行一条命令;空行跳过;列可调换顺序。",
         "row 1 holds the headers (the last word is the field); from row 2 on, one command per row; empty "
         "rows are skipped; columns may be reordered."],
        ["导入顺序", "", "按 评分、计量、计次、满意度、加减分 的顺序导入,与工作表的排列无关;每表自上而下。",
         "imported in the order ratings, measurements, occurrences, surveys, adjustments, whatever the "
         "sheets' order; each sheet top to bottom."],
        ["满意度测评", "", "满意度 surveys 表每行为一轮问卷(只记各选项的答卷数,不记答卷人):每个选项一列"
         "(counts.选项编号),该测评的每个选项都须填写,无人选填 0,合计至少 1。",
         "the surveys sheet holds one questionnaire round per row (how many chose each option, never who): "
         "a column per option (counts.<option>); every option of the row's survey is filled in, 0 when no "
         "one chose it, at least 1 response in all."],
        ["数字", "", "数字单元格或文本:可带负号,1–9 位整数,可带 1–6 位小数(如 87.5);不接受千分位、科学计数、全角数字。",
         "a number cell or text: optional minus, 1 to 9 digits, optionally a point and 1 to 6 decimals "
         "(e.g. 87.5); no thousands separators, exponents or full-width digits "
         "(^-?[0-9]{1,9}(\\.[0-9]{1,6})?$)."],
        ["时间", "", "业务时间可为日期或日期时间单元格,或 ISO 8601 文本(2025-06-30T10:00:00+08:00);"
         "未注明时区的一律按北京时间(+08:00);只有日期的按当日 0 时。",
         "business time: a date or date-time cell, or ISO 8601 text; without an offset it is China time "
         "(+08:00); a date alone is its midnight."],
        ["重复导入", "", "可多次导入同一台账(可改文件名、可在末尾追加行):已导入的行按 台账编号+工作表+行号 跳过。"
         "不要在已导入的行之间插入、删除或排序行,否则这些行会被拒绝(编号已用于另一命令)。",
         "the same ledger may be imported again (renamed, extended at the end): rows already accepted are "
         "skipped by ledger + sheet + row. Do not insert, delete or sort rows among imported ones: they "
         "would be refused (their id was used for another command)."],
        ["拒绝", "", "遇到第一条被拒绝的行即停止,报告工作表、行号和列;此前各行均已记录。改正后重新导入即可。",
         "the import stops at the first refused row, naming the sheet, the row and the column; every row "
         "before it is recorded. Fix it and import the file again."],
    ]
    for row in rows:
        sheet.append(row)
    for bold in (1, 6):
        for cell in sheet[bold]:
            cell.font = Font(bold=True)


# --- reading -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Place:
    """Where a command came from: a sheet, a row, and the columns of that sheet by field."""

    sheet: str
    row: int
    columns: dict[str, str] = field(default_factory=dict, compare=False)

    def describe(self, field_name: str | None) -> str:
        key = field_name if field_name in self.columns else (field_name or "").split(".")[0]
        letter = self.columns.get(key)
        named = f" ({key})" if key else ""
        column_zh = f" {letter}列{named}" if letter else named
        column_en = f", column {letter}{named}" if letter else (f", field {key}" if key else "")
        return f"{self.sheet} 第{self.row}行{column_zh} — sheet {self.sheet}, row {self.row}{column_en}"


class WorkbookError(DomainError):
    """A workbook that cannot be read as a ledger, or a cell that cannot be read as its field."""

    def __init__(self, place: Place | None, field_name: str, message: str, rule: str = "xlsx") -> None:
        self.place = place
        super().__init__(field_name, message, rule)

    def describe(self) -> str:
        where = self.place.describe(self.field) if self.place else self.field
        return f"{where}: {self.message} [rule: {self.rule}]"


@dataclass
class Rows:
    """The commands read from a workbook, in order, each with its place; `problem`: the cell that
    stopped the reading (the commands before it are good to import)."""

    commands: list[tuple[Place, dict[str, Any]]]
    problem: WorkbookError | None = None


def read_workbook(data: bytes, *, actor: str | None = None) -> Rows:
    """The workbook's rows as command bodies (the same as the JSON Lines of the same commands).
    Raises `WorkbookError` for a workbook that is not a ledger (nothing is then imported)."""
    try:
        book = load_workbook(BytesIO(data), read_only=True, data_only=True)
    except Exception as error:  # noqa: BLE001 - zip, XML or format errors alike
        raise WorkbookError(None, "(file)", f"不是 Excel 工作簿 not an Excel workbook (.xlsx): {error}") from None
    try:
        ledger_name = _ledger_name(book)
        sheets: dict[str, Any] = {}
        for sheet in book.worksheets:
            if sheet.title in (INSTRUCTIONS, LISTS):
                continue
            kind = sheet.title.split()[-1] if sheet.title.split() else ""
            if kind not in KINDS or kind in sheets:
                raise WorkbookError(Place(sheet.title, 1), "(sheet)",
                                    f"未知的工作表 unknown sheet {sheet.title!r} (known: {', '.join(KINDS)})",
                                    rule="xlsx-sheet")
            sheets[kind] = sheet
        rows = Rows([])
        for kind in KINDS:  # the fixed order, whatever the workbook's
            if kind in sheets and not _read_sheet(sheets[kind], kind, ledger_name, actor, rows):
                break
        return rows
    finally:
        book.close()


def _ledger_name(book: Any) -> str:
    defined = book.defined_names.get("ledger")
    value = None
    if defined is not None:
        for title, coordinate in defined.destinations:
            if title in book.sheetnames:
                value = book[title][coordinate.replace("$", "")].value
    if value is None or not str(value).strip():
        raise WorkbookError(Place(INSTRUCTIONS, 2, {"ledger": "B"}), "ledger",
                            "台账编号缺失 the ledger's name is missing (说明 B2): use a template of "
                            "`appraisal template`", rule="xlsx-ledger")
    return str(value).strip()


def _read_sheet(sheet: Any, kind: str, ledger_name: str, actor: str | None, rows: Rows) -> bool:
    """Append the sheet's commands to `rows`; False when a cell stopped the reading."""
    title, type_, fields = KINDS[kind]
    known = (*fields, *ENVELOPE)
    columns: dict[int, str] = {}
    letters: dict[str, str] = {}
    for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
        if number == 1:
            for index, header in enumerate(row):
                if header is None or not str(header).strip():
                    continue
                name = str(header).split()[-1]
                letter = get_column_letter(index + 1)
                option = kind == "surveys" and name.startswith(COUNTS) and len(name) > len(COUNTS)
                if (name not in known and not option) or name in letters:
                    raise WorkbookError(Place(sheet.title, 1, {name: letter}),
                                        name, f"未知或重复的列 unknown or repeated column {str(header)!r} "
                                              f"(known: {', '.join(known)})", rule="xlsx-header")
                columns[index], letters[name] = name, letter
            continue
        if all(value is None or (isinstance(value, str) and not value.strip()) for value in row):
            continue
        place = Place(sheet.title, number, letters)
        body: dict[str, Any] = {"type": type_}
        for index, value in enumerate(row):
            column = columns.get(index)
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            if column is None:
                rows.problem = WorkbookError(Place(sheet.title, number, {"": get_column_letter(index + 1)}), "",
                                             f"{get_column_letter(index + 1)}列无列名 a value in column "
                                             f"{get_column_letter(index + 1)}, which has no header", rule="xlsx-header")
                return False
            try:
                if column.startswith(COUNTS):
                    body.setdefault("counts", {})[column[len(COUNTS):]] = _cell(column, value)
                else:
                    body[column] = _cell(column, value)
            except ValueError as error:
                rows.problem = WorkbookError(place, column, str(error), rule="xlsx-cell")
                return False
        body.setdefault("id", f"xlsx:{ledger_name}:{kind}:{number}")
        if actor is not None:
            body.setdefault("actor", actor)
        rows.commands.append((place, body))
    return True


def _cell(name: str, value: Any) -> Any:
    """One cell as its field's JSON value."""
    if name == "at":
        return _time(value)
    if name == "period" and isinstance(value, datetime | date):
        # Excel turns a typed 2025-06 into the first of June: read back as the month
        moment = value if isinstance(value, datetime) else datetime.combine(value, time())
        if moment.day != 1 or moment.time() != time():
            raise ValueError("日期不是期间 a date is not a period: type it as text (2025-06, 2025-Q2, 2025-W23)")
        return f"{moment.year:04d}-{moment.month:02d}"
    if isinstance(value, datetime | date | time | timedelta):
        raise ValueError(f"日期不适用 a date or time is not a {name}")
    if isinstance(value, bool):
        return value  # refused by the command's rules, as in JSON
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return int(value) if name in INTEGERS or name.startswith(COUNTS) else str(int(value))
        return repr(value)  # the shortest text: 87.5 -> "87.5"; 1e-07 is refused by the grammar
    if isinstance(value, int):
        return value if name in INTEGERS or name.startswith(COUNTS) else str(value)
    return value


def _time(value: Any) -> str:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError("不是日期时间 not a date and time: a date cell or ISO 8601 text "
                             "(2025-06-30T10:00:00+08:00)") from None
    else:
        raise ValueError("不是日期时间 not a date and time: a date cell or ISO 8601 text")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=OFFICE_TZ)  # Excel has no offsets: China time
    return moment.isoformat()


# --- importing ---------------------------------------------------------------------------------

@dataclass
class WorkbookImport:
    """What an import of a workbook did: `accepted` rows (recorded now or by an earlier import),
    of them `skipped` already recorded (counted when no row is refused); `refusal` the first
    refused row (every row before it is recorded)."""

    accepted: int
    skipped: int
    refusal: WorkbookError | None = None


def import_workbook(ledger: AppraisalLedger, data: bytes, *, actor: str | None = None, batch_size: int = 500,
                    on_progress: Callable[[int], None] | None = None) -> WorkbookImport:
    """Import a workbook's rows in order as the commands of a batch import; stop at the first
    refused row (a bad cell or a refused command), keeping every row before it."""
    rows = read_workbook(data, actor=actor)
    bodies = [body for _, body in rows.commands]
    try:
        outcomes = ledger.submit(bodies, batch_size=batch_size, on_progress=on_progress) if bodies else []
    except Refused as refused:
        outcome: Outcome = refused.outcome
        error = outcome.error
        assert error is not None
        return WorkbookImport(outcome.index, 0, WorkbookError(rows.commands[outcome.index][0], error.field,
                                                     error.message, error.rule))
    skipped = sum(1 for o in outcomes if o.duplicate)
    return WorkbookImport(len(outcomes), skipped, rows.problem)
