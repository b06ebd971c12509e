"""The worked example of SCORING.md §10 as commands (year 2025, scheme bianban v1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_n = 0


def _cmd(type_: str, actor: str = "admin", at: str = "2025-01-02T09:00:00+08:00", **fields: Any) -> dict[str, Any]:
    global _n
    _n += 1
    return {"type": type_, "id": f"we-{_n:03d}", "actor": actor, "at": at, **fields}


def _rating(appraisal: str, leaf: str, period: str, rater: str, role: str, score: str,
            at: str = "2025-12-20T10:00:00+08:00") -> dict[str, Any]:
    return _cmd("rating.record", actor=rater, at=at, appraisal=appraisal, leaf=leaf, period=period,
                rater=rater, rater_role=role, score=score)


def _measure(appraisal: str, name: str, value: str) -> dict[str, Any]:
    return _cmd("measurement.record", actor="hr-office", at="2025-12-10T09:00:00+08:00",
                appraisal=appraisal, input=name, value=value, evidence="年度台账")


def _occur(appraisal: str, item: str, at: str = "2025-09-01T09:00:00+08:00", count: int = 1) -> dict[str, Any]:
    return _cmd("occurrence.record", actor="hr-office", at=at, appraisal=appraisal, item=item,
                count=count, evidence="登记")


def build() -> list[dict[str, Any]]:
    global _n
    _n = 0
    d, a, h = "2025:d-01", "2025:p-A", "2025:p-H1"
    return [
        _cmd("scheme.publish", builtin="bianban"),
        _cmd("org.person", person="p-L1", name="李一", position="leader"),
        _cmd("org.person", person="p-L2", name="李二", position="leader"),
        _cmd("org.person", person="p-L3", name="李三", position="leader"),
        _cmd("org.person", person="p-S1", name="孙上级", position="superior"),
        _cmd("org.department", department="d-01", name={"zh": "机构编制科", "en": "Staffing Section"},
             approved_posts=8, in_charge="p-L1"),
        _cmd("org.department", department="d-02", name={"zh": "综合科", "en": "General Section"},
             approved_posts=5, in_charge="p-L2"),
        _cmd("org.person", person="p-H1", name="何科长", position="department_head", department="d-01"),
        _cmd("org.person", person="p-A", name="安员", position="staff", department="d-01"),
        _cmd("appraisal.open", year=2025, subject="d-01", scheme={"id": "bianban", "version": 1}),
        _cmd("appraisal.open", year=2025, subject="p-H1", scheme={"id": "bianban", "version": 1}),
        _cmd("appraisal.open", year=2025, subject="p-A", scheme={"id": "bianban", "version": 1}),
        # Department d-01
        _measure(d, "function_implementation_rate", "93.5"),
        _rating(d, "reform_tasks", "2025", "p-H1", "self", "80"),
        _rating(d, "reform_tasks", "2025", "p-L2", "leadership_team", "85"),
        _rating(d, "reform_tasks", "2025", "p-L3", "leadership_team", "95"),
        _measure(d, "zombie_cleanup_rate", "80"),
        _occur(d, "valid_complaint"),
        # Staff A
        _rating(a, "business", "2025-06", "p-A", "self", "90", at="2025-06-28T10:00:00+08:00"),
        _rating(a, "business", "2025-06", "p-L1", "in_charge", "80", at="2025-06-28T10:00:00+08:00"),
        _rating(a, "business", "2025-06", "p-H1", "department_head", "70", at="2025-06-28T10:00:00+08:00"),
        _rating(a, "business", "2025-12", "p-A", "self", "90"),
        _rating(a, "business", "2025-12", "p-L1", "in_charge", "90"),
        _rating(a, "business", "2025-12", "p-H1", "department_head", "80"),
        _measure(a, "review_total", "400"),
        _measure(a, "review_errors", "6"),
        _occur(a, "absence", at="2025-03-03T09:00:00+08:00"),
        _occur(a, "absence", at="2025-04-07T09:00:00+08:00"),
        _rating(a, "innovation", "2025", "p-A", "self", "80"),
        _rating(a, "innovation", "2025", "p-L1", "in_charge", "70"),
        _rating(a, "innovation", "2025", "p-H1", "department_head", "60"),
        _occur(a, "innovation_adopted"),
        # Head H1
        _rating(h, "business", "2025", "p-H1", "self", "95"),
        _rating(h, "business", "2025", "p-S1", "superior", "90"),
        _rating(h, "business", "2025", "p-L1", "in_charge", "85"),
        _rating(h, "business", "2025", "p-L2", "leadership_team", "80"),
        _rating(h, "business", "2025", "p-L3", "leadership_team", "90"),
        _measure(h, "review_total", "0"),
        _occur(h, "report_adopted_provincial", at="2025-05-06T09:00:00+08:00"),
        _occur(h, "report_adopted_provincial", at="2025-10-09T09:00:00+08:00"),
        _rating(h, "innovation", "2025", "p-H1", "self", "90"),
        _rating(h, "innovation", "2025", "p-S1", "superior", "80"),
        _rating(h, "innovation", "2025", "p-L1", "in_charge", "80"),
        _rating(h, "innovation", "2025", "p-L2", "leadership_team", "70"),
        _occur(h, "innovation_adopted", at="2025-07-01T09:00:00+08:00"),
        _occur(h, "innovation_adopted", at="2025-11-03T09:00:00+08:00"),
    ]


DEDUCTION = {"type": "adjustment.apply", "id": "we-ded", "actor": "hr-office",
             "at": "2025-12-22T09:00:00+08:00", "appraisal": "2025:p-H1", "item": "over_quota_hiring",
             "evidence": "超编进人 1 名"}
APPEAL = {"type": "appeal.file", "id": "we-appeal", "actor": "p-H1", "at": "2025-12-26T09:00:00+08:00",
          "appraisal": "2025:p-H1", "target": "we-ded", "grounds": "该人员系按调剂计划接收"}
OVERTURN = {"type": "appeal.decide", "id": "we-decision", "actor": "admin-2",
            "at": "2026-01-05T09:00:00+08:00", "appeal": "we-appeal", "outcome": "overturned",
            "reason": "核实为计划内调剂"}


def write(path: Path, commands: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in commands), "utf-8")
    return path
