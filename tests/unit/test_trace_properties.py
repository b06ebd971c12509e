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

from api.ledger import AppraisalLedger
from tests.builders.generated_years import years


def _exact(text: str) -> Fraction:
    return Fraction(text)


def _shown(value: Fraction) -> str:
    exact = Decimal(value.numerator) / Decimal(value.denominator)  # 28 digits: enough to round 2 places
    return str(exact.quantize(Decimal("0.01"), ROUND_HALF_UP))


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
    from tests.builders.worked_example import build

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
