"""Generated appraisal years (hypothesis): an organisation of one to three departments, their
heads and staff, ratings by every rater group over several periods (some replaced), measurements,
counted items, deductions appealed and decided, vetoes, and (in half the years) a scheme with a
survey and its questionnaire rounds, some appealed; as the commands that make them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from tests.builders.survey_scheme import survey_scheme

SCHEME = {"id": "bianban", "version": 1}

scores = st.integers(min_value=0, max_value=1000).map(lambda tenths: str(Decimal(tenths) / 10))


@st.composite
def years(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = 0

    def cmd(kind: str, actor: str = "admin", **fields: Any) -> dict[str, Any]:
        nonlocal n
        n += 1
        return {"type": kind, "id": f"g-{n}", "actor": actor, "at": "2025-06-01T09:00:00+08:00", **fields}

    # Half the years use a scheme with a survey (SCORING.md §12) on the department tree, read by a
    # proportional base or by a shortfall rule, with drawn weights and min_responses.
    with_survey = draw(st.booleans())
    if with_survey:
        document = survey_scheme(
            min_responses=draw(st.integers(1, 60)),
            weights={"basically_satisfied": draw(st.sampled_from(["0.6", "0.5", "0.333", "1", "0"])),
                     "dissatisfied": draw(st.sampled_from(["0", "0.1", "0.25"]))},
            shortfall=draw(st.sampled_from([None, ("95", "0.5"), ("90", "0.125")])))
        scheme = {"id": document["id"], "version": document["version"]}
        commands = [cmd("scheme.publish", document=document)]
    else:
        scheme = SCHEME
        commands = [cmd("scheme.publish", builtin="bianban")]
    leaders = ["p-L1", "p-L2"]
    commands += [cmd("org.person", person=p, name=p, position="leader") for p in leaders]
    commands.append(cmd("org.person", person="p-S1", name="S1", position="superior"))
    subjects: list[tuple[str, str, str]] = []  # (subject, kind/position, department)
    for d in range(draw(st.integers(1, 3))):
        dep = f"d-{d}"
        commands.append(cmd("org.department", department=dep, name=dep, approved_posts=draw(st.integers(0, 12)),
                            in_charge=leaders[d % 2]))
        head = f"p-{d}h"
        commands.append(cmd("org.person", person=head, name=head, position="department_head", department=dep))
        subjects += [(dep, "department", dep), (head, "department_head", dep)]
        for s in range(draw(st.integers(1, 4))):
            staff = f"p-{d}s{s}"
            commands.append(cmd("org.person", person=staff, name=staff, position="staff", department=dep))
            subjects.append((staff, "staff", dep))
    for subject, _, _ in subjects:
        commands.append(cmd("appraisal.open", year=2025, subject=subject, scheme=scheme))

    for subject, kind, dep in subjects:
        key = f"2025:{subject}"
        in_charge = leaders[int(dep[2:]) % 2]
        head = f"p-{dep[2:]}h"
        if kind == "department":
            raters = [(head, "self"), ("p-L1", "leadership_team"), ("p-L2", "leadership_team")]
            leaves = ["reform_tasks"]
        elif kind == "department_head":
            other = "p-L2" if in_charge == "p-L1" else "p-L1"
            raters = [(subject, "self"), ("p-S1", "superior"), (in_charge, "in_charge"), (other, "leadership_team")]
            leaves = ["business", "innovation"]
        else:
            raters = [(subject, "self"), (in_charge, "in_charge"), (head, "department_head")]
            leaves = ["business", "innovation"]
        for leaf in leaves:
            for period in draw(st.lists(st.sampled_from(["2025", "2025-03", "2025-06", "2025-W10"]),
                                        max_size=3, unique=True)):
                for rater, role in raters:
                    if draw(st.booleans()):
                        for _ in range(draw(st.integers(1, 2))):  # a second rating replaces the first
                            commands.append(cmd("rating.record", actor=rater, appraisal=key, leaf=leaf,
                                                period=period, rater=rater, rater_role=role, score=draw(scores)))
        measurements = (["function_implementation_rate", "zombie_cleanup_rate"] if kind == "department"
                        else ["review_total", "review_errors"])
        for name in measurements:
            if draw(st.booleans()):
                value = draw(st.integers(0, 1000)) / 10 if name.endswith("rate") else draw(st.integers(0, 500))
                commands.append(cmd("measurement.record", actor="hr", appraisal=key, input=name, value=str(value)))
        items = ["valid_complaint"] if kind == "department" else ["absence", "report_adopted_provincial",
                                                                   "innovation_adopted"]
        for item in items:
            for _ in range(draw(st.integers(0, 3))):
                commands.append(cmd("occurrence.record", actor="hr", appraisal=key, item=item,
                                    count=draw(st.integers(1, 4))))
        if kind == "department" and with_survey:
            for _ in range(draw(st.integers(0, 3))):
                counts = {option: draw(st.integers(0, 40))
                          for option in ("satisfied", "basically_satisfied", "dissatisfied")}
                if not sum(counts.values()):
                    counts["satisfied"] = 1
                survey = cmd("survey.record", actor="hr", appraisal=key, input="public_satisfaction", counts=counts)
                commands.append(survey)
                outcome = draw(st.sampled_from([None, None, "upheld", "overturned"]))
                if outcome:
                    appeal = cmd("appeal.file", actor=head, appraisal=key, target=survey["id"], grounds="g")
                    commands += [appeal, cmd("appeal.decide", actor="admin-2", appeal=appeal["id"], outcome=outcome,
                                             reason="r")]
        if kind != "department" and draw(st.integers(0, 4)) == 0:
            ded = cmd("adjustment.apply", actor="hr", appraisal=key, item="over_quota_hiring")
            commands.append(ded)
            outcome = draw(st.sampled_from([None, "upheld", "overturned", "amended"]))
            if outcome:
                appeal = cmd("appeal.file", actor=subject, appraisal=key, target=ded["id"], grounds="g")
                decision = {"appeal": appeal["id"], "outcome": outcome, "reason": "r"}
                if outcome == "amended":
                    decision["points"] = str(-draw(st.integers(0, 200)) / 10)
                commands += [appeal, cmd("appeal.decide", actor="admin-2", **decision)]
        if kind != "department" and draw(st.integers(0, 9)) == 0:
            commands.append(cmd("veto.impose", actor="discipline", appraisal=key, reason="major_accident"))
    return commands
