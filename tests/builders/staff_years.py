"""Three years of one small organisation (tests/builders/years.py) with appeals: p-3 appealed an item in
2024 (overturned) and one in 2025 (open); p-4 appealed one in 2024 (upheld). 2023 and 2024 are
published, 2025 is not. For the staff's pages and the queries behind them."""

from __future__ import annotations

from typing import Any

from tests.builders.years import Years

# p-3 third in 2023, first in 2024, last in 2025: its rank, tier and grade move every year
SCORES = {2023: {"p-1": "95", "p-2": "90", "p-3": "85", "p-4": "80", "p-5": "75"},
          2024: {"p-1": "80", "p-2": "85", "p-3": "99", "p-4": "90", "p-5": "70"},
          2025: {"p-1": "90", "p-2": "85", "p-3": "60", "p-4": "80", "p-5": "70"}}


def occurrence(years: Years, appraisal: str) -> str:
    """The command id of the (one) counted item recorded on `appraisal` (tests/builders/years.py)."""
    return next(c["id"] for c in years.commands
                if c["type"] == "occurrence.record" and c["appraisal"] == appraisal)


def appeal(years: Years, appeal_id: str, appraisal: str, day: str, grounds: str) -> None:
    person = appraisal.split(":", 1)[1]
    years.commands.append({"type": "appeal.file", "id": appeal_id, "actor": person, "at": f"{day}T10:00:00+08:00",
                           "appraisal": appraisal, "target": occurrence(years, appraisal), "grounds": grounds})


def decide(years: Years, appeal_id: str, outcome: str, day: str, reason: str) -> None:
    years.commands.append({"type": "appeal.decide", "id": f"{appeal_id}-decided", "actor": "admin",
                           "at": f"{day}T10:00:00+08:00", "appeal": appeal_id, "outcome": outcome,
                           "reason": reason})


def staff_years() -> list[dict[str, Any]]:
    years = Years().year(2023, SCORES[2023]).publish(2023).year(2024, SCORES[2024]).publish(2024)
    appeal(years, "appeal-p3-2024", "2024:p-3", "2025-01-20", "省级采纳文件日期有误")
    decide(years, "appeal-p3-2024", "overturned", "2025-01-25", "文件核实有误，撤销该项")
    appeal(years, "appeal-p4-2024", "2024:p-4", "2025-01-21", "p-4 的理由")
    decide(years, "appeal-p4-2024", "upheld", "2025-01-26", "维持")
    years.year(2025, SCORES[2025])
    appeal(years, "appeal-p3-2025", "2025:p-3", "2025-03-05", "2025 年的申诉")
    return years.commands
