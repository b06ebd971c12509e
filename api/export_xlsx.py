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
