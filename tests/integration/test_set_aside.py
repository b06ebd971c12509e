"""A read side that no event can stop (issue 15, COMMANDS.md § Bad input), on SQLite and PostgreSQL.

Events the read models cannot process are written straight into the store through the recorder,
as a store written by an earlier version may hold them (the hash chain stays whole: `verify` still
passes): a rating whose score is not a number (it folds, but cannot be scored), a rating without
its leaf (it cannot be folded), an event of a topic no class has (it cannot be decoded). Each one
is set aside with the appraisal it feeds; every other appraisal's read models are those of a store
that never held it; catch-up, rebuild, a shared rebuild and restarts all finish with the same
tables; `/health`, the admin's and the inspector's pages name them, staff pages do not; and once
the code that failed is fixed, a restart takes them up."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
import structlog.testing
from fastapi.testclient import TestClient

from api.cli.demo import demo_commands
from api.integrity.verification import verify
from api.ledger import AppraisalLedger
from api.server.app import create_app
from api.store.logstore import log_store
from domain import results as domain_results
from domain.aggregates import FactEvent, ledger_id
from projections import documents, tables, worker
from projections import write as writing
from projections.db import open_view_db
from projections.events import read_events
from projections.projection import ReadModelProjection
from projections.reading import ReadModels
from tests.builders.http_world import settings
from tests.builders.read_models import assert_equal_to_direct, opened, snapshot

YEAR = 2025
RENDER, FOLD, DECODE = "2025:p-002", "2025:p-003", "2025:p-004"  # where the bad events go
TAIL = 40  # valid commands recorded after them


@pytest.fixture
def logged() -> Iterator[list[dict[str, Any]]]:
    """What the read side logs during the test, as structlog's entries (whatever renderer and stream
    an earlier test of the same process configured)."""
    with structlog.testing.capture_logs() as entries:
        yield entries


def year_commands() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    commands = demo_commands(YEAR, departments=2, staff_per_department=3)
    return commands[:-TAIL], commands[-TAIL:]


def on(command: dict[str, Any], *keys: str) -> bool:
    return command.get("appraisal") in keys


def write_raw(ledger: AppraisalLedger, key: str, change: Any) -> int:
    """A copy of the appraisal's last rating, changed by `change` (given the stored event of the
    copy, it returns the stored event to write), written through the recorder: no command, no
    check. Its log position."""
    aggregate_id = ledger_id("appraisal", key)
    events = [ledger.mapper.to_domain_event(stored) for stored in ledger.recorder.select_events(aggregate_id)]
    rating = next(event for event in reversed(events) if type(event).__name__ == "RatingRecorded")
    copy = type(rating).__new__(type(rating))
    copy.__dict__.update(rating.__dict__, originator_version=events[-1].originator_version + 1,
                         command_id=f"raw-{key}")
    stored = change(copy)
    positions = ledger.recorder.insert_events([stored])
    return int(positions[-1])


def score_not_a_number(ledger: AppraisalLedger) -> Any:
    def change(event: Any) -> Any:
        event.__dict__["score"] = {"points": 90}  # folds; cannot be scored
        return ledger.mapper.to_stored_event(event)
    return change


def no_leaf(ledger: AppraisalLedger) -> Any:
    def change(event: Any) -> Any:
        del event.__dict__["leaf"]  # cannot be folded
        return ledger.mapper.to_stored_event(event)
    return change


def unknown_topic(ledger: AppraisalLedger) -> Any:
    def change(event: Any) -> Any:
        stored = ledger.mapper.to_stored_event(event)
        return dataclasses.replace(stored, topic="domain.aggregates:Appraisal.RatingRenamed")  # cannot be decoded
    return change


def without_times(document: Any) -> Any:
    """A document without recording times (two stores record the same commands at other times)."""
    if isinstance(document, dict):
        return {key: without_times(value) for key, value in document.items() if key != "recorded_at"}
    if isinstance(document, list):
        return [without_times(value) for value in document]
    return document


def read_models(url: str) -> dict[str, Any]:
    """What the read models serve of the year: results, every explanation and breakdown, histories."""
    views = ReadModels(url)
    try:
        results = views.results(YEAR)
        keys = [f"{YEAR}:{s['id']}" for s in results["departments"] + results["people"]]
        db = views.db
        return without_times({
            "results": results,
            "explanations": {key: views.explanation(key) for key in keys},
            "breakdowns": {key: views.breakdown(key, 0) for key in keys},
            "people": sorted(tuple(row.values()) for row in db.query("SELECT * FROM rm_person_history")),
            "departments": sorted(tuple(row.values()) for row in db.query("SELECT * FROM rm_department_history")),
            "appeals": sorted(tuple(row.values()) for row in db.query("SELECT * FROM rm_appeals")),
        })
    finally:
        views.close()


def set_aside(url: str) -> list[dict[str, Any]]:
    db = open_view_db(url)
    try:
        return tables.set_aside(db)
    finally:
        db.close()


def test_events_that_cannot_be_processed_are_set_aside_and_everything_else_goes_on(
        db_url: str, empty_url: str, logged: list[dict[str, Any]]) -> None:
    head, tail = year_commands()
    # The store with the bad events: some of the year, then the events, then the rest of it.
    with opened(db_url) as store:
        store.submit(head)
        positions = {
            RENDER: write_raw(store.ledger, RENDER, score_not_a_number(store.ledger)),
            FOLD: write_raw(store.ledger, FOLD, no_leaf(store.ledger)),
            DECODE: write_raw(store.ledger, DECODE, unknown_topic(store.ledger)),
        }
        assert verify(log_store(store.ledger.recorder)).ok  # as an earlier version would have written them
        # Later commands on everyone else, and on the appraisal set aside for its score (the write
        # side still folds that one; the others it cannot read either).
        store.submit([c for c in tail if not on(c, FOLD, DECODE)])
        assert store.projection.state.position == store.ledger.event_count()  # processed to the end
    # The same year without them (nor what came after them on the same appraisals).
    with opened(empty_url) as clean:
        clean.submit(head)
        clean.submit([c for c in tail if not on(c, RENDER, FOLD, DECODE)])

    rows = set_aside(db_url)
    assert [(r["position"], r["aggregate"], r["stage"]) for r in rows] == [
        (positions[RENDER], RENDER, "render"), (positions[FOLD], FOLD, "fold"), (positions[DECODE], DECODE, "decode")]
    assert rows[0]["error"].startswith("TypeError") and rows[1]["error"].startswith("KeyError: 'leaf'")
    assert "RatingRenamed" in rows[2]["error"] or "RatingRenamed" in rows[2]["topic"]
    assert rows[2]["topic"] == "domain.aggregates:Appraisal.RatingRenamed"
    # Everyone else's read models are those of the store without the bad events; the appraisals
    # set aside show what they showed before them.
    assert read_models(db_url) == read_models(empty_url)
    # A later rating on the appraisal set aside for its score is in the audit trail all the same.
    views = ReadModels(db_url)
    try:
        audited = views.db.query("SELECT COUNT(*) AS n FROM rm_audit WHERE command_id = ?",
                                 [next(c["id"] for c in tail if on(c, RENDER))])
        assert audited[0]["n"] == 1
    finally:
        views.close()

    # Restarts and a rebuild: they finish, and the tables are the same.
    tables = snapshot(db_url)
    with opened(db_url) as store:  # a restart: finds set-aside events, rebuilds to try them again
        assert store.projection.catch_up() == 0
    assert snapshot(db_url) == tables
    with opened(db_url) as store:
        store.projection.rebuild()
    assert snapshot(db_url) == tables  # first seen kept
    # Each is a warning in the log, naming the position and the error's type (not its message).
    warnings = [entry for entry in logged if entry["event"] == "event set aside"]
    assert any(w["position"] == positions[FOLD] and w["error"] == "KeyError" for w in warnings), warnings
    assert not any("'leaf'" in repr(w) for w in warnings)

    # /health: degraded, still 200, with the positions; the admin's and inspector's pages list
    # them, staff pages do not.
    ledger = AppraisalLedger(db_url)
    try:
        app = create_app(settings(db_url, projection="none"), ledger=ledger)
        tokens = {who: app.state.credentials.create(who, grants, created_by="tests", require_person=False)[0]
                  for who, grants in (("admin", ("admin",)), ("audit-1", ("inspector",)), ("p-002", ()))}
        with TestClient(app) as client:
            health = client.get("/health")
            assert health.status_code == 200
            answer = health.json()
            assert answer["status"] == "degraded"
            assert [(h["position"], h["stage"], h["error"]) for h in answer["set_aside"]] == [
                (positions[RENDER], "render", "TypeError"), (positions[FOLD], "fold", "KeyError"),
                (positions[DECODE], "decode", rows[2]["error"].partition(":")[0])]
            for who in ("admin", "audit-1"):
                sign_in(client, tokens[who])
                page = client.get("/home", headers={"Accept": "text/html"})
                assert page.status_code == 200 and "以下事件暂未处理" in page.text and "Set aside" in page.text
                for key, position in positions.items():
                    assert f"<td>{position}</td><td>{key}</td>" in page.text
                assert "KeyError: &#39;leaf&#39;" in page.text
            sign_in(client, tokens["p-002"])
            page = client.get("/home", headers={"Accept": "text/html"})
            assert page.status_code == 200 and "以下事件暂未处理" not in page.text
    finally:
        ledger.close()


def sign_in(client: TestClient, token: str) -> None:
    """As a browser does: the sign-in form, posted from this site, gives a session cookie."""
    client.cookies.clear()
    answer = client.post("/", data={"token": token}, follow_redirects=False,
                         headers={"Accept": "text/html", "Origin": "http://testserver"})
    assert answer.status_code == 303, answer.text


def test_a_fixed_version_takes_up_what_was_set_aside(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Valid events on which this code fails (patched in): set aside; the code fixed (the patches
    gone), a restart takes them up, and the read models equal the direct computation."""
    head, tail = year_commands()
    with opened(db_url) as store:
        store.ledger.submit(head + tail)
        ids = {"render": next(c["id"] for c in tail if on(c, "2025:p-005")),
               "fold": next(c["id"] for c in head if c["type"] == "measurement.record"),
               "decode": next(c["id"] for c in tail if on(c, "2025:p-006"))}
        found = {event.command_id: (position, event) for position, event in read_events(store.ledger)
                 if event.command_id in ids.values()}
        position = {stage: found[command][0] for stage, command in ids.items()}
        undecodable = found[ids["decode"]][1]
        store.projection.close()

        fact_line = domain_results.fact_line

        def fails_to_render(fact: Any) -> dict[str, Any]:
            if fact.command_id == ids["render"]:
                raise ValueError("cannot render this fact")
            return fact_line(fact)

        apply = FactEvent.apply

        def fails_to_fold(event: Any, aggregate: Any) -> None:
            if event.command_id == ids["fold"]:
                raise RuntimeError("cannot fold this event")
            apply(event, aggregate)

        decode = store.ledger.mapper.to_domain_event

        def fails_to_decode(stored: Any) -> Any:
            if (stored.originator_id, stored.originator_version) == (undecodable.originator_id,
                                                                     undecodable.originator_version):
                raise ValueError("cannot decode this event")
            return decode(stored)

        monkeypatch.setattr(domain_results, "fact_line", fails_to_render)
        monkeypatch.setattr(FactEvent, "apply", fails_to_fold)
        monkeypatch.setattr(store.ledger.mapper, "to_domain_event", fails_to_decode)
        broken = ReadModelProjection(store.ledger)
        try:
            broken.catch_up()
        finally:
            broken.close()
        assert {(r["position"], r["stage"]) for r in set_aside(db_url)} == {
            (position["render"], "render"), (position["fold"], "fold"), (position["decode"], "decode")}
        again = ReadModelProjection(store.ledger)  # a restart of the same version: the same
        again.close()
        assert len(set_aside(db_url)) == 3

        monkeypatch.undo()  # the fixed version
        store.projection = ReadModelProjection(store.ledger)  # its start: taken up
        assert set_aside(db_url) == []
        assert store.projection.catch_up() == 0
        assert_equal_to_direct(store)
        health = json.loads(json.dumps(store.views.set_aside()))
        assert health == []


def test_a_year_that_cannot_be_graded_keeps_its_last_rows_and_the_log_is_still_followed(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    head, tail = year_commands()
    with opened(db_url) as store:
        store.submit(head)
        before = read_models(db_url)

        def cannot_grade(facts: Any, *args: Any) -> Any:
            raise ArithmeticError(f"cannot grade {facts.year}")

        apply = FactEvent.apply

        def fails_to_fold(event: Any, aggregate: Any) -> None:
            if event.command_id == tail[-1]["id"]:
                raise RuntimeError("cannot fold this event")
            apply(event, aggregate)

        store.ledger.submit(tail)
        monkeypatch.setattr(documents, "grade_year", cannot_grade)  # no appraisal to blame
        monkeypatch.setattr(FactEvent, "apply", fails_to_fold)  # and the batch's last event set aside
        store.projection.catch_up()
        end = store.ledger.event_count()
        assert store.projection.state.position == end
        rows = set_aside(db_url)
        assert [(r["position"], r["aggregate"], r["stage"], r["error"]) for r in rows] == [
            (end, tail[-1]["appraisal"], "fold", "RuntimeError: cannot fold this event"),
            (end, f"year:{YEAR}", "render", f"ArithmeticError: cannot grade {YEAR}")]
        assert read_models(db_url) == before  # its last rows
        assert store.views.db.query("SELECT COUNT(*) AS n FROM rm_audit")[0]["n"] == end - 1  # every other event audited
        store.projection.close()
        store.projection = ReadModelProjection(store.ledger)  # a restart of the same version: a rebuild
        assert read_models(db_url) == before and set_aside(db_url) == rows
        store.projection.close()

        monkeypatch.undo()  # the fixed version
        store.projection = ReadModelProjection(store.ledger)
        assert set_aside(db_url) == []
        assert_equal_to_direct(store)


def test_a_year_that_fails_after_it_handed_documents_over_keeps_its_last_rows(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A render that fails half way, after its documents went into the batch's transaction
    (`Renderer.spill`, here every one), takes them back: the year keeps its last rows."""
    head, tail = year_commands()
    with opened(db_url) as store:
        store.submit(head)
        before = read_models(db_url)

        def cannot_make_histories(*args: Any) -> None:
            raise ArithmeticError("cannot make the histories")

        store.ledger.submit(tail)
        monkeypatch.setattr(documents, "SPILL_EVERY", 1)
        monkeypatch.setattr(documents.Renderer, "_history", cannot_make_histories)  # after the documents
        store.projection.catch_up()
        assert [(r["aggregate"], r["stage"]) for r in set_aside(db_url)] == [(f"year:{YEAR}", "render")]
        assert read_models(db_url) == before
        assert store.views.position() == store.ledger.event_count()


def test_a_write_that_fails_during_a_render_is_not_the_renders_fault(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write of documents handed over during a render (the store gone, the disk full) fails the
    batch, to be tried again, rather than setting the year or an appraisal aside."""
    head, tail = year_commands()
    with opened(db_url) as store:
        store.submit(head)
        before = snapshot(db_url)
        store.ledger.submit(tail)
        write = writing.write
        calls: list[int] = []

        def full(tx: Any, rows: Any, suffix: str = "") -> None:
            calls.append(1)
            if len(calls) == 3:
                raise OSError("disk full")
            write(tx, rows, suffix)

        monkeypatch.setattr(documents, "SPILL_EVERY", 1)
        monkeypatch.setattr(writing, "write", full)
        with pytest.raises(OSError, match="disk full"):
            store.projection.catch_up()
        assert snapshot(db_url) == before and set_aside(db_url) == []
        monkeypatch.undo()
        store.projection.close()
        store.projection = ReadModelProjection(store.ledger)  # the worker's restart
        store.projection.catch_up()
        assert set_aside(db_url) == []
        assert_equal_to_direct(store)


def test_the_worker_follows_the_log_past_an_event_it_cannot_process(
        db_url: str, logged: list[dict[str, Any]]) -> None:
    """`appraisal project`'s loop: no restart, no crash; it reaches the end of the log and stays."""
    head, tail = year_commands()
    ledger = AppraisalLedger(db_url)
    views = None
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(lambda: AppraisalLedger(db_url),),
                              kwargs={"stop": stop, "interval": 0.05})
    try:
        ledger.submit(head)
        write_raw(ledger, FOLD, no_leaf(ledger))
        thread.start()
        ledger.submit([c for c in tail if not on(c, FOLD)])
        views = ReadModels(db_url)
        deadline = time.monotonic() + 60
        while views.position() < ledger.event_count():
            assert time.monotonic() < deadline, "the worker did not reach the end of the log"
            time.sleep(0.05)
    finally:
        stop.set()
        if thread.is_alive():
            thread.join(30)
        if views is not None:
            views.close()
        ledger.close()
    events = [entry["event"] for entry in logged]
    assert events.count("projection started") == 1 and not any("restarting" in e for e in events), events
    assert [row["stage"] for row in set_aside(db_url)] == ["fold"]


def test_an_event_whose_rows_a_store_would_refuse_is_set_aside(db_url: str) -> None:
    """PostgreSQL refuses a NUL character in text: an event whose actor holds one would make every
    write of the read models fail, at every restart. It is set aside (on both stores alike)."""
    head, tail = year_commands()
    with opened(db_url) as store:
        store.submit(head)

        def nul_actor(event: Any) -> Any:
            event.__dict__["actor"] = "p-\x00001"
            return store.ledger.mapper.to_stored_event(event)

        position = write_raw(store.ledger, FOLD, nul_actor)
        store.submit([c for c in tail if not on(c, FOLD)])
        assert store.projection.state.position == store.ledger.event_count()
        rows = set_aside(db_url)
        assert [(r["position"], r["aggregate"], r["stage"]) for r in rows] == [(position, FOLD, "fold")]
        assert "NUL" in rows[0]["error"]
        tables = snapshot(db_url)
        store.projection.rebuild()
        assert snapshot(db_url) == tables
