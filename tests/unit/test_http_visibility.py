"""What a member of staff may see of an explanation (api/http/visibility.py over the one anonymity
policy, projections.documents.public_breakdown): no rater, no individual score but their own, a
rater group's mean only from MIN_RATERS_SHOWN raters; on the worked example of SCORING.md §10, in
memory, and as a table of group sizes."""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

import pytest

from api.http.visibility import own_results, own_view, staff_view
from api.ledger import AppraisalLedger
from projections.documents import MIN_RATERS_SHOWN, public_breakdown
from tests.builders.worked_example import build

# The worked example with a third leadership_team rater of p-H1's business (a group of 3).
THIRD_RATER = [
    {"type": "org.person", "id": "x-p-L4", "actor": "admin", "at": "2025-01-02T09:00:00+08:00",
     "person": "p-L4", "name": "李四", "position": "leader"},
    {"type": "rating.record", "id": "x-r-L4", "actor": "p-L4", "at": "2025-12-20T10:00:00+08:00",
     "appraisal": "2025:p-H1", "leaf": "business", "period": "2025", "rater": "p-L4",
     "rater_role": "leadership_team", "score": "70"},
]


@cache
def _ledger() -> AppraisalLedger:
    ledger = AppraisalLedger("memory://")
    ledger.submit([*build(), *THIRD_RATER])
    return ledger


def explained(key: str) -> dict[str, Any]:
    return _ledger().explain(key)


def ratings(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in document["events"] if e["kind"] == "rating"]


def figure(document: dict[str, Any], key: str) -> dict[str, Any]:
    return next(f for f in document["figures"] if f["key"] == key)


def test_others_see_no_rater_and_no_individual_score() -> None:
    full = explained("2025:p-A")
    seen = own_view(full, "p-L2")
    assert ratings(full) and not ratings(seen)
    assert seen["hidden"] == {"ratings_by_others": len(ratings(full))} and seen["view"] == "breakdown"
    text = json.dumps(seen, ensure_ascii=False)
    assert '"rater"' not in text and '"comment"' not in text and '"rater_role"' not in text
    for rater in ("p-L1", "p-H1"):
        assert f'"{rater}"' not in text
    for ref in {e["ref"] for e in ratings(full)}:  # no rating is referred to
        assert f'"{ref}"' not in text
    # every figure stays, and every score's ingredient: composites, R, leaves, the summary
    assert [f["key"] for f in seen["figures"]] == [f["key"] for f in full["figures"]]
    june = figure(seen, "period:business:2025-06")
    assert june["value"] == figure(full, "period:business:2025-06")["value"] == "80.20"
    assert figure(seen, "base:business")["inputs"] == figure(full, "base:business")["inputs"]
    assert seen["summary"] == full["summary"]
    # the other facts are itemised: measurements, counted items
    assert {i["kind"] for i in seen["items"]} == {"measurement", "occurrence"}
    assert full["events"] and ratings(full)  # the input is not changed


def test_groups_under_three_raters_show_their_count_and_no_mean() -> None:
    june = figure(own_view(explained("2025:p-A"), "p-A"), "period:business:2025-06")
    # self 90, in_charge 80, department_head 70: one rater each
    assert june["inputs"] == {"department_head.mean": None, "department_head.raters": "1",
                              "in_charge.mean": None, "in_charge.raters": "1",
                              "self.mean": None, "self.raters": "1", "others": None}
    assert june["withheld"] == ["department_head.mean", "in_charge.mean", "others", "self.mean"]
    business = figure(own_view(explained("2025:p-H1"), "p-A"), "period:business:2025")
    assert business["inputs"]["leadership_team.raters"] == "3"
    assert business["inputs"]["leadership_team.mean"] == "80"  # p-L2 80, p-L3 90, p-L4 70: shown
    assert business["inputs"]["superior.mean"] is None and business["inputs"]["others"] is None


def test_a_rater_keeps_their_own_ratings() -> None:
    full = explained("2025:p-A")
    by_leader = own_view(full, "p-L1")
    assert {(e["rater"], e["score"]) for e in ratings(by_leader)} == {("p-L1", "80"), ("p-L1", "90"), ("p-L1", "70")}
    subject = own_view(full, "p-A")  # the person rated sees their self ratings only
    assert {e["rater"] for e in ratings(subject)} == {"p-A"}
    assert subject["hidden"] == {"ratings_by_others": 6}
    # a publication's breakdown with the viewer's own ratings from the current explanation
    published = public_breakdown(full)
    assert staff_view(published, full, "p-L1")["figures"] == by_leader["figures"]


def test_struck_ratings_are_not_listed_at_all() -> None:
    document = {
        "appraisal": "2025:k", "year": 2025, "subject": {"id": "k"}, "scheme": "s@1", "status": "provisional",
        "summary": {},
        "events": [{"ref": "k#2", "kind": "rating", "rater": "p-X", "score": "70", "actor": "p-X", "command": "c2"},
                   {"ref": "k#3", "kind": "rating", "rater": "p-Y", "score": "75", "actor": "p-Y", "command": "c3"},
                   {"ref": "k#4", "kind": "occurrence", "item": "absence", "count": 1, "at": "2025-03-03",
                    "actor": "hr", "command": "c4", "evidence": "考勤"}],
        "figures": [{"key": "base:business", "events": ["k#2", "k#3"], "struck": [
            {"ref": "k#2", "command": "c2", "kind": "rating", "why": "replaced", "by": "k#3"}]}],
        "struck": [{"ref": "k#2", "command": "c2", "kind": "rating", "why": "replaced"},
                   {"ref": "k#4", "command": "c4", "kind": "occurrence", "why": "overturned"}],
        "not_applicable": [],
    }
    seen = own_view(document, "p-Y")
    assert [e["ref"] for e in seen["events"]] == ["k#3"]  # their own rating
    assert seen["figures"] == [{"key": "base:business"}]
    assert seen["struck"] == [{"ref": "k#4", "command": "c4", "kind": "occurrence", "why": "overturned"}]
    assert seen["items"] == [{"ref": "k#4", "kind": "occurrence", "at": "2025-03-03", "what": "absence",
                              "evidence": "考勤", "count": 1, "struck": "overturned"}]
    assert "p-X" not in json.dumps(seen)


def _period(groups: dict[str, int]) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for role, raters in groups.items():
        inputs[f"{role}.mean"] = "80"
        inputs[f"{role}.raters"] = str(raters)
    return {"appraisal": "2025:k", "year": 2025, "subject": {"id": "k"}, "scheme": "s@1", "status": "provisional",
            "summary": {}, "events": [], "struck": [], "not_applicable": [],
            "figures": [{"key": "period:business:2025", "value": "80.00", "inputs": {**inputs, "others": "80"}},
                        {"key": "base:business", "value": "48.00", "inputs": {"R": "80"}}]}


@pytest.mark.parametrize(("groups", "shown"), [
    # rater group sizes → the means staff see
    ({"superior": 1}, set()),
    ({"superior": MIN_RATERS_SHOWN - 1}, set()),
    ({"superior": MIN_RATERS_SHOWN}, {"superior.mean", "others"}),
    ({"superior": 4, "leadership_team": 7}, {"superior.mean", "leadership_team.mean", "others"}),
    ({"superior": 4, "leadership_team": 2}, {"superior.mean"}),
    ({"self": 1, "leadership_team": 5}, {"leadership_team.mean"}),
])
def test_public_breakdown_withholds_the_means_of_groups_under_the_threshold(
        groups: dict[str, int], shown: set[str]) -> None:
    document = _period(groups)
    before = copy.deepcopy(document)
    period, base = public_breakdown(document)["figures"]
    means = {name for name, value in period["inputs"].items()
             if (name.endswith(".mean") or name == "others") and value is not None}
    assert means == shown
    assert {name: value for name, value in period["inputs"].items() if name.endswith(".raters")} == {
        f"{role}.raters": str(n) for role, n in groups.items()}  # counts always shown
    assert period["value"] == "80.00" and base == before["figures"][1]  # the composite and R stay
    withheld = {name for name in period["inputs"] if name.endswith(".mean") or name == "others"} - shown
    assert set(period.get("withheld", [])) == withheld
    assert document == before  # the explanation itself is not changed


def test_before_publication_staff_see_their_own_entry() -> None:
    document = _ledger().results(2025)
    own = own_results(document, "p-A", "d-01")
    assert [p["id"] for p in own["people"]] == ["p-A"] and [d["id"] for d in own["departments"]] == ["d-01"]
    assert own_results(document, "p-L1", None)["people"] == []
    tied = {**document, "unresolved_ties": [{"people": ["p-A", "p-H1"], "total": "80.00"}]}
    assert own_results(tied, "p-A", "d-01")["unresolved_ties"] == [{"people": ["p-A"], "total": "80.00"}]
