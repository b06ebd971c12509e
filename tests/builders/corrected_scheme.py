"""Corrected versions of the default scheme `bianban` (v2, superseding v1) for replay and adoption
tests: each correction is a small edit of a copy of the v1 document, never of v1 itself."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from domain.scheme import builtin_document

REASON = "2025 年度方案修订:按考核办公室会议纪要调整权重与扣分标准"

Edit = Callable[[dict[str, Any]], None]


def _leaf(document: dict[str, Any], tree: str, leaf_id: str) -> dict[str, Any]:
    def walk(nodes: list[dict[str, Any]]) -> dict[str, Any] | None:
        for node in nodes:
            if node["id"] == leaf_id:
                return node
            found = walk(node.get("children", []))
            if found is not None:
                return found
        return None

    found = walk(document[tree])
    assert found is not None, leaf_id
    return found


def staff_weights(document: dict[str, Any]) -> None:
    """(a) composition: staff 0.5 / 0.5 -> 0.4 / 0.6."""
    document["composition"]["staff"] = {"department": "0.4", "individual": "0.6"}


def implementation_target(document: dict[str, Any]) -> None:
    """(b) threshold: function_implementation_rate target 95 -> 90."""
    _leaf(document, "department", "duty")["rules"][0]["target"] = "90"


def absence_points(document: dict[str, Any]) -> None:
    """(c) a rule's points: absence -1 -> -2 each."""
    _leaf(document, "individual", "discipline")["rules"][0]["points_each"] = "-2"


def staff_raters(document: dict[str, Any]) -> None:
    """(d) rater shares for staff: self 0.3 -> 0.2, in_charge 0.6 -> 0.5, department_head 0.4 -> 0.5."""
    document["raters"]["staff"] = {"self": "0.2", "others": {"in_charge": "0.5", "department_head": "0.5"}}


def wider_top_bands(document: dict[str, Any]) -> None:
    """Grading: tier 1 takes 50% and grade A 50% (so a cohort of two has a tier 1 and an A)."""
    document["grading"]["tiers"][0]["share"] = "0.5"
    document["grading"]["grades"][0]["share"] = "0.5"


def without_innovation(document: dict[str, Any]) -> None:
    """The innovation leaf removed; discipline takes its 20 points (40)."""
    document["individual"] = [node for node in document["individual"] if node["id"] != "innovation"]
    _leaf(document, "individual", "discipline")["points"] = "40"


def without_department_head_raters(document: dict[str, Any]) -> None:
    """Staff rated by the leader in charge only: the department head's role has no weight."""
    document["raters"]["staff"] = {"self": "0.3", "others": {"in_charge": "1"}}


ALL_FOUR = (staff_weights, implementation_target, absence_points, staff_raters)


def corrected(*edits: Edit, version: int = 2, reason: str = REASON) -> dict[str, Any]:
    """A copy of bianban v1 with the given edits, as version `version` superseding version 1."""
    document = copy.deepcopy(builtin_document("bianban"))
    document.update({"version": version, "supersedes": 1, "reason": reason})
    for edit in edits:
        edit(document)
    return document


def publish(document: dict[str, Any], command_id: str = "v2-publish",
            at: str = "2026-01-06T09:00:00+08:00") -> dict[str, Any]:
    return {"type": "scheme.publish", "id": command_id, "actor": "admin", "at": at, "document": document}


def adopt(version: int = 2, command_id: str = "v2-adopt", at: str = "2026-01-10T09:00:00+08:00",
          year: int = 2025, reason: str = "采用修订后的方案 adopt the corrected scheme") -> dict[str, Any]:
    return {"type": "year.adopt", "id": command_id, "actor": "admin", "at": at, "year": year,
            "scheme": {"id": "bianban", "version": version}, "reason": reason}
