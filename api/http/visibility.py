"""What each caller may see of the documents the read side serves (pure functions, no I/O).

There is one anonymity policy and one function for it: `projections.documents.public_breakdown`
(the 公示 breakdown; its docstring and the README state the policy). Staff, the subject included,
see that breakdown: no rater identity, no individual score, a rater group's mean only when the
group has at least `MIN_RATERS_SHOWN` raters. To it a caller's view adds the caller's own ratings
of the subject (a rater may always see what they gave; the subject sees their self-ratings).
Admins and inspectors read the full explanation.
"""

from __future__ import annotations

from typing import Any

from projections.documents import MIN_RATERS_SHOWN, public_breakdown

__all__ = ["MIN_RATERS_SHOWN", "own_results", "public_breakdown", "public_history", "staff_view"]


def staff_view(breakdown: dict[str, Any], explanation: dict[str, Any], viewer: str) -> dict[str, Any]:
    """A public breakdown (`public_breakdown`, the current one or a publication's) as `viewer`
    sees it: with `viewer`'s own ratings of the subject, taken from the current `explanation`, as
    `events`, and how many ratings by others it leaves out. (The view holds the explanation's own
    event objects, not copies: like every function here it changes nothing it is given, and what
    it answers is written out, not changed.)"""
    ratings = [event for event in explanation.get("events", []) if event.get("kind") == "rating"]
    own = [event for event in ratings if _rated_by(event, viewer)]
    return {**breakdown, "events": own, "view": "breakdown",
            "hidden": {"ratings_by_others": len(ratings) - len(own)}}


def own_view(explanation: dict[str, Any], viewer: str) -> dict[str, Any]:
    """The current explanation as the subject (or anyone not an admin or inspector) sees it."""
    return staff_view(public_breakdown(explanation), explanation, viewer)


def public_history(events: list[dict[str, Any]], viewer: str) -> list[dict[str, Any]]:
    """An appraisal's stored events (`queries.audit_view`) as `viewer` may see them: the rating
    events of other raters are left out (the same rule as the breakdown). The events given, not copies."""
    return [event for event in events
            if not event["type"].endswith("RatingRecorded") or event["data"].get("rater") == viewer]


def _rated_by(event: dict[str, Any], viewer: str) -> bool:
    return event.get("rater", event.get("actor")) == viewer


def own_results(document: dict[str, Any], person: str, department: str | None) -> dict[str, Any]:
    """The year's results before publication as a member of staff sees them: their own entry, and
    their department's (the department score is part of their total)."""
    people = [dict(p) for p in document["people"] if p["id"] == person]
    departments = [dict(d) for d in document["departments"] if d["id"] == department]
    ties = [{**tie, "people": [person]} for tie in document["unresolved_ties"] if person in tie["people"]]
    return {**document, "departments": departments, "people": people, "unresolved_ties": ties,
            "view": "own"}
