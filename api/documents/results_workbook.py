"""The year's results as an Excel workbook (openpyxl): one sheet for departments, one for people."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from domain.numbers import APPROXIMATE


def _figure(text: str) -> Decimal | str:
    """A shown figure as a number; an approximate one ("≈1.0…E+5000", SCORING's 28 digits) as text."""
    return text if text.startswith(APPROXIMATE) else Decimal(text)


def write_results(document: dict[str, Any], path: Path) -> None:
    book = Workbook()
    deps = book.active
    deps.title = "部门 departments"
    deps.append(["id", "得分 score", "名次 rank", "不完整 incomplete", "后果 consequences"])
    for dep in document["departments"]:
        deps.append([dep["id"], _figure(dep["score"]), dep["rank"], dep["incomplete"],
                     ", ".join(c["type"] for c in dep["consequences"])])
    people = book.create_sheet("个人 people")
    people.append(["id", "部门 department", "职位 position", "部门分 D", "个人分 I", "加减 adjustments",
                   "总分 total", "名次 rank", "档次 tier", "系数 coefficient", "等次 grade", "否决 vetoed",
                   "不完整 incomplete", "后果 consequences"])
    for p in document["people"]:
        people.append([p["id"], p["department"], p["position"], _figure(p["department_score"]),
                       _figure(p["individual_score"]), _figure(p["adjustments"]), _figure(p["total"]),
                       p["rank"], p["tier"], p["coefficient"], p["grade"], p["vetoed"], p["incomplete"],
                       ", ".join(c["type"] for c in p["consequences"])])
    for sheet in (deps, people):
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in sheet.iter_rows(min_row=2):
            for cell in row:
                if isinstance(cell.value, Decimal):
                    cell.number_format = "0.00"
    meta = book.create_sheet("说明 about")
    meta.append(["year", document["year"]])
    meta.append(["scheme", f"{document['scheme']['id']}@{document['scheme']['version']}"])
    meta.append(["status", document["status"]])
    book.save(path)


def office_workbook(document: dict[str, Any], *, title: str, people: dict[str, str], departments: dict[str, str],
                    positions: dict[str, str], consequences: dict[str, str]) -> bytes:
    """The results (or a publication, 公示) as an office prints them: a title over each sheet,
    names rather than ids, headers in Chinese with English beside, the order of the ranking, set up
    for A4 landscape with the header row repeated on every page. Figures are the document's."""
    from io import BytesIO

    from openpyxl.styles import Alignment, Border, Side

    thin = Side(style="thin", color="999999")
    box = Border(left=thin, right=thin, top=thin, bottom=thin)

    def sheet_of(sheet: Any, heading: str, header: list[str], rows: list[list[Any]]) -> None:
        sheet.append([heading])
        sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(header))
        sheet["A1"].font = Font(bold=True, size=14)
        sheet["A1"].alignment = Alignment(horizontal="center")
        sheet.append(header)
        for row in rows:
            sheet.append(row)
        for row in sheet.iter_rows(min_row=2):
            for cell in row:
                cell.border = box
                cell.alignment = Alignment(vertical="center", wrap_text=True)
                if cell.row == 2:
                    cell.font = Font(bold=True)
                    cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
                elif isinstance(cell.value, Decimal):
                    cell.number_format = "0.00"
        for index, _ in enumerate(header, start=1):
            sheet.column_dimensions[sheet.cell(row=2, column=index).column_letter].width = 16
        sheet.print_title_rows = "2:2"
        sheet.page_setup.orientation = "landscape"
        sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
        sheet.page_setup.fitToWidth = 1
        sheet.freeze_panes = "A3"

    def named(mapping: dict[str, str], key: Any) -> str:
        return mapping.get(str(key), str(key)) if key is not None else ""

    def after(items: list[dict[str, Any]]) -> str:
        return "；".join(named(consequences, c.get("type")) for c in items)

    def yes(flag: Any) -> str:
        return "是 yes" if flag else ""

    ranked = sorted(document["people"], key=lambda p: (p["rank"] is None, p["rank"] or 0, p["id"]))
    book = Workbook()
    sheet = book.active
    sheet.title = "个人 people"
    sheet_of(sheet, title, ["序号 No.", "姓名 Name", "部门 Department", "职务 Position", "总分 Total", "名次 Rank",
                            "等次 Grade", "系数 Coefficient", "一票否决 Vetoed", "后果 Consequences"],
             [[index, named(people, p["id"]), named(departments, p["department"]), named(positions, p["position"]),
               _figure(p["total"]), p["rank"] if p["rank"] is not None else "并列待定 tie", p["grade"] or "",
               p["coefficient"] or "", yes(p["vetoed"]), after(p["consequences"])]
              for index, p in enumerate(ranked, start=1)])
    ranked_deps = sorted(document["departments"], key=lambda d: (d["rank"] is None, d["rank"] or 0, d["id"]))
    sheet_of(book.create_sheet("部门 departments"), title,
             ["序号 No.", "部门 Department", "得分 Score", "名次 Rank", "后果 Consequences"],
             [[index, named(departments, d["id"]), _figure(d["score"]), d["rank"], after(d["consequences"])]
              for index, d in enumerate(ranked_deps, start=1)])
    ties = document.get("unresolved_ties") or []
    if ties:
        sheet_of(book.create_sheet("并列 ties"), title, ["总分 Total", "并列人员 Tied"],
                 [[_figure(t["total"]), "、".join(named(people, p) for p in t["people"])] for t in ties])
    out = BytesIO()
    book.save(out)
    return out.getvalue()
