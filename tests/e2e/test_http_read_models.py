"""The HTTP API served from the read models, on SQLite and PostgreSQL: the worked example of
SCORING.md §10 sent over HTTP is answered from the rm_* tables exactly as the ledger computes it
directly, histories and the audit trail as the log holds the events; after publication staff see a colleague's breakdown as published,
small rater groups withheld and no rater named; a decision after publication adds publication 2
and leaves publication 1 as it was; `?position=` waits for a projection running in the background."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from api.http.read_side import Queries
from api.http.visibility import staff_view
from api.ledger import AppraisalLedger
from api.server.app import create_app
from domain.aggregates import ledger_id
from domain.times import backdated as is_backdated
from projections.documents import MIN_RATERS_SHOWN, public_breakdown
from projections.projection import ReadModelProjection
from tests.builders.http_world import settings
from tests.builders.worked_example import APPEAL, DEDUCTION, OVERTURN, build

YEAR = 2025
A, H1, D01 = "2025:p-A", "2025:p-H1", "2025:d-01"
SUBJECTS = (D01, H1, A)
# Who holds a token: every actor of the worked example (the actor of a command over HTTP is its
# token's person), an inspector, and a second admin who decides appeals.
GRANTS: dict[str, tuple[str, ...]] = {
    "admin": ("admin",), "admin-2": ("admin",), "hr-office": ("recorder",), "audit-1": ("inspector",),
    "p-L1": (), "p-L2": (), "p-L3": (), "p-S1": (), "p-H1": (), "p-A": (),
}
PUBLISH = {"type": "year.publish", "id": "we-publish", "at": "2026-01-03T09:00:00+08:00", "year": YEAR}


@dataclass
class Served:
    ledger: AppraisalLedger
    client: TestClient
    tokens: dict[str, str] = field(default_factory=dict)

    def get(self, path: str, who: str = "audit-1", status: int = 200) -> Any:
        response = self.client.get(path, headers={"Authorization": f"Bearer {self.tokens[who]}"})
        assert response.status_code == status, response.text
        return response.json()

    def send(self, command: dict[str, Any]) -> int:
        """A command over HTTP, as its actor; the log position of its answer. Only an actor with
        the admin or recorder grant sends its business time (COMMANDS.md § Envelope): a rater's
        or an appellant's is the server's clock."""
        actor = command.get("actor", "admin")
        dated = bool(set(GRANTS.get(actor, ())) & {"admin", "recorder"})
        body = {k: v for k, v in command.items() if k != "actor" and (dated or k != "at")}
        response = self.client.post("/commands", json=body, headers={"Authorization": f"Bearer {self.tokens[actor]}"})
        assert response.status_code in (200, 201), response.text
        return int(response.json()["position"])


@contextmanager
def served(db_url: str, **overrides: Any) -> Iterator[Served]:
    ledger = AppraisalLedger(db_url)
    try:
        app = create_app(settings(db_url, **overrides), ledger=ledger)
        tokens = {person: app.state.credentials.create(person, grants, created_by="tests", require_person=False)[0]
                  for person, grants in GRANTS.items()}
        with TestClient(app) as client:
            yield Served(ledger, client, tokens)
    finally:
        ledger.close()


@pytest.fixture
def w(db_url: str) -> Iterator[Served]:
    with served(db_url) as made:
        for command in build():
            made.send(command)
        yield made


def plain(document: Any) -> Any:
    return json.loads(json.dumps(document, ensure_ascii=False))


def ratings_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in document["events"] if e["kind"] == "rating"]


def period_figures(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in document["figures"] if f["key"].startswith("period:")]


def stored(event: Any) -> dict[str, Any]:
    """A stored event as the API shows it: its class, aggregate, version, recording time, fields."""
    data = {k: v for k, v in vars(event).items()
            if k not in ("originator_id", "originator_version", "timestamp", "originator_topic")}
    return json.loads(json.dumps({"type": type(event).__qualname__, "aggregate": str(event.originator_id),
                  "version": event.originator_version, "recorded_at": event.timestamp.isoformat(),
                  "backdated": is_backdated(event.at, event.timestamp), "data": data,
                  **({"command_id": data["command_id"]} if "command_id" in data else {})},
        default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v), ensure_ascii=False))


def logged(ledger: AppraisalLedger, *, appraisal: str | None = None, actor: str | None = None,
           backdated: bool | None = None) -> list[tuple[int, dict[str, Any]]]:
    """The log's events, with their positions, read straight from the store and filtered."""
    found = []
    for n in ledger.recorder.select_notifications(0, 100_000):
        event: Any = ledger.mapper.to_domain_event(n)
        if ((appraisal is None or n.originator_id == ledger_id("appraisal", appraisal))
                and (actor is None or event.actor == actor)
                and (backdated is None or is_backdated(event.at, event.timestamp) == backdated)):
            found.append((n.id, stored(event)))
    return found


def positions(entries: list[dict[str, Any]]) -> list[int]:
    return [e["position"] for e in entries]


# --- the worked example, answered from the read models --------------------------------------------


def test_the_worked_example_is_answered_from_the_read_models_as_the_ledger_computes_it(w: Served) -> None:
    results = w.get(f"/years/{YEAR}/results")
    assert results == {**plain(w.ledger.results(YEAR)), "view": "all"}
    assert {p["id"]: p["total"] for p in results["people"]} == {"p-A": "79.16", "p-H1": "89.69"}
    assert {d["id"]: d["score"] for d in results["departments"]} == {"d-01": "87.05"}

    for key in SUBJECTS:
        explained = plain(w.ledger.explain(key))
        assert w.get(f"/appraisals/{key}/explanation") == {**explained, "view": "full"}, key
        breakdown = w.get(f"/appraisals/{key}/breakdown")
        assert breakdown == {**staff_view(public_breakdown(explained), explained, "audit-1"), "version": 0}
        assert w.get(f"/appraisals/{key}/history")["events"] == [e for _, e in logged(w.ledger, appraisal=key)], key

    own = w.get(f"/appraisals/{A}/explanation", who="p-A")  # the subject: breakdown and own ratings
    assert own["view"] == "breakdown" and {e["rater"] for e in ratings_of(own)} == {"p-A"}

    history = w.get("/people/p-A/history", who="p-A")
    person = next(p for p in results["people"] if p["id"] == "p-A")
    scheme = f"{results['scheme']['id']}@{results['scheme']['version']}"
    assert history["view"] == "all" and history["years"] == [
        {"year": YEAR, "scheme": scheme, "status": "provisional", **{k: person[k] for k in (
            "department", "position", "total", "individual_score", "rank", "tier", "grade", "coefficient",
            "vetoed", "incomplete")}}]
    assert [(y["year"], y["total"], y["status"]) for y in history["years"]] == [(YEAR, "79.16", "provisional")]
    department = results["departments"][0]
    cut = next((c["posts"] for c in department["consequences"] if c["type"] == "staffing_cut"), None)
    expected = [{"year": YEAR, "scheme": scheme, "status": "provisional", "department": "d-01",
                 "score": department["score"], "rank": department["rank"], "staffing_cut": cut,
                 "incomplete": department["incomplete"]}]
    assert w.get("/departments/d-01/history", who="p-H1")["years"] == expected
    ranking = w.get(f"/years/{YEAR}/departments")
    assert ranking["departments"] == expected
    assert [(d["department"], d["rank"], d["score"]) for d in ranking["departments"]] == [("d-01", 1, "87.05")]

    trail = w.get("/audit?limit=1000")
    assert [e["position"] for e in trail["events"]] == list(range(1, w.ledger.event_count() + 1))
    common = [{k: v for k, v in e.items() if k not in ("aggregate_name", "figures", "position", "target",
                                                       "actor", "at")} for e in trail["events"]]
    assert common == [e for _, e in logged(w.ledger)]
    assert all(e["actor"] == e["data"]["actor"] and e["at"] == e["data"]["at"] for e in trail["events"])
    targets = w.ledger.commands([e["command_id"] for e in trail["events"]])
    assert [e["target"] for e in trail["events"]] == [targets[e["command_id"]]["target"] for e in trail["events"]]
    by_appraisal = w.get(f"/audit?appraisal={A}&limit=1000")["events"]
    assert {e["aggregate_name"] for e in by_appraisal} == {A}
    assert positions(by_appraisal) == [p for p, _ in logged(w.ledger, appraisal=A)]
    by_actor = w.get("/audit?actor=hr-office&limit=3")
    assert positions(by_actor["events"]) == [p for p, _ in logged(w.ledger, actor="hr-office")][:3]
    assert {e["actor"] for e in by_actor["events"]} == {"hr-office"} and by_actor["next"] is not None
    errors = next(e for e in by_appraisal if e["data"].get("input") == "review_errors")
    assert {"rule:review_errors", "node:business", "total"} <= set(errors["figures"])

    assert w.get(f"/years/{YEAR}/publications")["publications"] == []
    w.get(f"/years/{YEAR}/publications/1", status=404)
    assert w.get("/health")["position"] == w.ledger.event_count()


def test_the_results_are_answered_as_stored_byte_for_byte(w: Served) -> None:
    """An admin's results are the stored document with `view` added to it, not read and written
    again: the same bytes and headers as writing the document read (the way they were answered
    before), provisional and published."""
    headers = {"Authorization": f"Bearer {w.tokens['admin']}"}
    for command in (None, PUBLISH):
        if command is not None:
            w.send(command)
        response = w.client.get(f"/years/{YEAR}/results", headers=headers)
        document = w.client.app.state.queries.results(YEAR)
        assert "view" not in document
        written = JSONResponse({**document, "view": "all"})
        assert response.content == written.body
        assert response.headers["content-type"] == written.headers["content-type"]
        assert response.headers["content-length"] == written.headers["content-length"]
    assert response.json()["status"] == "published"


def test_who_reads_the_new_queries(w: Served) -> None:
    for path in ("/audit", f"/audit?appraisal={A}", "/audit?actor=p-A"):
        assert w.get(path, who="p-A", status=403)["rule"] == "role-required"
    assert w.get("/audit?actor=p-A", who="admin")["events"]
    assert w.get("/people/p-H1/history", who="p-A") == {"person": "p-H1", "years": [], "view": "published"}
    assert len(w.get("/people/p-H1/history", who="admin")["years"]) == 1
    assert w.get("/departments/d-01/history", who="p-L2")["years"] == []  # not d-01's, not published
    assert len(w.get("/departments/d-01/history", who="p-A")["years"]) == 1  # a member of d-01
    assert w.get(f"/years/{YEAR}/departments", who="p-L2")["departments"] == []
    assert w.get(f"/years/{YEAR}/departments", who="p-A")["view"] == "own"
    w.get("/people/p-nobody/history", status=404)
    w.get("/departments/d-99/history", status=404)
    w.get("/years/1999/departments", status=404)


def test_back_dated_events_are_filtered_in_the_read_models_as_in_the_log(w: Served) -> None:
    """The recorder's and the admin's commands keep their 2025 business times (back-dated: more
    than 7 days before their recording); the raters' are the server's clock (not back-dated)."""
    for flag in (True, False):
        trail = w.get(f"/audit?limit=1000&backdated={str(flag).lower()}")["events"]
        assert trail and {e["backdated"] for e in trail} == {flag}
        assert positions(trail) == [p for p, _ in logged(w.ledger, backdated=flag)]
    ratings = w.get("/audit?actor=p-L1&backdated=true")["events"]
    assert ratings == [] and w.get("/audit?actor=p-L1&backdated=false")["events"]
    recorded = w.get(f"/audit?actor=hr-office&appraisal={A}&backdated=true&limit=1000")["events"]
    assert len(recorded) == 5 and positions(recorded) == [
        p for p, _ in logged(w.ledger, appraisal=A, actor="hr-office", backdated=True)]
    explained = w.get(f"/appraisals/{A}/explanation")
    marked = {e["command"] for e in explained["events"] if e.get("backdated")}
    assert marked == {e["command_id"] for e in recorded}
    assert explained == {**plain(w.ledger.explain(A)), "view": "full"}


# --- publication: staff see the published version -------------------------------------------------


def test_after_publication_staff_see_a_colleagues_breakdown_as_published_small_groups_withheld(w: Served) -> None:
    # a third leadership_team rater of p-H1's business: that group's mean may be shown
    w.send({"type": "org.person", "person": "p-L4", "name": "李四", "position": "leader"})
    w.tokens["p-L4"] = w.client.app.state.credentials.create(  # type: ignore[attr-defined]
        "p-L4", (), created_by="tests")[0]
    w.send({"type": "rating.record", "actor": "p-L4", "id": "r-L4", "appraisal": H1, "leaf": "business",
            "period": "2025", "rater_role": "leadership_team", "score": "70", "at": "2025-12-20T10:00:00+08:00"})
    w.get(f"/appraisals/{H1}/breakdown", who="p-A", status=403)
    w.send(PUBLISH)

    year = w.ledger.year(YEAR)
    assert year is not None
    published = year.publications[-1]["document"]
    seen = w.get(f"/appraisals/{H1}/breakdown", who="p-A")
    assert seen["version"] == 1 and seen["summary"]["total"] == next(
        p["total"] for p in published["people"] if p["id"] == "p-H1")
    assert seen == {**staff_view(public_breakdown(plain(w.ledger.explain(H1))), plain(w.ledger.explain(H1)), "p-A"),
                    "version": 1}
    text = json.dumps(seen, ensure_ascii=False)
    for rater in ("p-S1", "p-L1", "p-L2", "p-L3", "p-L4"):  # p-H1 is the subject, and rates themself
        assert f'"{rater}"' not in text
    assert '"rater"' not in text and '"comment"' not in text and not ratings_of(seen)
    business = next(f for f in period_figures(seen) if f["key"] == "period:business:2025")
    inputs = business["inputs"]
    assert inputs["leadership_team.raters"] == "3" and inputs["leadership_team.mean"] is not None
    for group in ("self", "superior", "in_charge"):  # one rater each: withheld, the count shown
        assert inputs[f"{group}.mean"] is None and int(inputs[f"{group}.raters"]) < MIN_RATERS_SHOWN
    assert inputs["others"] is None and business["value"] is not None  # the composite stays
    assert business["withheld"] == ["in_charge.mean", "others", "self.mean", "superior.mean"]
    assert [f["key"] for f in seen["figures"]] == [f["key"] for f in w.ledger.explain(H1)["figures"]]

    by_leader = w.get(f"/appraisals/{H1}/breakdown", who="p-L4")  # a rater sees what they gave
    assert [(e["rater"], e["score"]) for e in ratings_of(by_leader)] == [("p-L4", "70")]
    assert w.get(f"/appraisals/{H1}/breakdown?version=0", who="p-A", status=403)["rule"] == "breakdown-published-only"
    assert w.get(f"/appraisals/{H1}/explanation", who="p-A", status=403)["rule"] == "explanation-access"

    assert [y["year"] for y in w.get("/people/p-H1/history", who="p-A")["years"]] == [YEAR]
    assert w.get(f"/years/{YEAR}/departments", who="p-L2")["view"] == "published"
    listed = w.get(f"/years/{YEAR}/publications", who="p-A")["publications"]
    assert [(p["version"], p["digest"]) for p in listed] == [(1, year.publications[0]["digest"])]
    assert w.get(f"/years/{YEAR}/publications/1", who="p-A")["document"] == plain(published)
    assert w.get(f"/years/{YEAR}/results", who="p-A")["view"] == "published"


def undated(command: dict[str, Any]) -> dict[str, Any]:
    """The command at the server's clock (its business time left out)."""
    return {k: v for k, v in command.items() if k != "at"}


def test_a_decision_after_publication_adds_publication_2_and_leaves_1_as_it_was(w: Served) -> None:
    # the deduction recorded now, so that its appeal (at the server's clock) is within the window
    for command in (undated(DEDUCTION), APPEAL, PUBLISH):
        w.send(command)
    first = w.get(f"/years/{YEAR}/publications/1", who="p-A")
    first_breakdowns = {key: w.get(f"/appraisals/{key}/breakdown?version=1", who="p-L2") for key in SUBJECTS}
    assert w.get(f"/appraisals/{H1}/breakdown", who="p-A")["version"] == 1

    position = w.send(undated(OVERTURN))  # the deduction on p-H1 falls: a revised publication

    assert [p["version"] for p in w.get(f"/years/{YEAR}/publications?position={position}")["publications"]] == [1, 2]
    assert w.get(f"/years/{YEAR}/publications/1", who="p-A") == first
    second = w.get(f"/years/{YEAR}/publications/2", who="p-A")
    assert second["document"]["publication"] == 2 and "we-decision" in second["document"]["revision_reason"]
    total = {p["id"]: p["total"] for p in second["document"]["people"]}["p-H1"]
    assert total != {p["id"]: p["total"] for p in first["document"]["people"]}["p-H1"]
    for key, document in first_breakdowns.items():
        assert w.get(f"/appraisals/{key}/breakdown?version=1", who="p-L2") == document, key
    latest = w.get(f"/appraisals/{H1}/breakdown", who="p-A")
    assert latest["version"] == 2 and latest["summary"]["total"] == total
    assert w.get(f"/appraisals/{H1}/breakdown?version=3", who="p-A", status=404)["rule"] == "publication-known"

    appeals = w.get(f"/appeals?year={YEAR}")["appeals"]
    assert [(a["appeal"], a["status"], a["decision"]["outcome"]) for a in appeals] == [
        ("we-appeal", "decided", "overturned")]
    [appeal] = appeals
    assert (appeal["appraisal"], appeal["subject"], appeal["appellant"], appeal["grounds"]) == (
        H1, "p-H1", "p-H1", APPEAL["grounds"])
    assert appeal["target"] == {"command": "we-ded", "kind": "adjustment", "ref": appeal["target"]["ref"]}
    assert appeal["target"]["ref"] and appeal["ref"] and appeal["recorded_at"]
    decision = appeal["decision"]
    assert (decision["command"], decision["actor"], decision["reason"]) == (
        "we-decision", "admin-2", OVERTURN["reason"])
    assert w.get("/appeals/we-appeal", who="p-H1") == appeals[0]


# --- read your writes, with the projection in the background ---------------------------------------


def test_a_read_at_the_position_of_a_write_sees_it_with_the_projection_in_the_background(db_url: str) -> None:
    with served(db_url, projection="background", projection_interval_seconds=0.05, wait_seconds=20) as w:
        thread, _ = w.client.app.state.projection  # type: ignore[attr-defined]
        assert thread.is_alive()
        for command in build():
            w.send(command)
        position = w.send({"type": "rating.record", "actor": "p-A", "id": "ryw-bg", "appraisal": A,
                           "leaf": "business", "period": "2025-11", "rater_role": "self", "score": "50",
                           "at": "2025-11-28T10:00:00+08:00"})
        response = w.client.get(f"/appraisals/{A}/explanation?position={position}",
                                headers={"Authorization": f"Bearer {w.tokens['p-A']}"})
        assert response.status_code == 200, response.text
        assert int(response.headers["x-log-position"]) >= position
        assert "ryw-bg" in {e["command"] for e in ratings_of(response.json())}
        results = w.get(f"/years/{YEAR}/results?position={position}")
        assert results["people"] == plain(w.ledger.results(YEAR))["people"]
    assert not thread.is_alive()  # stopped with the server


def test_with_a_separate_worker_the_server_answers_what_it_has_processed(db_url: str) -> None:
    """projection=none (production): `appraisal project` keeps the read models; until it has
    processed a year, a read answers what they hold (the year is absent: 404), and a read that
    names the position of a write waits for it (503 with Retry-After when not in time)."""
    with served(db_url, projection="none") as w:
        for command in build()[:12]:
            position = w.send(command)
        behind = w.get(f"/years/{YEAR}/results", status=404)
        assert behind["rule"] == "year-open" and behind["field"] == "year"
        assert w.get(f"/years/{YEAR}/results?position={position}", status=503)["rule"] == "position-not-reached"
        worker = ReadModelProjection(w.ledger)  # what `appraisal project` runs
        try:
            worker.catch_up()
        finally:
            worker.close()
        assert w.get(f"/years/{YEAR}/results?position={position}")["year"] == YEAR
        assert w.get("/years/1999/results", status=404)["rule"] == "year-open"


def test_serve_defaults_to_the_read_models_kept_in_the_background(db_url: str) -> None:
    from api.settings import Settings

    chosen = Settings(db=db_url)
    assert chosen.projection == "background"
    app = create_app(chosen)
    with TestClient(app) as client:
        assert isinstance(app.state.queries, Queries) and app.state.projection is not None
        assert client.get("/health").json()["status"] == "ok"
    with pytest.raises(ValueError, match="SQLite or PostgreSQL"), TestClient(create_app(Settings(db="memory://"))):
        pass
