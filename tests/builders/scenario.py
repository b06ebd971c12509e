"""Small organisations as commands, for the table-style scoring tests.

A `Scenario` collects command bodies exactly as COMMANDS.md writes them, with deterministic ids
(`sc-001`, ...) and business times, works out from the organisation it recorded who rates in
which role (SCORING.md §5), and runs them through the real handlers on an in-memory ledger.

The presets keep the hand computation of each table row short:
- `complete_department`: fir 95, zombie 100, reform_tasks rated 100 by a leader, no complaints
  -> duty 40 + reform 15 + zombie 15 + collaboration 30 = D 100.
- `complete_person`: business and innovation rated by the leader in charge only (so others =
  that score, and with no self rating the composite is the others' score), one adopted report:
  business 60 × b/100, discipline 20, innovation 20 × v/100. With the defaults b = 100 and
  v = 50: I = 60 + 20 + 10 = 90, and a staff member of a D-100 department totals
  0.5 × 100 + 0.5 × 90 = 95.
"""

from __future__ import annotations

from typing import Any

from api.ledger import AppraisalLedger, Refused

YEAR = 2025
SETUP_AT = "2025-01-02T09:00:00+08:00"
RATED_AT = "2025-12-20T10:00:00+08:00"
MEASURED_AT = "2025-12-10T09:00:00+08:00"
OCCURRED_AT = "2025-09-01T09:00:00+08:00"
ADJUSTED_AT = "2025-12-22T09:00:00+08:00"
LEADERS = ("p-L1", "p-L2", "p-L3", "p-L4")
SUPERIOR = "p-S1"

__all__ = ["YEAR", "Refused", "Scenario", "department_row", "figure", "key", "person_row", "standard"]


def key(subject: str) -> str:
    return f"{YEAR}:{subject}"


class Scenario:
    """Commands for one small organisation in year 2025; `ledger()` runs them."""

    def __init__(self, document: dict[str, Any] | None = None) -> None:
        self.commands: list[dict[str, Any]] = []
        self.departments: dict[str, dict[str, Any]] = {}
        self.people: dict[str, dict[str, Any]] = {}
        self._n = 0
        if document is None:
            self.scheme = {"id": "bianban", "version": 1}
            self.command("scheme.publish", builtin="bianban")
        else:
            self.scheme = {"id": document["id"], "version": document["version"]}
            self.command("scheme.publish", document=document)
        for leader in LEADERS:
            self.person(leader, "leader")
        self.person(SUPERIOR, "superior")

    # --- recording ---------------------------------------------------------------------------

    def command(self, type_: str, actor: str = "admin", at: str = SETUP_AT, **fields: Any) -> str:
        """Append one command; return its id (appeals name their target by it)."""
        self._n += 1
        command_id = f"sc-{self._n:03d}"
        self.commands.append({"type": type_, "id": command_id, "actor": actor, "at": at, **fields})
        return command_id

    def department(self, department: str, in_charge: str = "p-L1", approved_posts: int = 8,
                   head: str | None = None) -> Scenario:
        self.command("org.department", department=department, name=f"科室 {department}",
                     approved_posts=approved_posts, in_charge=in_charge)
        self.departments[department] = {"in_charge": in_charge, "head": None}
        if head is not None:
            self.person(head, "department_head", department)
        return self

    def person(self, person: str, position: str = "staff", department: str | None = None) -> Scenario:
        self.command("org.person", person=person, name=f"员工{person}", position=position,
                     department=department)
        self.people[person] = {"position": position, "department": department}
        if position == "department_head" and department is not None:
            self.departments[department]["head"] = person
        return self

    def open(self, *subjects: str) -> Scenario:
        for subject in subjects:
            self.command("appraisal.open", year=YEAR, subject=subject, scheme=self.scheme)
        return self

    def rate(self, subject: str, leaf: str, period: str, role: str, score: str,
             rater: str | None = None, at: str = RATED_AT) -> str:
        rater = rater or self.rater(subject, role)
        return self.command("rating.record", actor=rater, at=at, appraisal=key(subject), leaf=leaf,
                            period=period, rater=rater, rater_role=role, score=score)

    def measure(self, subject: str, name: str, value: Any, at: str = MEASURED_AT) -> str:
        return self.command("measurement.record", actor="hr-office", at=at, appraisal=key(subject),
                            input=name, value=value, evidence="年度台账")

    def occur(self, subject: str, item: str, count: int = 1, at: str = OCCURRED_AT) -> str:
        return self.command("occurrence.record", actor="hr-office", at=at, appraisal=key(subject),
                            item=item, count=count, evidence="登记")

    def survey(self, subject: str, counts: dict[str, Any], name: str = "public_satisfaction",
               at: str = MEASURED_AT, evidence: str = "满意度测评") -> str:
        return self.command("survey.record", actor="hr-office", at=at, appraisal=key(subject),
                            input=name, counts=counts, evidence=evidence)

    def adjust(self, subject: str, item: str = "over_quota_hiring", at: str = ADJUSTED_AT) -> str:
        return self.command("adjustment.apply", actor="hr-office", at=at, appraisal=key(subject),
                            item=item, evidence="超编进人 1 名")

    def veto(self, subject: str, reason: str = "data_falsification", at: str = ADJUSTED_AT) -> str:
        return self.command("veto.impose", actor="discipline-office", at=at, appraisal=key(subject),
                            reason=reason, evidence="核查通报")

    def appeal(self, subject: str, target: str, at: str, actor: str | None = None) -> str:
        return self.command("appeal.file", actor=actor or self.appellant(subject), at=at,
                            appraisal=key(subject), target=target, grounds="事实有误")

    def decide(self, appeal: str, outcome: str, points: str | None = None, actor: str = "admin-2",
               at: str = "2026-01-20T09:00:00+08:00") -> str:
        fields: dict[str, Any] = {"appeal": appeal, "outcome": outcome, "reason": "复核结论"}
        if points is not None:
            fields["points"] = points
        return self.command("appeal.decide", actor=actor, at=at, **fields)

    def tie_break(self, order: list[str], at: str = "2026-01-08T09:00:00+08:00") -> str:
        return self.command("year.tie_break", at=at, year=YEAR, order=order, reason="领导班子集体研究")

    def publish_year(self, at: str) -> str:
        return self.command("year.publish", at=at, year=YEAR)

    # --- presets -----------------------------------------------------------------------------

    def complete_department(self, department: str, fir: Any = "95", zombie: Any = "100",
                            reform: str = "100", complaints: int = 0) -> Scenario:
        self.measure(department, "function_implementation_rate", fir)
        self.measure(department, "zombie_cleanup_rate", zombie)
        self.rate(department, "reform_tasks", "2025", "leadership_team", reform, rater="p-L2")
        if complaints:
            self.occur(department, "valid_complaint", count=complaints)
        return self

    def complete_person(self, person: str, business: str = "100", innovation: str = "50",
                        reports: int = 1) -> Scenario:
        self.rate(person, "business", "2025", "in_charge", business)
        self.rate(person, "innovation", "2025", "in_charge", innovation)
        if reports:
            self.occur(person, "report_adopted_provincial", count=reports)
        return self

    # --- who rates and appeals ---------------------------------------------------------------

    def rater(self, subject: str, role: str) -> str:
        """The person SCORING.md §5 lets rate `subject` in `role` (a leader not in charge of the
        subject's department for leadership_team)."""
        if subject in self.departments:
            department = self.departments[subject]
            if role == "self":
                return str(department["head"])
            return "p-L2"
        department = self.departments[self.people[subject]["department"]]
        if role == "self":
            return subject
        if role == "in_charge":
            return str(department["in_charge"])
        if role == "department_head":
            return str(department["head"])
        if role == "superior":
            return SUPERIOR
        return next(leader for leader in LEADERS if leader != department["in_charge"])

    def appellant(self, subject: str) -> str:
        if subject in self.departments:
            return str(self.departments[subject]["head"])
        return subject

    # --- running -----------------------------------------------------------------------------

    def ledger(self) -> AppraisalLedger:
        ledger = AppraisalLedger("memory://")
        ledger.submit(self.commands)
        return ledger

    def refusal(self, last: dict[str, Any] | None = None) -> tuple[Any, int, int]:
        """Run every command but the last, then the last: return (its error, the event count
        before it, the event count after it)."""
        *before, final = self.commands if last is None else [*self.commands, last]
        ledger = AppraisalLedger("memory://")
        ledger.submit(before)
        count = ledger.event_count()
        try:
            ledger.submit([final])
        except Refused as exc:
            return exc.outcome.error, count, ledger.event_count()
        raise AssertionError(f"accepted, expected a refusal: {final}")


def standard(*staff: str, head: str = "p-H1", department: str = "d-01") -> Scenario:
    """d-01 (in charge p-L1, head p-H1, 8 posts) with D = 100, and the given staff appraised."""
    scenario = Scenario().department(department, in_charge="p-L1", head=head)
    for person in staff:
        scenario.person(person, "staff", department)
    scenario.open(department, *staff)
    scenario.complete_department(department)
    return scenario


def person_row(results: dict[str, Any], person: str) -> dict[str, Any]:
    return next(p for p in results["people"] if p["id"] == person)


def department_row(results: dict[str, Any], department: str) -> dict[str, Any]:
    return next(d for d in results["departments"] if d["id"] == department)


def figure(explanation: dict[str, Any], figure_key: str) -> dict[str, Any]:
    return next(f for f in explanation["figures"] if f["key"] == figure_key)
