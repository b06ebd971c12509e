"""Survey schemes for the tests (SCORING.md §12): the demo's `bianban` v2 (10 of collaboration's 30
points on a `public_satisfaction` leaf, proportional, target 100) and variants of it, each a small
edit of a fresh copy. The §12 example's rounds are `ROUND_1` and `ROUND_2`."""

from __future__ import annotations

from typing import Any

from api.cli.demo import satisfaction_scheme_document

ROUND_1 = {"satisfied": 40, "basically_satisfied": 8, "dissatisfied": 2}
ROUND_2 = {"satisfied": 25, "basically_satisfied": 5, "dissatisfied": 0}


def survey_scheme(*, min_responses: int | None = None, weights: dict[str, str] | None = None,
                  target: str | None = None, shortfall: tuple[str, str] | None = None,
                  scheme_id: str = "satisfaction") -> dict[str, Any]:
    """v2 as a scheme of its own (`satisfaction` version 1, superseding nothing), with the survey's `min_responses` or option weights changed, the leaf's proportional
    target changed, or (`shortfall` = (target, points_per_unit)) the leaf a full one with a
    shortfall rule reading the survey instead."""
    document = satisfaction_scheme_document()
    document.update(id=scheme_id, version=1)
    document.pop("supersedes")
    document.pop("reason")
    survey = document["inputs"]["public_satisfaction"]
    if min_responses is not None:
        survey["min_responses"] = min_responses
    for option in survey["options"]:
        if weights and option["id"] in weights:
            option["weight"] = weights[option["id"]]
    leaf = next(node for node in document["department"] if node["id"] == "public_satisfaction")
    if target is not None:
        leaf["base"]["target"] = target
    if shortfall is not None:
        leaf["base"] = {"type": "full"}
        leaf["rules"] = [{"id": "satisfaction_shortfall", "type": "shortfall", "input": "public_satisfaction",
                          "target": shortfall[0], "points_per_unit": shortfall[1]}]
    return document
