"""The HTTP API end to end, on SQLite and PostgreSQL: every role's allowed actions work, every
forbidden one is refused with the right status, a problem+json body naming the field and the rule,
and nothing recorded; idempotency; read-your-writes; tokens; logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from eventsourcing.persistence import IntegrityError, OperationalError
from fastapi.testclient import TestClient

from api.http import logs
from tests.builders.http_world import World, free_port, world

APPRAISAL = Path(sys.executable).with_name("appraisal")
A, H1, D01 = "2025:p-A", "2025:p-H1", "2025:d-01"


@pytest.fixture
def w(db_url: str) -> Iterator[World]:
    with world(db_url) as made:
        yield made


@pytest.fixture
def client(w: World) -> Iterator[TestClient]:
    with TestClient(w.app) as made:
        yield made


def rating(cid: str, role: str, score: str = "82", *, leaf: str = "business", period: str = "2025-12",
           **extra: Any) -> dict[str, Any]:
    """A rater's rating: without `at` (their business time is the server's clock)."""
    return {"id": cid, "leaf": leaf, "period": period, "rater_role": role, "score": score, **extra}


def days_ago(days: float) -> str:
    """A business time `days` before now (the world's ledger keeps the real clock)."""
    return (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds")


def assert_problem(response: httpx.Response, status: int, rule: str, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail", "field", "rule"}
    assert body["status"] == status and body["rule"] == rule, body
    assert body["type"] == f"https://appraisal-ledger/problems/{rule}"
    if field is not None:
        assert body["field"] == field, body
    return body


# --- forbidden: the right status, and nothing recorded ----------------------------------------------

RATING_BODY = rating("x-rating", "in_charge")
FORBIDDEN = [
    # (role, method, path, body, status, rule, field)
    ("inspector", "POST", f"/appraisals/{A}/ratings", RATING_BODY, 403, "inspector-read-only", "authorization"),
    ("inspector", "POST", f"/appraisals/{A}/measurements", {"input": "review_total", "value": "1"}, 403,
     "inspector-read-only", None),
    ("inspector", "PUT", "/people/p-Z", {"name": "Z", "position": "leader"}, 403, "inspector-read-only", None),
    ("staff", "POST", f"/appraisals/{A}/measurements", {"input": "review_total", "value": "1"}, 403,
     "role-required", "authorization"),
    ("staff", "POST", f"/appraisals/{A}/occurrences", {"item": "absence"}, 403, "role-required", None),
    ("staff", "POST", f"/appraisals/{A}/adjustments", {"item": "over_quota_hiring"}, 403, "role-required", None),
    ("staff", "POST", f"/appraisals/{A}/vetoes", {"reason": "major_accident"}, 403, "role-required", None),
    ("staff", "POST", "/schemes", {"builtin": "bianban"}, 403, "role-required", None),
    ("staff", "POST", "/appraisals", {"year": 2025, "subject": "d-02", "scheme": {"id": "bianban", "version": 1}},
     403, "role-required", None),
    ("leader", "PUT", "/departments/d-09", {"name": "九科", "approved_posts": 3}, 403, "role-required", None),
    ("staff", "POST", "/years/2025/publication", {}, 403, "role-required", None),
    ("staff", "POST", "/years/2025/finalization", {}, 403, "role-required", None),
    ("staff", "POST", "/years/2025/tie-breaks", {"order": ["p-A", "p-H1"], "reason": "r"}, 403, "role-required", None),
    ("staff", "POST", "/years/2025/adoption", {"scheme": {"id": "bianban", "version": 1}, "reason": "r"}, 403,
     "role-required", None),
    ("recorder", "POST", "/appraisals", {"year": 2025, "subject": "d-02", "scheme": {"id": "bianban", "version": 1}},
     403, "role-required", None),
    ("recorder", "POST", "/years/2025/publication", {}, 403, "role-required", None),
    ("recorder", "POST", "/appeals/we-appeal/decision", {"outcome": "upheld", "reason": "r"}, 403,
     "role-required", None),
    ("admin", "POST", f"/appraisals/{A}/measurements", {"input": "review_total", "value": "1"}, 403,
     "role-required", None),
    ("staff", "POST", "/commands", {"type": "measurement.record", "appraisal": A, "input": "review_total",
                                    "value": "1"}, 403, "role-required", None),
    # raters: only as themselves, only in the roles SCORING.md §5 allows them
    ("staff", "POST", f"/appraisals/{A}/ratings", rating("x-r1", "self", rater="p-L1"), 403, "rater-is-caller", "rater"),
    ("outsider", "POST", f"/appraisals/{A}/ratings", rating("x-r2", "in_charge"), 403, "rater-roles", "rater_role"),
    ("staff", "POST", f"/appraisals/{H1}/ratings", rating("x-r3", "department_head"), 403, "rater-roles", None),
    ("leader", "POST", f"/appraisals/{A}/ratings", rating("x-r4", "self"), 403, "rater-roles", None),
    # appeals: only the subject's own
    ("head", "POST", f"/appraisals/{A}/appeals", {"target": "we-027", "grounds": "g"}, 403, "appeal-by-subject", "actor"),
]


@pytest.mark.parametrize(("role", "method", "path", "body", "status", "rule", "field"), FORBIDDEN,
                         ids=[f"{c[0]}-{c[1]}-{c[2].split('/')[-1]}-{c[5]}" for c in FORBIDDEN])
def test_forbidden_actions_are_refused_and_record_nothing(
        w: World, client: TestClient, role: str, method: str, path: str, body: dict[str, Any],
        status: int, rule: str, field: str | None) -> None:
    before = w.ledger.event_count()
    command_id = f"forbidden-{role}-{rule}"
    response = client.request(method, path, json={**body, "id": command_id}, headers=w.auth(role))
    assert_problem(response, status, rule, field)
    assert w.ledger.event_count() == before
    assert w.ledger.commands([command_id]) == {}


@pytest.mark.parametrize(("headers", "rule"), [
    ({}, "token-missing"),
    ({"Authorization": "Basic YWRtaW46YWRtaW4="}, "token-malformed"),
    ({"Authorization": "Bearer not-one-of-ours"}, "token-malformed"),
    ({"Authorization": "Bearer al_" + "x" * 43}, "token-unknown"),
])
def test_no_valid_token_is_401_saying_why(w: World, client: TestClient, headers: dict[str, str], rule: str) -> None:
    before = w.ledger.event_count()
    response = client.post(f"/appraisals/{A}/ratings", json=rating("x-401", "self"), headers=headers)
    assert_problem(response, 401, rule, "authorization")
    assert response.headers["www-authenticate"].startswith("Bearer ")
    assert_problem(client.get("/years/2025/results", headers=headers), 401, rule)
    assert w.ledger.event_count() == before


def test_a_revoked_token_stops_working(w: World, client: TestClient) -> None:
    assert client.get("/me", headers=w.auth("staff")).json()["person"] == "p-A"
    w.app.state.credentials.revoke(w.tokens["staff"], by="tests")
    body = assert_problem(client.get("/me", headers=w.auth("staff")), 401, "token-revoked")
    assert "revoked" in body["detail"] and "tests" in body["detail"]


# --- allowed: each role's actions work -------------------------------------------------------------

def test_every_role_can_do_what_it_may(w: World, client: TestClient) -> None:
    def ok(role: str, method: str, path: str, body: dict[str, Any] | None = None, status: int = 201) -> dict[str, Any]:
        response = client.request(method, path, json=body, headers=w.auth(role))
        assert response.status_code == status, response.text
        answer = response.json()
        assert answer["status"] == "accepted" and answer["position"] >= 1
        return answer

    before = w.ledger.event_count()
    # admin: organisation, schemes, appraisals
    ok("admin", "PUT", "/departments/d-03", {"name": {"zh": "三科", "en": "Third"}, "approved_posts": 4,
                                             "in_charge": "p-L3"})
    ok("admin", "PUT", "/people/p-B", {"name": "乙", "position": "staff", "department": "d-03"})
    opened = ok("admin", "POST", "/appraisals", {"year": 2025, "subject": "p-B",
                                                 "scheme": {"id": "bianban", "version": 1}})
    assert opened["target"] == "2025:p-B" and opened["type"] == "appraisal.open"
    assert ok("admin", "POST", "/schemes", {"builtin": "bianban"}, status=200)["events"] == 0  # already published
    # recorder: measurements, occurrences, adjustments, vetoes
    ok("recorder", "POST", "/appraisals/2025:p-B/measurements", {"input": "review_total", "value": "120"})
    ok("recorder", "POST", f"/appraisals/{A}/occurrences",
       {"id": "occ-1", "item": "absence", "at": days_ago(3), "evidence": "考勤"})
    ok("recorder", "POST", f"/appraisals/{A}/adjustments", {"item": "over_quota_hiring"})
    ok("recorder", "POST", "/appraisals/2025:p-B/vetoes", {"reason": "major_accident", "evidence": "事故报告"})
    # raters, in the roles §5 gives them
    ok("leader", "POST", f"/appraisals/{A}/ratings", rating("r-L1", "in_charge", "91"))
    ok("head", "POST", f"/appraisals/{A}/ratings", rating("r-H1", "department_head", "77"))
    ok("staff", "POST", f"/appraisals/{A}/ratings", rating("r-A", "self", "95", rater="p-A"))
    ok("leader", "POST", "/commands",
       {"type": "rating.record", "appraisal": H1, **rating("r-L1-H1", "in_charge", "88")})
    # staff: an appeal on their own item; admin decides it
    ok("staff", "POST", f"/appraisals/{A}/appeals", {"id": "app-1", "target": "occ-1", "grounds": "因公外出"})
    ok("admin", "POST", "/appeals/app-1/decision", {"id": "dec-1", "outcome": "overturned", "reason": "核实"})
    ok("admin", "POST", "/years/2025/tie-breaks", {"order": ["p-A", "p-H1"], "reason": "测试"})
    recorded = w.ledger.event_count() - before
    assert recorded >= 14

    # the actor of every command is the token's person, whatever the body says
    audit = client.get(f"/audit?after={before}&limit=1000", headers=w.auth("inspector")).json()["events"]
    actors = {e["command_id"]: e["data"]["actor"] for e in audit if "command_id" in e}
    assert actors["r-L1"] == "p-L1" and actors["occ-1"] == "hr-office" and actors["app-1"] == "p-A"
    assert actors["dec-1"] == "admin-2"

    # inspector reads everything: full explanation with the individual ratings
    full = client.get(f"/appraisals/{A}/explanation", headers=w.auth("inspector")).json()
    assert full["view"] == "full"
    assert {e.get("rater") for e in full["events"] if e["kind"] == "rating"} >= {"p-L1", "p-H1", "p-A"}
    results = client.get("/years/2025/results", headers=w.auth("inspector")).json()
    assert {p["id"] for p in results["people"]} == {"p-A", "p-H1", "p-B"} and results["view"] == "all"
    appeals = client.get("/appeals?year=2025", headers=w.auth("inspector")).json()["appeals"]
    assert [(a["appeal"], a["status"], a["decision"]["outcome"]) for a in appeals] == [("app-1", "decided", "overturned")]

    # staff: their own breakdown (no other rater's individual rating), their own appeals
    own = client.get(f"/appraisals/{A}/explanation", headers=w.auth("staff")).json()
    assert own["view"] == "breakdown" and own["hidden"]["ratings_by_others"] > 0
    assert {e.get("rater") for e in own["events"] if e["kind"] == "rating"} == {"p-A"}
    assert client.get("/appeals?year=2025", headers=w.auth("staff")).json()["appeals"][0]["appeal"] == "app-1"
    assert client.get("/appeals?year=2025", headers=w.auth("head")).json()["appeals"] == []
    assert client.get("/appeals/app-1", headers=w.auth("staff")).status_code == 200
    assert_problem(client.get("/appeals/app-1", headers=w.auth("head")), 403, "appeal-access")
    mine = client.get("/years/2025/results", headers=w.auth("staff")).json()
    assert mine["view"] == "own" and [p["id"] for p in mine["people"]] == ["p-A"]
    assert [d["id"] for d in mine["departments"]] == ["d-01"]


def test_reads_that_are_not_everyones(w: World, client: TestClient) -> None:
    assert_problem(client.get("/audit", headers=w.auth("staff")), 403, "role-required")
    assert_problem(client.get("/audit", headers=w.auth("recorder")), 403, "role-required")
    assert_problem(client.get(f"/appraisals/{H1}/explanation", headers=w.auth("staff")), 403, "explanation-access")
    assert_problem(client.get(f"/appraisals/{H1}/breakdown", headers=w.auth("staff")), 403,
                   "breakdown-before-publication")
    assert_problem(client.get(f"/appraisals/{H1}/history", headers=w.auth("staff")), 403,
                   "breakdown-before-publication")
    assert_problem(client.get("/years/2025/results?scheme=bianban@1", headers=w.auth("staff")), 403, "role-required")
    assert client.get("/years/2025/results?scheme=bianban@1", headers=w.auth("admin")).json()["status"] == "replay"
    # a department's head sees the department's appraisal as their own
    assert client.get(f"/appraisals/{D01}/explanation", headers=w.auth("head")).json()["view"] == "breakdown"
    assert_problem(client.get(f"/appraisals/{A}/explanation?known_at=2025-06-30T12:00:00",
                              headers=w.auth("admin")), 422, "request-parameters", "known_at")


def test_explanation_as_of_a_business_time(w: World, client: TestClient) -> None:
    path = f"/appraisals/{A}/explanation?known_at=2025-06-30T23:59:59%2B08:00"
    then = client.get(path, headers=w.auth("admin")).json()
    periods = {e["period"] for e in then["events"] if e["kind"] == "rating"}
    assert then["known_at"].startswith("2025-06-30") and periods == {"2025-06"}
    own = client.get(path, headers=w.auth("staff")).json()
    assert own["view"] == "breakdown" and {e["rater"] for e in own["events"] if e["kind"] == "rating"} == {"p-A"}
    assert_problem(client.get(path, headers=w.auth("head")), 403, "explanation-access")


def test_publication_opens_the_breakdowns_of_others_without_individual_ratings(w: World, client: TestClient) -> None:
    assert client.get("/years/2025/results", headers=w.auth("staff")).json()["view"] == "own"
    published = client.post("/years/2025/publication", headers=w.auth("admin"))
    assert published.status_code == 201, published.text
    results = client.get("/years/2025/results", headers=w.auth("staff")).json()
    assert results["view"] == "published" and results["status"] == "published"
    assert {p["id"]: p["total"] for p in results["people"]} == {"p-A": "79.16", "p-H1": "89.69"}

    seen = client.get(f"/appraisals/{H1}/breakdown", headers=w.auth("staff")).json()
    assert seen["summary"]["total"] == "89.69"
    assert not [e for e in seen["events"] if e["kind"] == "rating"]
    text = json.dumps(seen)
    assert '"rater"' not in text and '"comment"' not in text
    means = [f["inputs"] for f in seen["figures"] if f["key"].startswith("period:business")]
    assert means and all("superior.mean" in m for m in means)  # group means stay
    # a rater sees their own ratings of the subject, and no one else's
    by_leader = client.get(f"/appraisals/{H1}/breakdown", headers=w.auth("leader")).json()
    assert {e["rater"] for e in by_leader["events"] if e["kind"] == "rating"} == {"p-L1"}
    history = client.get(f"/appraisals/{H1}/history", headers=w.auth("staff")).json()
    assert history["view"] == "breakdown"
    assert not [e for e in history["events"] if e["type"].endswith("RatingRecorded")]
    assert any(e["type"].endswith("RatingRecorded")
               for e in client.get(f"/appraisals/{H1}/history", headers=w.auth("inspector")).json()["events"])


# --- errors ----------------------------------------------------------------------------------------

def test_refusals_name_the_field_and_the_rule(w: World, client: TestClient) -> None:
    before = w.ledger.event_count()
    staff = w.auth("staff")
    assert_problem(client.post(f"/appraisals/{A}/ratings", json=rating("e1", "self", "101"), headers=staff),
                   422, "command-fields", "score")
    assert_problem(client.post(f"/appraisals/{A}/ratings", json={"leaf": "business", "rater_role": "self",
                                                                "score": "80"}, headers=staff),
                   422, "command-fields", "period")
    assert_problem(client.post(f"/appraisals/{A}/ratings", json={**rating("e2", "self"), "colour": 1},
                               headers=staff), 422, "command-fields", "colour")
    assert_problem(client.post(f"/appraisals/{A}/ratings", json=rating("e3", "self", leaf="discipline"),
                               headers=staff), 422, "rated-leaves", "leaf")
    assert_problem(client.post(f"/appraisals/{A}/ratings", json={**rating("e4", "self"), "appraisal": H1},
                               headers=staff), 422, "path-mismatch", "appraisal")
    assert_problem(client.post("/appraisals/2025:p-nobody/ratings", json=rating("e5", "self"), headers=staff),
                   404, "appraisal-open", "appraisal")
    assert_problem(client.post(f"/appraisals/{A}/ratings", content=b"{not json",
                               headers={**staff, "content-type": "application/json"}), 422, "command-fields")
    assert_problem(client.post(f"/appraisals/{A}/ratings", json={**rating("e6", "self"), "comment": "a\x00b"},
                               headers=staff), 422, "text", "comment")
    assert_problem(client.get("/years/1999/results", headers=w.auth("admin")), 404, "year-open", "year")
    # (to staff, the 403 of another's: tests/e2e/test_security.py, no existence oracle)
    assert_problem(client.get("/appraisals/2025:p-zzz/breakdown", headers=w.auth("admin")), 404, "appraisal-open")
    assert_problem(client.get("/appeals/none", headers=w.auth("inspector")), 404, "appeal-known")
    assert_problem(client.get("/no/such/path", headers=staff), 404, "no-such-resource")
    assert_problem(client.delete("/years/2025/results", headers=staff), 405, "method-not-allowed")
    assert_problem(client.post("/years/2025/finalization", headers=w.auth("admin")), 422,
                   "finalize-after-publicity")
    assert w.ledger.event_count() == before


NUMBER_REFUSALS = [
    # (role, method, path, body, field): every number outside the grammar of COMMANDS.md "Numbers"
    ("staff", "POST", f"/appraisals/{A}/ratings", rating("n1", "self", "1E-5000", period="2025-01"), "score"),
    ("staff", "POST", f"/appraisals/{A}/ratings", rating("n2", "self", "1E+2", period="2025-01"), "score"),
    ("staff", "POST", f"/appraisals/{A}/ratings", rating("n3", "self", "1e2", period="2025-01"), "score"),
    ("staff", "POST", f"/appraisals/{A}/ratings", rating("n4", "self", True, period="2025-01"), "score"),  # type: ignore[arg-type]
    ("staff", "POST", f"/appraisals/{A}/ratings", rating("n5", "self", "８７", period="2025-01"), "score"),
    ("staff", "POST", f"/appraisals/{A}/ratings", rating("n6", "self", 1e-300, period="2025-01"), "score"),  # type: ignore[arg-type]
    ("staff", "POST", f"/appraisals/{A}/ratings", rating("n7", "self", "85.1234567", period="2025-01"), "score"),
    ("admin", "POST", f"/appraisals/{A}/measurements", {"input": "review_total", "value": "４００"}, "value"),
    ("admin", "POST", f"/appraisals/{A}/occurrences", {"item": "absence", "count": "3.0"}, "count"),
    ("admin", "POST", f"/appraisals/{A}/occurrences", {"item": "absence", "count": True}, "count"),
    ("admin", "PUT", "/departments/d-09", {"name": "九科", "approved_posts": "1,000"}, "approved_posts"),
    ("admin", "POST", "/appeals/none/decision", {"outcome": "amended", "points": "-0x10", "reason": "r"}, "points"),
    ("admin", "POST", "/appraisals", {"year": "2025.0", "subject": "p-A", "scheme": {"id": "bianban", "version": 1}},
     "year"),
    ("admin", "POST", "/commands", {"type": "rating.record", "appraisal": A, "leaf": "business", "period": "2025",
                                    "rater_role": "in_charge", "score": "NaN"}, "score"),
    ("admin", "POST", "/schemes", {"document": {"id": "bianban", "version": 2, "composition": {
        "staff": {"department": "5E-1", "individual": "0.5"}}}}, "document.composition.staff.department"),
]


@pytest.mark.parametrize(("role", "method", "path", "body", "field"), NUMBER_REFUSALS,
                         ids=[f"{row[2]}-{row[4]}-{index}" for index, row in enumerate(NUMBER_REFUSALS)])
def test_a_number_outside_the_grammar_is_422_number_format_naming_the_field(
        w: World, client: TestClient, role: str, method: str, path: str, body: dict[str, Any], field: str) -> None:
    before = w.ledger.event_count()
    answer = client.request(method, path, json=body, headers=w.auth(role))
    problem = assert_problem(answer, 422, "number-format", field)
    assert "数字格式" in problem["detail"] and "number format" in problem["detail"]
    assert w.ledger.event_count() == before  # nothing recorded: the log position does not move


def test_the_schema_shows_the_number_grammar(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    score = schemas["RatingBody"]["properties"]["score"]
    assert {"type": "string", "pattern": r"^-?[0-9]{1,9}(\.[0-9]{1,6})?$"} in score["anyOf"]
    count = schemas["OccurrenceBody"]["properties"]["count"]
    assert {"type": "string", "pattern": r"^-?[0-9]{1,9}$"} in count["anyOf"]


def test_the_store_unavailable_is_503_and_a_lasting_conflict_409(w: World, client: TestClient,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger is the one retry layer: a write the store cannot take is tried `STORE_ATTEMPTS`
    times, a conflicting one decided again `MAX_ATTEMPTS` times; HTTP answers with what is left."""
    from api.ledger import application as ledger_module

    calls = []

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        raise OperationalError("connection refused")

    def conflicting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        raise IntegrityError("duplicate key value violates unique constraint")

    monkeypatch.setattr(ledger_module, "STORE_PAUSE", 0)
    monkeypatch.setattr(ledger_module, "CONFLICT_PAUSE", 0)
    before = w.ledger.event_count()
    monkeypatch.setattr(w.ledger.recorder, "insert_events", unavailable)
    response = client.post(f"/appraisals/{A}/ratings", json=rating("u1", "self"), headers=w.auth("staff"))
    assert_problem(response, 503, "store-unavailable")
    assert response.headers["retry-after"]
    assert len(calls) == ledger_module.STORE_ATTEMPTS
    monkeypatch.setattr(w.ledger, "event_count", unavailable)
    assert_problem(client.get("/health"), 503, "store-unavailable")
    monkeypatch.undo()

    calls.clear()
    monkeypatch.setattr(ledger_module, "CONFLICT_PAUSE", 0)
    monkeypatch.setattr(w.ledger.recorder, "insert_events", conflicting)
    response = client.post(f"/appraisals/{A}/ratings", json=rating("c1", "self"), headers=w.auth("staff"))
    assert_problem(response, 409, "concurrency-conflict")
    assert len(calls) == ledger_module.MAX_ATTEMPTS
    monkeypatch.undo()
    assert w.ledger.event_count() == before  # nothing recorded


# --- idempotency and read-your-writes --------------------------------------------------------------

def test_a_command_id_is_recorded_once(w: World, client: TestClient) -> None:
    before = w.ledger.event_count()
    first = client.post(f"/appraisals/{A}/ratings", json=rating("idem-1", "self", "93"), headers=w.auth("staff"))
    again = client.post(f"/appraisals/{A}/ratings", json=rating("idem-1", "self", "93"), headers=w.auth("staff"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert {**first.json(), "duplicate": True} == again.json()
    assert w.ledger.event_count() == before + 1
    other = client.post(f"/appraisals/{A}/ratings", json=rating("idem-1", "self", "94"), headers=w.auth("staff"))
    assert_problem(other, 409, "idempotency", "id")
    # the same id from someone else is another command: refused too
    assert_problem(client.post(f"/appraisals/{A}/ratings", json=rating("idem-1", "in_charge", "93"),
                               headers=w.auth("leader")), 409, "idempotency")
    # an Idempotency-Key header names the command when the body has no id
    body = {k: v for k, v in rating("-", "self", "90").items() if k != "id"}
    keyed = [client.post(f"/appraisals/{A}/ratings", json=body, headers={**w.auth("staff"), "Idempotency-Key": "k-1"})
             for _ in range(2)]
    assert [r.status_code for r in keyed] == [201, 200] and keyed[0].json()["command"] == "k-1"
    assert w.ledger.event_count() == before + 2


# --- business time: who may give `at` (COMMANDS.md § Envelope) --------------------------------------

ABSENCE_DATED = "2025-03-01T09:00:00+08:00"


def fixed_clock(w: World) -> datetime:
    """The server's clock, stopped at a whole second of now (the ledger's `clock`)."""
    moment = datetime.now(UTC).replace(microsecond=0)
    w.ledger.clock = lambda: moment
    return moment


def business_time_of(w: World, client: TestClient, command_id: str) -> str:
    audit = client.get("/audit?limit=1000", headers=w.auth("inspector")).json()["events"]
    return next(e["data"]["at"] for e in audit if e.get("command_id") == command_id)


def recent_absence(w: World, client: TestClient, command_id: str = "bt-absence") -> str:
    """An absence the recorder dated two days back: its appeal window is open."""
    response = client.post(f"/appraisals/{A}/occurrences", headers=w.auth("recorder"),
                           json={"id": command_id, "item": "absence", "at": days_ago(2), "evidence": "考勤"})
    assert response.status_code == 201, response.text
    return command_id


def assert_nothing_recorded(w: World, before: int, command_id: str) -> None:
    assert w.ledger.event_count() == before and w.ledger.commands([command_id]) == {}


def test_a_staff_member_moves_no_appeal_window_by_naming_a_time(w: World, client: TestClient) -> None:
    """The security review's case: an absence dated 1 March 2025; the subject's appeal today is
    out of the window, and naming a time inside it is refused, not accepted."""
    recorded = client.post(f"/appraisals/{A}/occurrences", headers=w.auth("recorder"),
                           json={"id": "rv-absence", "item": "absence", "at": ABSENCE_DATED, "evidence": "考勤"})
    assert recorded.status_code == 201, recorded.text
    assert business_time_of(w, client, "rv-absence") == ABSENCE_DATED  # the recorder's time is kept
    before = w.ledger.event_count()
    appeal = {"id": "rv-appeal", "target": "rv-absence", "grounds": "因公外出"}
    assert_problem(client.post(f"/appraisals/{A}/appeals", json=appeal, headers=w.auth("staff")),
                   422, "appeal-window", "at")
    named = client.post(f"/appraisals/{A}/appeals", json={**appeal, "at": "2025-03-05T09:00:00+08:00"},
                        headers=w.auth("staff"))
    body = assert_problem(named, 422, "business-time", "at")
    assert body["detail"].startswith("业务时间") and "admin or recorder grant" in body["detail"]
    via_commands = client.post("/commands", headers=w.auth("staff"), json={
        "type": "appeal.file", "appraisal": A, **appeal, "at": "2025-03-05T09:00:00+08:00"})
    assert_problem(via_commands, 422, "business-time", "at")
    assert_nothing_recorded(w, before, "rv-appeal")


def test_without_a_grant_a_time_more_than_5_minutes_away_is_refused(w: World, client: TestClient) -> None:
    target = recent_absence(w, client)
    now = fixed_clock(w)
    before = w.ledger.event_count()
    for away in (timedelta(hours=-1), timedelta(minutes=-5, seconds=-1), timedelta(minutes=5, seconds=1)):
        at = (now + away).isoformat()
        response = client.post(f"/appraisals/{A}/appeals", headers=w.auth("staff"),
                               json={"id": "bt-appeal", "target": target, "grounds": "g", "at": at})
        assert_problem(response, 422, "business-time", "at")
        rated = client.post(f"/appraisals/{A}/ratings", json={**rating("bt-rating", "in_charge"), "at": at},
                            headers=w.auth("leader"))
        assert_problem(rated, 422, "business-time", "at")
    assert_nothing_recorded(w, before, "bt-appeal")
    assert w.ledger.commands(["bt-rating"]) == {}


def test_without_a_grant_the_business_time_is_the_server_clock(w: World, client: TestClient) -> None:
    target = recent_absence(w, client)
    now = fixed_clock(w)
    appealed = client.post(f"/appraisals/{A}/appeals", headers=w.auth("staff"),
                           json={"id": "bt-appeal", "target": target, "grounds": "g"})
    assert appealed.status_code == 201, appealed.text
    assert business_time_of(w, client, "bt-appeal") == now.isoformat()
    # within 5 minutes of the clock: accepted, and the business time is still the clock's
    for number, away in enumerate((timedelta(minutes=-4), timedelta(minutes=5))):
        rated = client.post(f"/appraisals/{A}/ratings", headers=w.auth("leader"),
                            json={**rating(f"bt-rating-{number}", "in_charge"), "at": (now + away).isoformat()})
        assert rated.status_code == 201, rated.text
        assert business_time_of(w, client, f"bt-rating-{number}") == now.isoformat()
    # re-sent with the same time: the same command, recorded once
    again = client.post(f"/appraisals/{A}/ratings", headers=w.auth("leader"),
                        json={**rating("bt-rating-0", "in_charge"), "at": (now - timedelta(minutes=4)).isoformat()})
    assert again.status_code == 200 and again.json()["duplicate"]


def test_an_admin_or_a_recorder_gives_a_past_business_time(w: World, client: TestClient) -> None:
    fixed_clock(w)
    recorded = client.post(f"/appraisals/{A}/occurrences", headers=w.auth("recorder"),
                           json={"id": "bt-past-absence", "item": "absence", "at": ABSENCE_DATED})
    assert recorded.status_code == 201, recorded.text
    admitted = client.put("/people/p-Z", headers=w.auth("admin"),
                          json={"id": "bt-past-person", "name": "甲", "position": "leader", "at": "2025-01-02T09:00:00+08:00"})
    assert admitted.status_code == 201, admitted.text
    assert business_time_of(w, client, "bt-past-absence") == ABSENCE_DATED
    assert business_time_of(w, client, "bt-past-person") == "2025-01-02T09:00:00+08:00"


@pytest.mark.parametrize(("role", "path", "body"), [
    ("admin", "/people/p-Z", {"name": "甲", "position": "leader"}),
    ("recorder", f"/appraisals/{A}/occurrences", {"item": "absence"}),
    ("staff", f"/appraisals/{A}/ratings", rating("-", "self")),
])
def test_no_one_gives_a_business_time_10_minutes_ahead(w: World, client: TestClient, role: str, path: str,
                                                       body: dict[str, Any]) -> None:
    now = fixed_clock(w)
    before = w.ledger.event_count()
    ahead = {**body, "id": f"bt-ahead-{role}", "at": (now + timedelta(minutes=10)).isoformat()}
    method = "PUT" if path.startswith("/people/") else "POST"
    response = client.request(method, path, json=ahead, headers=w.auth(role))
    body_ = assert_problem(response, 422, "business-time", "at")
    assert body_["detail"].startswith("业务时间")
    assert_nothing_recorded(w, before, f"bt-ahead-{role}")


def test_back_dated_events_are_marked_in_the_audit_trail_and_the_explanation(w: World, client: TestClient) -> None:
    """More than 7 days before their recording: the worked example's events (dated 2025) and an
    absence the recorder dates 1 March 2025; not one dated two days back."""
    recent_absence(w, client, "bt-recent")
    client.post(f"/appraisals/{A}/occurrences", headers=w.auth("recorder"),
                json={"id": "bt-old", "item": "absence", "at": ABSENCE_DATED})
    inspector = w.auth("inspector")
    every = client.get("/audit?limit=1000", headers=inspector).json()["events"]
    flags = {e["command_id"]: e["backdated"] for e in every if e.get("command_id")}
    assert flags["bt-old"] is True and flags["bt-recent"] is False and flags["we-001"] is True
    only = client.get("/audit?limit=1000&backdated=true", headers=inspector).json()["events"]
    others = client.get("/audit?limit=1000&backdated=false", headers=inspector).json()["events"]
    assert only and all(e["backdated"] for e in only) and not any(e["backdated"] for e in others)
    assert sorted(e["position"] for e in [*only, *others]) == [e["position"] for e in every]
    assert "bt-old" in {e["command_id"] for e in only} and "bt-recent" in {e["command_id"] for e in others}
    paged = client.get(f"/audit?limit=2&backdated=true&after={only[0]['position']}", headers=inspector).json()
    assert [e["position"] for e in paged["events"]] == [e["position"] for e in only[1:3]]

    explained = client.get(f"/appraisals/{A}/explanation", headers=inspector).json()["events"]
    by_command = {e["command"]: e for e in explained}
    assert by_command["bt-old"]["backdated"] is True and "backdated" not in by_command["bt-recent"]
    assert by_command["bt-old"]["at"] == ABSENCE_DATED
    history = client.get(f"/appraisals/{A}/history", headers=inspector).json()["events"]
    assert {e["data"]["command_id"]: e["backdated"] for e in history}["bt-old"] is True


def test_command_routes_are_plain_def_routes_run_on_worker_threads(w: World, client: TestClient) -> None:
    """The ledger is synchronous: every command route is a plain `def` (FastAPI runs it on its
    thread pool), never a coroutine that would block the event loop."""
    import asyncio
    import inspect

    from fastapi.routing import APIRoute

    from api.http.writes import router

    commands = [route for route in router.routes if isinstance(route, APIRoute)]
    assert len(commands) >= 15
    assert not [route.path for route in commands if inspect.iscoroutinefunction(route.endpoint)]
    seen, submit_one = [], w.ledger.submit_one

    def on_a_thread(body: dict[str, Any], **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no event loop runs in this thread: a worker thread's
            seen.append(True)
        else:
            seen.append(False)
        return submit_one(body, **kwargs)

    w.ledger.submit_one = on_a_thread  # type: ignore[method-assign]
    answer = client.post(f"/appraisals/{A}/ratings", json=rating("thread-1", "self", "88"), headers=w.auth("staff"))
    assert answer.status_code == 201, answer.text
    assert seen == [True]


def test_read_your_writes(w: World, client: TestClient) -> None:
    answer = client.post(f"/appraisals/{A}/ratings", json=rating("ryw-1", "self", "50", period="2025-11"),
                         headers=w.auth("staff"))
    position = answer.json()["position"]
    assert int(answer.headers["x-log-position"]) == position
    read = client.get(f"/appraisals/{A}/explanation?position={position}", headers=w.auth("staff"))
    assert read.status_code == 200 and int(read.headers["x-log-position"]) >= position
    assert "ryw-1" in {e["command"] for e in read.json()["events"]}
    assert_problem(client.get(f"/years/2025/results?position={position + 1000}", headers=w.auth("admin")),
                   422, "position-beyond-log", "position")


def test_a_read_side_behind_the_log_is_waited_for_then_503(w: World, client: TestClient,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    position = w.ledger.event_count()
    queries = w.app.state.queries
    monkeypatch.setattr(queries, "position", lambda: position - 3)  # a read model lagging behind
    late = client.get(f"/years/2025/results?position={position}", headers=w.auth("admin"))
    assert_problem(late, 503, "position-not-reached", "position")
    assert late.headers["retry-after"] == "1"
    lagging = iter([position - 2, position - 1, position, position])
    monkeypatch.setattr(queries, "position", lambda: next(lagging, position))
    assert client.get(f"/years/2025/results?position={position}", headers=w.auth("admin")).status_code == 200


# --- logs ------------------------------------------------------------------------------------------

def test_log_lines_carry_the_request_and_never_a_token_or_a_score(
        w: World, client: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("json")
    try:
        capsys.readouterr()
        response = client.post(f"/appraisals/{A}/ratings", json=rating("log-1", "self", "87.35"),
                               headers={**w.auth("staff"), "X-Request-ID": "req-42"})
        assert response.status_code == 201 and response.headers["x-request-id"] == "req-42"
        refused = client.post(f"/appraisals/{A}/ratings", json=rating("log-2", "self", "187.35"),
                              headers=w.auth("staff"))
        assert refused.status_code == 422
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    finally:
        import logging

        logging.getLogger().handlers = []
    requests = [line for line in lines if line.get("event") == "request"]
    assert len(requests) == 2
    accepted, rejected = requests
    assert accepted["request_id"] == "req-42" and accepted["actor"] == "p-A"
    assert accepted["command"] == "rating.record" and accepted["outcome"] == "accepted"
    assert accepted["status"] == 201 and accepted["latency_ms"] >= 0
    assert rejected["outcome"] == "refused" and rejected["rule"] == "command-fields" and rejected["field"] == "score"
    text = json.dumps(lines)
    assert w.tokens["staff"] not in text and w.tokens["staff"][3:12] not in text
    assert "87.35" not in text and "187.35" not in text


def test_the_log_level_filters_lines_and_an_unknown_one_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    try:
        logs.configure("json", "warning")
        capsys.readouterr()
        logs.log.info("request", status=201)
        logs.log.warning("store_unavailable", error="OperationalError")
        logging.getLogger("uvicorn.error").info("Started server process")
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
        assert [(line["event"], line["level"], line["logger"]) for line in lines] == [
            ("store_unavailable", "warning", "appraisal.http")]
        with pytest.raises(ValueError, match="APPRAISAL_LOG_LEVEL"):
            logs.configure("json", "loud")
    finally:
        logging.getLogger().handlers = []
        logs.configure("json", "info")  # as the other tests found it
        logging.getLogger().handlers = []


# --- the command line: tokens and serve ------------------------------------------------------------

def cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(APPRAISAL), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "APPRAISAL_DB": db_url})


def test_tokens_from_the_command_line_and_serve(db_url: str) -> None:
    with world(db_url):
        pass  # the worked example in the store
    created = cli(db_url, "token", "create", "--person", "p-A")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("al_") and len(token) > 40
    admin = cli(db_url, "token", "create", "--person", "p-L1", "--grant", "admin", "--by", "tests").stdout.strip()
    assert cli(db_url, "token", "create", "--person", "p-nobody").returncode != 0  # staff must be people
    assert cli(db_url, "token", "create", "--person", "p-S1", "--grant", "inspector", "--grant", "admin").returncode != 0
    listed = json.loads(cli(db_url, "token", "list", "--format", "json").stdout)
    assert token not in json.dumps(listed) and admin not in json.dumps(listed)
    mine = next(r for r in listed if r["person"] == "p-A" and r["prefix"] == token[:10])

    port = free_port()
    server = subprocess.Popen([str(APPRAISAL), "serve", "--port", str(port), "--log-format", "json"],
                              env={**os.environ, "APPRAISAL_DB": db_url}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "appraisal serve did not start"
            time.sleep(0.1)
        me = httpx.get(f"{base}/me", headers={"Authorization": f"Bearer {admin}"}).json()
        assert me == {**me, "person": "p-L1", "grants": ["admin"]}
        assert httpx.get(f"{base}/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        revoked = cli(db_url, "token", "revoke", mine["token_id"])
        assert revoked.returncode == 0, revoked.stderr
        time.sleep(2.1)  # the server trusts a verified token for up to 2 s
        answer = httpx.get(f"{base}/me", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401 and answer.json()["rule"] == "token-revoked"
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(line.get("event") == "request" and line.get("status") == 401 for line in lines)
    assert token not in err and admin not in err


def test_serve_with_workers_hands_its_settings_to_every_process(db_url: str, tmp_path: Path) -> None:
    """`appraisal serve --workers 2 --db URL`: uvicorn's processes make their own app, from the
    settings the command handed down (api/settings.py `hand_down`), not from the defaults (which
    would be ./appraisal.db, where no token is)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("APPRAISAL_")}
    here = tmp_path / "elsewhere"
    here.mkdir()
    created = subprocess.run([str(APPRAISAL), "token", "create", "--person", "p-L1", "--grant", "admin",
                              "--db", db_url], capture_output=True, text=True, timeout=120, env=env, cwd=here)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    port = free_port()
    server = subprocess.Popen([str(APPRAISAL), "serve", "--workers", "2", "--projection", "none", "--db", db_url,
                               "--port", str(port), "--log-format", "json"], env=env, cwd=here,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "appraisal serve did not start"
            time.sleep(0.2)
        answers = [httpx.get(f"{base}/me", headers={"Authorization": f"Bearer {token}"}) for _ in range(8)]
        assert {(answer.status_code, answer.json().get("person")) for answer in answers} == {(200, "p-L1")}
    finally:
        server.terminate()
        _, err = server.communicate(timeout=60)
    assert any(json.loads(line).get("event") == "request" for line in err.splitlines() if line.startswith("{"))
    assert not (here / "appraisal.db").exists()
