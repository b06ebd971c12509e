"""survey.record over HTTP (SCORING.md §12, COMMANDS.md), on SQLite and PostgreSQL: the recorder
grant records a round at /appraisals/{appraisal}/surveys (and at /commands); anyone else is refused;
bad counts are refused as problem+json naming the field and the rule, recording nothing; the
OpenAPI schema shows the counts' number grammar; the subject appeals a round and an overturned one
stops counting; the results and the staff's breakdown (公示) carry the survey leaf and the round."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.cli.demo import satisfaction_scheme_document
from tests.builders.corrected_scheme import adopt, publish
from tests.builders.http_world import World, world
from tests.builders.survey_scheme import ROUND_1, ROUND_2

D01 = "2025:d-01"


@pytest.fixture
def w(db_url: str) -> Iterator[World]:
    with world(db_url) as made:  # the worked example (SCORING.md §10), then bianban v2 adopted
        made.ledger.submit([publish(satisfaction_scheme_document()), adopt(2)])
        yield made


@pytest.fixture
def client(w: World) -> Iterator[TestClient]:
    with TestClient(w.app) as made:
        yield made


def body(cid: str, counts: Any, **extra: Any) -> dict[str, Any]:
    return {"id": cid, "input": "public_satisfaction", "counts": counts, "evidence": "问卷", **extra}


def problem(response: Any, status: int, rule: str, field: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert (response.json()["rule"], response.json()["field"]) == (rule, field), response.json()


def d01(client: TestClient, w: World, role: str = "admin") -> dict[str, Any]:
    results = client.get("/years/2025/results", headers=w.auth(role)).json()
    return next(d for d in results["departments"] if d["id"] == "d-01")


def test_the_recorder_records_rounds_and_the_results_carry_the_leaf(client: TestClient, w: World) -> None:
    answer = client.post(f"/appraisals/{D01}/surveys", json=body("r-1", ROUND_1), headers=w.auth("recorder"))
    assert answer.status_code == 201, answer.text
    assert answer.json()["type"] == "survey.record"
    answer = client.post("/commands", json={"type": "survey.record", "appraisal": D01, **body("r-2", ROUND_2)},
                         headers=w.auth("recorder"))
    assert answer.status_code == 201, answer.text
    again = client.post(f"/appraisals/{D01}/surveys", json=body("r-1", ROUND_1), headers=w.auth("recorder"))
    assert (again.status_code, again.json()["duplicate"]) == (200, True)
    row = d01(client, w)
    # 37 + 13.05 + 12 + (20 − 5) + 9.10 (SCORING.md §12's 91 %) = 86.15
    assert (row["leaves"]["public_satisfaction"], row["score"], row["incomplete"]) == ("9.10", "86.15", False)


@pytest.mark.parametrize("role", ["staff", "head", "leader", "inspector"])
def test_only_the_recorder_and_admin_grants_record_a_round(client: TestClient, w: World, role: str) -> None:
    before = w.ledger.event_count()
    answer = client.post(f"/appraisals/{D01}/surveys", json=body("r-x", ROUND_1), headers=w.auth(role))
    assert answer.status_code == 403, answer.text
    assert w.ledger.event_count() == before


@pytest.mark.parametrize(("counts", "status", "rule", "field"), [
    pytest.param({**ROUND_1, "neutral": 1}, 422, "survey-options", "counts.neutral", id="unknown-option"),
    pytest.param({"satisfied": 1, "dissatisfied": 0}, 422, "survey-options", "counts.basically_satisfied",
                 id="missing-option"),
    pytest.param({**ROUND_1, "dissatisfied": -1}, 422, "survey-counts", "counts.dissatisfied", id="negative"),
    pytest.param({"satisfied": 0, "basically_satisfied": 0, "dissatisfied": 0}, 422, "survey-counts", "counts",
                 id="no-responses"),
    pytest.param({**ROUND_1, "satisfied": "1e2"}, 422, "number-format", "counts.satisfied", id="exponent"),
    pytest.param({**ROUND_1, "satisfied": 2.5}, 422, "number-format", "counts.satisfied", id="fraction"),
])
def test_bad_counts_are_refused_naming_the_field(client: TestClient, w: World, counts: Any, status: int,
                                                 rule: str, field: str) -> None:
    before = w.ledger.event_count()
    answer = client.post(f"/appraisals/{D01}/surveys", json=body("r-bad", counts), headers=w.auth("recorder"))
    problem(answer, status, rule, field)
    assert w.ledger.event_count() == before


def test_the_schema_shows_the_counts_number_grammar(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    counts = schemas["SurveyBody"]["properties"]["counts"]
    assert {"type": "string", "pattern": r"^-?[0-9]{1,9}$"} in counts["additionalProperties"]["anyOf"]
    paths = client.get("/openapi.json").json()["paths"]
    assert "post" in paths["/appraisals/{appraisal}/surveys"]


def test_an_overturned_round_stops_counting_and_the_breakdown_shows_it(client: TestClient, w: World) -> None:
    for cid, counts in (("r-1", ROUND_1), ("r-2", ROUND_2)):
        assert client.post(f"/appraisals/{D01}/surveys", json=body(cid, counts),
                           headers=w.auth("recorder")).status_code == 201
    appeal = client.post(f"/appraisals/{D01}/appeals", json={"id": "ap-1", "target": "r-2", "grounds": "重复统计"},
                         headers=w.auth("head"))
    assert appeal.status_code == 201, appeal.text
    decision = client.post("/appeals/ap-1/decision", json={"outcome": "overturned", "reason": "核实为重复"},
                           headers=w.auth("admin"))
    assert decision.status_code == 201, decision.text
    # round 1 alone: 44.8 / 50 = 89.6 % -> 8.96; D = 37 + 13.05 + 12 + 15 + 8.96 = 86.01
    assert (d01(client, w)["leaves"]["public_satisfaction"], d01(client, w)["score"]) == ("8.96", "86.01")
    breakdown = client.get(f"/appraisals/{D01}/explanation", headers=w.auth("head")).json()
    items = {item["ref"]: item for item in breakdown["items"] if item["kind"] == "survey"}
    assert [item["counts"] for item in items.values()] == [ROUND_1, ROUND_2]
    struck = [item for item in items.values() if "struck" in item]
    assert len(struck) == 1 and struck[0]["counts"] == ROUND_2
