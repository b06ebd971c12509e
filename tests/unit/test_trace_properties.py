"""Property: over generated years, every traced figure equals what its traced parts make it.

A person's total is max(0, Σ weight × part), a leaf is clamp(base + rules, 0, points), a node is the
sum of its children, a rating base is the weighted sum of its period composites, a survey's rate
(SCORING.md §12) is 100 / responses × each round's weighted sum and a proportional base reading it
points / target × rate (at most the points) — read only from the trace of `explain`, never by
recomputing the score another way. A survey round's weighted sum is checked against its counts and
the weights the trace names, and a shortfall reading a survey against the rate it names.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.ledger import AppraisalLedger
from tests.survey_scheme import survey_scheme

SCHEME = {"id": "bianban", "version": 1}


def _exact(text: str) -> Fraction:
    return Fraction(text)


def _shown(value: Fraction) -> str:
    exact = Decimal(value.numerator) / Decimal(value.denominator)  # 28 digits: enough to round 2 places
    return str(exact.quantize(Decimal("0.01"), ROUND_HALF_UP))


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


def _check_figures(doc: dict[str, Any]) -> None:
    figures = {f["key"]: f for f in doc["figures"]}
    for figure in figures.values():
        if figure.get("value") is None or "terms" not in figure:
            continue
        parts = sum((Fraction(t["weight"]) * _exact(figures[t["of"]]["exact"]) for t in figure["terms"]), Fraction(0))
        bounds = figure.get("bounds")
        if bounds:
            parts = max(parts, Fraction(bounds["min"]))
            if bounds["max"] is not None:
                parts = min(parts, Fraction(bounds["max"]))
        assert _exact(figure["exact"]) == parts, (doc["appraisal"], figure["key"])
        assert figure["value"] == _shown(parts)
    _check_surveys(doc, figures)


def _check_surveys(doc: dict[str, Any], figures: dict[str, dict[str, Any]]) -> None:
    """A round's weighted sum is Σ count × weight, its counts those of its event; the rounds of a
    survey add up to its responses and weighted sum; a shortfall reading a survey deducts
    points_per_unit × max(0, target − rate)."""
    events = {e["ref"]: e for e in doc["events"]}
    for key, figure in figures.items():
        if key.startswith("survey-round:"):
            counts = events[figure["events"][0]]["counts"]
            assert {k[6:]: int(v) for k, v in figure["inputs"].items() if k.startswith("count.")} == counts
            weighted = sum((Fraction(figure["params"][f"weight.{o}"]) * n for o, n in counts.items()), Fraction(0))
            assert _exact(figure["exact"]) == weighted, (doc["appraisal"], key)
        elif key.startswith("survey:"):
            rounds = [f for f in figures.values() if f["key"].startswith("survey-round:")
                      and f["events"][0] in figure.get("events", [])]
            assert int(figure["inputs"]["responses"]) == sum(int(r["inputs"]["responses"]) for r in rounds)
            assert Fraction(figure["inputs"]["weighted"]) == sum((_exact(r["exact"]) for r in rounds), Fraction(0))
            missing = int(figure["inputs"]["responses"]) < int(figure["params"]["min_responses"])
            assert (figure["value"] is None) is missing
            assert any("fewer than" in why for why in doc["summary"]["incomplete"]) is missing
        elif key.startswith("rule:") and figure.get("rule", {}).get("type") == "shortfall":
            survey = figures.get(f"survey:{figure['params']['input']}")
            if survey is None:
                continue
            value = Fraction(0)
            if survey["value"] is not None:
                shortfall = max(Fraction(0), Fraction(figure["params"]["target"]) - _exact(survey["exact"]))
                value = -Fraction(figure["params"]["points_per_unit"]) * shortfall
            assert _exact(figure["exact"]) == value, (doc["appraisal"], key)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(years())
def test_every_figure_equals_the_sum_of_its_traced_parts(commands: list[dict[str, Any]]) -> None:
    ledger = AppraisalLedger("memory://")
    ledger.submit(commands)
    results = ledger.results(2025)
    for person in results["people"]:
        doc = ledger.explain(f"2025:{person['id']}")
        _check_figures(doc)
        figures = {f["key"]: f for f in doc["figures"]}
        assert figures["total"]["value"] == person["total"]
        assert figures["individual"]["value"] == person["individual_score"]
        assert {k[5:]: f["value"] for k, f in figures.items() if k[5:] in person["leaves"]} == person["leaves"]
    for department in results["departments"]:
        doc = ledger.explain(f"2025:{department['id']}")
        _check_figures(doc)
        assert {f["key"]: f for f in doc["figures"]}["department"]["value"] == department["score"]


def test_the_check_catches_a_figure_that_disagrees_with_its_parts() -> None:
    from tests.worked_example import build

    ledger = AppraisalLedger("memory://")
    ledger.submit(build())
    doc = ledger.explain("2025:p-A")
    _check_figures(doc)
    checked = [f["key"] for f in doc["figures"] if f.get("terms") and f.get("value") is not None]
    assert {"total", "individual", "node:business", "base:business"} <= set(checked)
    for figure in doc["figures"]:
        if figure["key"] == "rule:review_errors":
            figure["exact"] = "-3"  # as if the trace claimed one excess error instead of two
    try:
        _check_figures(doc)
    except AssertionError:
        return
    raise AssertionError("a corrupted trace passed the check")
