"""Several appraisal years of one small organisation as commands, for consequences and histories
across years (and across scheme versions)."""

from __future__ import annotations

from typing import Any

from api.ledger import AppraisalLedger


class Years:
    """One department, its head and four staff, appraised in several years; person p-1 … p-5 get
    business ratings of `scores` (the leader in charge only), so the order is the order of scores."""

    PEOPLE = ("p-1", "p-2", "p-3", "p-4", "p-5")

    def __init__(self) -> None:
        self.commands: list[dict[str, Any]] = []
        self.add("scheme.publish", "2023-01-02", builtin="bianban")
        self.add("org.person", "2023-01-02", person="p-L1", name="李一", position="leader")
        self.add("org.person", "2023-01-02", person="p-L2", name="李二", position="leader")
        self.add("org.department", "2023-01-02", department="d-01", name="机构编制科", approved_posts=8,
                 in_charge="p-L1")
        for person_id in self.PEOPLE:
            self.add("org.person", "2023-01-02", person=person_id, name=f"员工{person_id}", position="staff",
                     department="d-01")

    def add(self, type_: str, day: str, actor: str = "admin", **fields: Any) -> None:
        self.commands.append({"type": type_, "id": f"y-{len(self.commands) + 1:03d}", "actor": actor,
                              "at": f"{day}T09:00:00+08:00", **fields})

    def year(self, year: int, scores: dict[str, str], version: int = 1) -> Years:
        day = f"{year}-03-01"
        scheme = {"id": "bianban", "version": version}
        for subject in ("d-01", *self.PEOPLE):
            self.add("appraisal.open", day, year=year, subject=subject, scheme=scheme)
        key = f"{year}:d-01"
        self.add("measurement.record", day, actor="hr-office", appraisal=key,
                 input="function_implementation_rate", value="95")
        self.add("measurement.record", day, actor="hr-office", appraisal=key, input="zombie_cleanup_rate",
                 value="100")
        self.add("rating.record", day, actor="p-L2", appraisal=key, leaf="reform_tasks", period=str(year),
                 rater="p-L2", rater_role="leadership_team", score="100")
        for person_id in self.PEOPLE:
            key = f"{year}:{person_id}"
            for leaf in ("business", "innovation"):
                self.add("rating.record", day, actor="p-L1", appraisal=key, leaf=leaf, period=str(year),
                         rater="p-L1", rater_role="in_charge", score=scores[person_id])
            self.add("occurrence.record", day, actor="hr-office", appraisal=key, item="report_adopted_provincial")
        return self

    def publish(self, year: int, day: str | None = None) -> Years:
        self.add("year.publish", day or f"{year + 1}-01-15", year=year)
        return self

    def ledger(self) -> AppraisalLedger:
        ledger = AppraisalLedger("memory://")
        ledger.submit(self.commands)
        return ledger
