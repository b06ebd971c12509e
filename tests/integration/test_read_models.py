"""The read models (issue 3) on SQLite and PostgreSQL: they equal the scoring engine's direct
computation (the worked example, a demo year fed in chunks, generated years), a department's
event reaches every member, public breakdowns hold no individual rater, histories span years,
publications are kept as published, the audit trail is complete, and a rebuild from zero or a
restart from the tracking row gives the very same tables."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from psycopg import sql

from api.cli.demo import demo_commands
from api.ledger import AppraisalLedger
from domain.errors import NotFound
from domain.results import (
    explanation,
    explanation_body,
    explanation_placement,
    grade_year,
    score_year,
)
from domain.times import backdated
from projections import documents, tables
from projections import write as writing
from projections.db import open_view_db
from projections.events import fold
from projections.projection import ReadModelProjection
from projections.reading import ReadModels
from tests.builders.generated_years import years
from tests.builders.read_models import (
    YEAR,
    Store,
    as_json,
    assert_equal_to_direct,
    canonical,
    chunks,
    opened,
    snapshot,
    subjects,
)
from tests.builders.scenario import standard
from tests.builders.worked_example import APPEAL, DEDUCTION, OVERTURN, build
from tests.conftest import fresh_pg_schema

PUBLISH = {"type": "year.publish", "id": "we-publish", "actor": "admin", "at": "2026-01-03T09:00:00+08:00",
           "year": YEAR}


# --- helpers --------------------------------------------------------------------------------------


def latest_publication(store: Store) -> dict[str, Any]:
    year = store.ledger.year(YEAR)
    assert year is not None and year.publications
    return dict(year.publications[-1]["document"])


def walk(value: Any) -> Iterator[tuple[str | None, Any]]:
    """(key, value) for every dict entry and list item, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield None, item
            yield from walk(item)


# --- equal to the direct computation ------------------------------------------------------------


def test_the_worked_example_read_models_equal_the_direct_computation(db_url: str) -> None:
    with opened(db_url) as store:
        store.submit([*build(), DEDUCTION, APPEAL, OVERTURN])
        assert store.projection.tracking() == store.ledger.event_count()
        assert_equal_to_direct(store)
        results = store.views.results(YEAR)
        assert {p["id"]: p["total"] for p in results["people"]} == {"p-A": "79.16", "p-H1": "89.69"}
        assert store.views.explanation("2025:p-A")["summary"]["total"] == "79.16"


def test_the_stored_explanations_are_the_domain_builders_output(db_url: str) -> None:
    """rm_explanations and rm_placements hold the two parts the domain's one explanation builder
    makes (domain/results.py: the body from the score before grading, the placement from grading),
    as canonical JSON text; nothing else writes an explanation."""
    with opened(db_url) as store:
        store.submit([*build(), DEDUCTION, APPEAL, OVERTURN])
        facts = fold(store.ledger).year_facts(YEAR)
        departments, people = score_year(facts)
        results = grade_year(facts, departments, people)
        by_key = {a.key: a for a in facts.appraisals}
        for score in (*departments.values(), *people.values()):
            body = explanation_body(score, by_key[score.key])
            placement = explanation_placement(results, score.subject.id)
            rows = store.views.db.query(
                "SELECT d.document, p.explanation FROM rm_explanations d JOIN rm_placements p "
                "ON p.appraisal = d.appraisal WHERE d.appraisal = ?", [score.key])
            assert rows[0]["document"] == canonical(body), score.key
            assert json.loads(rows[0]["explanation"]) == as_json(placement), score.key
            assert store.views.explanation(score.key) == as_json(explanation(results, score.subject.id,
                                                                            by_key[score.key]))


def test_fed_in_chunks_with_a_catch_up_between_they_equal_the_direct_computation_each_time(db_url: str) -> None:
    commands = demo_commands(YEAR, departments=2, staff_per_department=3)
    with opened(db_url) as store:
        for chunk in chunks(commands, 5):
            store.submit(chunk)
            assert store.projection.tracking() == store.ledger.event_count()
            try:
                store.ledger.year_facts(YEAR)
            except NotFound:  # the year is not open yet: neither side has results
                with pytest.raises(NotFound):
                    store.views.results(YEAR)
                continue
            assert_equal_to_direct(store)


def test_weekly_ratings_fed_in_chunks_equal_the_direct_computation_each_time(db_url: str) -> None:
    """Incremental rendering: a department's new rating moves its exact score (shown in each
    member's explanation) often without moving its rounded one, and ranks shift under everyone."""
    commands = demo_commands(YEAR, departments=2, staff_per_department=2, periods="weekly")
    start = next(i for i, c in enumerate(commands) if c["type"] == "rating.record") + 40
    department_ratings = [c for c in commands if c["type"] == "rating.record" and ":d-" in c["appraisal"]]
    with opened(db_url) as store:
        store.submit(commands[:start])
        for chunk in chunks(commands[start:], 4):
            store.submit(chunk)
            assert_equal_to_direct(store)
        for rating in department_ratings[::7]:  # replaced by a score 0.1 higher
            store.submit([{**rating, "id": f"{rating['id']}-again", "score": f"{float(rating['score']) + 0.1:.1f}",
                           "at": rating["at"].replace("T09", "T18")}])
            assert_equal_to_direct(store)


def test_a_department_measurement_changes_every_members_total_and_the_ranks(db_url: str) -> None:
    scenario = standard("p-A1", "p-A2")
    scenario.department("d-02", in_charge="p-L2", head="p-H2").person("p-B1", "staff", "d-02")
    scenario.open("d-02", "p-B1").complete_department("d-02")
    scenario.complete_person("p-A1", business="100")
    scenario.complete_person("p-A2", business="95")
    scenario.complete_person("p-B1", business="90")
    with opened(db_url) as store:
        store.submit(scenario.commands)
        before = {row["person"]: row for row in store.views.db.query("SELECT * FROM rm_person_history")}
        assert [before[p]["rank"] for p in ("p-A1", "p-A2", "p-B1")] == [1, 2, 3]

        scenario.measure("d-01", "function_implementation_rate", "80", at="2025-12-11T09:00:00+08:00")
        store.submit(scenario.commands[-1:])

        after = {row["person"]: row for row in store.views.db.query("SELECT * FROM rm_person_history")}
        for member in ("p-A1", "p-A2"):
            assert after[member]["total"] != before[member]["total"], member
        assert after["p-B1"]["total"] == before["p-B1"]["total"]
        assert [after[p]["rank"] for p in ("p-A1", "p-A2", "p-B1")] == [2, 3, 1]
        assert [(r["department"], r["rank"]) for r in store.views.department_ranking(YEAR)] == [
            ("d-02", 1), ("d-01", 2)]
        assert store.views.explanation("2025:p-A1")["summary"]["rank"] == 2
        assert_equal_to_direct(store)


@pytest.mark.parametrize("store_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@settings(max_examples=10, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(commands=years(), cut=st.floats(0.1, 0.9))
def test_for_generated_years_the_read_models_equal_the_direct_computation(
        store_kind: str, tmp_path_factory: pytest.TempPathFactory, commands: list[dict[str, Any]],
        cut: float) -> None:
    with fresh_store(store_kind, tmp_path_factory) as url, opened(url) as store:
        split = int(len(commands) * cut)
        store.submit(commands[:split])
        store.submit(commands[split:])
        assert_equal_to_direct(store)
        live = snapshot(url)
        store.projection.rebuild()
        assert snapshot(url) == live


@contextmanager
def fresh_store(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty store per hypothesis example (the db_url fixture gives one per test)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('generated')}/appraisal.db"
        return
    from tests.conftest import postgres_base_url

    with fresh_pg_schema(postgres_base_url()) as url:
        yield url


# --- public breakdowns --------------------------------------------------------------------------


def test_a_public_breakdown_shows_rater_groups_as_averages_only_and_itemises_the_rest(db_url: str) -> None:
    commands = demo_commands(YEAR, departments=2, staff_per_department=3)
    ratings = [c for c in commands if c["type"] == "rating.record"]
    raters = {c["rater"] for c in ratings}
    comments = {c["comment"] for c in ratings if c.get("comment")}
    assert comments, "the demo year replaces some ratings, with a comment naming the old score"
    with opened(db_url) as store:
        store.submit(commands)
        means = items = 0
        for key in subjects(store.views.results(YEAR)):
            breakdown = store.views.breakdown(key, 0)
            text = json.dumps(breakdown, ensure_ascii=False)
            subject = breakdown["subject"]["id"]
            for rater in raters - {subject}:  # one's own self-rating is no one else's
                assert f'"{rater}"' not in text, (key, rater)
            assert not {k for k, _ in walk(breakdown)} & {"rater", "rater_role", "comment"}, key
            rating_refs = {e["ref"] for e in store.views.explanation(key)["events"] if e["kind"] == "rating"}
            assert rating_refs
            for ref in rating_refs:  # no rating event, so no individual score, is referred to
                assert f'"{ref}"' not in text, (key, ref)
            for comment in comments:
                assert comment not in text
            assert {i["kind"] for i in breakdown["items"]} <= {"measurement", "occurrence", "adjustment", "veto"}
            periods = [f for f in breakdown["figures"] if f["key"].startswith("period:")]
            assert periods, key
            for figure in periods:  # group means only, and only of groups too big to name a rater
                inputs = figure["inputs"]
                groups = [name[:-len(".mean")] for name in inputs if name.endswith(".mean")]
                assert groups, figure["key"]
                for group in groups:
                    if int(inputs[f"{group}.raters"]) < documents.MIN_RATERS_SHOWN:
                        assert inputs[f"{group}.mean"] is None, (key, figure["key"], group)
                        assert inputs.get("others") is None, (key, figure["key"])
                    else:
                        assert inputs[f"{group}.mean"] is not None
                        means += 1
            items += len(breakdown["items"])
            assert breakdown["summary"] == store.views.explanation(key)["summary"]
        assert means and items


# --- histories ----------------------------------------------------------------------------------


def test_histories_span_years_with_their_scheme_and_status(db_url: str) -> None:
    publish_2024 = {"type": "year.publish", "id": "pub-2024", "actor": "admin",
                    "at": "2025-01-10T09:00:00+08:00", "year": 2024}
    with opened(db_url) as store:
        store.submit(demo_commands(2024, departments=2, staff_per_department=2))
        store.submit([publish_2024])
        store.submit(demo_commands(2025, departments=2, staff_per_department=2))
        people = {p["id"] for p in store.ledger.results(2025)["people"]}
        assert people == {p["id"] for p in store.ledger.results(2024)["people"]}
        for person in people:
            history = store.views.person_history(person)
            assert [(h["year"], h["scheme"], h["status"]) for h in history] == [
                (2024, "bianban@1", "published"), (2025, "bianban@1", "provisional")], person
            for row in history:
                direct = next(p for p in store.ledger.results(row["year"])["people"] if p["id"] == person)
                assert (row["total"], row["rank"], row["tier"], row["department"]) == (
                    direct["total"], direct["rank"], direct["tier"], direct["department"])
        for department in ("d-01", "d-02"):
            assert [(h["year"], h["status"]) for h in store.views.department_history(department)] == [
                (2024, "published"), (2025, "provisional")]
        assert_equal_to_direct(store, 2024)
        assert_equal_to_direct(store, 2025)


# --- publication --------------------------------------------------------------------------------


def test_a_publication_is_kept_as_published_while_a_later_decision_changes_the_current_figures(
        db_url: str) -> None:
    with opened(db_url) as store:
        store.submit([*build(), DEDUCTION, APPEAL, PUBLISH])
        published = latest_publication(store)
        assert store.views.results(YEAR)["status"] == "published"
        for key in subjects(published):
            assert store.views.published_versions(key) == [1]
            assert store.views.breakdown(key, 1) == store.views.breakdown(key, 0)
        assert store.views.publication(YEAR, 1)["document"] == as_json(published)
        shown = {p["id"]: p for p in published["people"]}
        for person, row in shown.items():
            summary = store.views.breakdown(f"{YEAR}:{person}", 1)["summary"]
            assert (summary["total"], summary["rank"], summary["tier"], summary["grade"]) == (
                row["total"], row["rank"], row["tier"], row["grade"])
        for department in published["departments"]:
            summary = store.views.breakdown(f"{YEAR}:{department['id']}", 1)["summary"]
            assert (summary["score"], summary["rank"]) == (department["score"], department["rank"])
        version_1 = {key: store.views.breakdown(key, 1) for key in subjects(published)}

        store.submit([OVERTURN])  # the deduction on p-H1 falls after publication: a revision

        revised = latest_publication(store)
        assert revised["publication"] == 2
        assert [p["version"] for p in store.views.publications(YEAR)] == [1, 2]
        assert store.views.publication(YEAR)["document"] == as_json(revised)
        assert store.views.publication(YEAR, 1)["document"] == as_json(published)
        current = {p["id"]: p for p in store.ledger.results(YEAR)["people"]}
        assert current["p-H1"]["total"] != shown["p-H1"]["total"]
        assert store.views.breakdown("2025:p-H1", 0)["summary"]["total"] == current["p-H1"]["total"]
        for key, document in version_1.items():
            assert store.views.breakdown(key, 1) == document, key  # as first published, still
            assert store.views.published_versions(key) == [1, 2]
            assert store.views.breakdown(key, 2) == store.views.breakdown(key, 0), key
            assert store.views.breakdown(key) == store.views.breakdown(key, 2)  # the latest, by default
        assert store.views.breakdown("2025:p-H1", 2)["summary"]["total"] == next(
            p["total"] for p in revised["people"] if p["id"] == "p-H1")
        assert_equal_to_direct(store)


def test_a_revision_scores_again_the_appraisal_it_changed_not_the_year(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A score is a function of the scheme, the appraisal's facts and its department's score: the
    publication (here the revision that comes with a decision after the first) and a tie-break are
    read by grading, not scoring, so the year's other scores are taken as they were."""
    from domain import results

    with opened(db_url) as store:
        store.submit([*build(), DEDUCTION, APPEAL, PUBLISH])
        store.ledger.submit([OVERTURN])  # the deduction on p-H1 overturned after publication: a revision
        assert latest_publication(store)["publication"] == 2
        scored: list[str] = []  # by the projection (the ledger scored the year for the revision's document)
        for name in ("score_person", "score_department"):
            real = getattr(results, name)
            monkeypatch.setattr(results, name, lambda scheme, a, *rest, real=real, **options: (
                scored.append(a.key), real(scheme, a, *rest, **options))[1])
        store.projection.catch_up()
        assert scored == ["2025:p-H1"]
        assert_equal_to_direct(store)


# --- audit trail --------------------------------------------------------------------------------


def test_the_audit_trail_has_every_event_once_in_order_by_appraisal_and_by_actor(db_url: str) -> None:
    from projections.events import read_events

    with opened(db_url) as store:
        store.submit([*build(), DEDUCTION, APPEAL, PUBLISH, OVERTURN])
        events = list(read_events(store.ledger))
        everything = store.views.audit(limit=10_000)
        assert [row["position"] for row in everything] == [p for p, _ in events] == list(
            range(1, store.ledger.event_count() + 1))
        assert [row["event"] for row in everything] == [type(e).__name__ for _, e in events]

        appraisal = store.ledger.appraisal("2025:p-A")
        assert appraisal is not None
        by_appraisal = store.views.audit(aggregate="2025:p-A")
        assert [row["position"] for row in by_appraisal] == [
            p for p, e in events if e.originator_id == appraisal.id]
        assert [row["version"] for row in by_appraisal] == list(range(1, appraisal.version + 1))
        assert by_appraisal[0]["event"] == "Opened"

        for actor in ("p-L1", "hr-office", "admin-2"):
            by_actor = store.views.audit(actor=actor)
            assert [row["position"] for row in by_actor] == [p for p, e in events if e.actor == actor], actor

        ratings = [row for row in by_appraisal if row["event"] == "RatingRecorded"]
        assert ratings
        for row in ratings:
            leaf = row["detail"]["leaf"]
            assert {f"node:{leaf}", f"base:{leaf}", f"period:{leaf}:{row['detail']['period']}",
                    "individual", "total"} <= set(row["figures"]), row
        errors = next(row for row in by_appraisal if row["detail"].get("input") == "review_errors")
        assert {"rule:review_errors", "node:business", "total"} <= set(errors["figures"])
        department_rating = next(row for row in store.views.audit(aggregate="2025:d-01")
                                 if row["event"] == "RatingRecorded")
        assert {"node:reform_tasks", "department"} <= set(department_rating["figures"])
        decision = next(row for row in store.views.audit(actor="admin-2") if row["event"] == "AppealDecided")
        assert decision["aggregate"] == "2025:p-H1"
        assert decision["figures"] == ["adjustment:we-ded", "total"]
        publications = [row for row in store.views.audit(aggregate="year:2025") if row["event"] == "Published"]
        assert len(publications) == 2  # the publication, and its revision after the overturn
        for row in publications:
            assert {"rank", "tier", "grade"} <= set(row["figures"])
        assert store.views.audit(after=everything[-3]["position"]) == everything[-2:]


def test_the_audit_trail_marks_back_dated_events_and_filters_on_them(db_url: str) -> None:
    """COMMANDS.md § Envelope: a business time more than 7 days before its recording time is
    back-dated; the worked example's (2025) are, a command dated now or a week ago is not. Tables
    of the layout before the flag are rebuilt with it."""
    from projections.events import read_events

    recent = (datetime.now(UTC) - timedelta(days=6)).isoformat(timespec="seconds")
    with opened(db_url) as store:
        store.submit([*build(), {"type": "occurrence.record", "id": "bd-recent", "actor": "hr-office", "at": recent,
                                 "appraisal": "2025:p-A", "item": "absence"},
                      {"type": "occurrence.record", "id": "bd-now", "actor": "hr-office",
                       "appraisal": "2025:p-A", "item": "absence"}])
        everything = store.views.audit(limit=10_000)
        flags = {row["command_id"]: row["backdated"] for row in everything}
        assert flags["bd-recent"] is False and flags["bd-now"] is False
        assert {flags[c["id"]] for c in build()} == {True}
        expected = [p for p, e in read_events(store.ledger) if backdated(e.at, e.timestamp)]
        assert [row["position"] for row in store.views.audit(limit=10_000, backdated=True)] == expected
        assert [row["command_id"] for row in store.views.audit(limit=10_000, backdated=False)] == ["bd-recent", "bd-now"]
        assert [row["position"] for row in store.views.audit(aggregate="2025:p-A", actor="hr-office", backdated=True)] == [
            p for p in expected if p in {row["position"] for row in store.views.audit(aggregate="2025:p-A", actor="hr-office")}]
        assert [e["command"] for e in store.views.explanation("2025:p-A")["events"] if e.get("backdated")] == [
            c["id"] for c in build() if c.get("appraisal") == "2025:p-A"]
        live = snapshot(db_url)

        # the layout before this flag (version 4): the next projection rebuilds the tables
        with store.projection.db.transaction() as tx:
            for name in tx.index_names("rm_audit"):
                if name.endswith("_by_backdated"):
                    tx.execute(f"DROP INDEX {name}")
            tx.execute("ALTER TABLE rm_audit DROP COLUMN backdated")
            tx.execute("UPDATE rm_tracking SET position = 4 WHERE name = ?", [f"{tables.NAME}:version"])
    with opened(db_url) as store:
        assert store.projection.layout_version() == tables.VERSION
        assert snapshot(db_url) == live


# --- rebuild and restart --------------------------------------------------------------------------


def test_a_rebuild_from_zero_gives_identical_tables_also_after_a_publication(db_url: str) -> None:
    with opened(db_url) as store:
        for chunk in chunks([*build(), DEDUCTION, APPEAL], 4):
            store.submit(chunk)
        store.submit([PUBLISH])
        store.submit([OVERTURN])
        live = snapshot(db_url)
        assert dict(live["rm_tracking"])["readmodels"] == store.ledger.event_count()
        assert store.projection.rebuild() == store.ledger.event_count()
        assert snapshot(db_url) == live
        fresh = ReadModelProjection(store.ledger)  # another process's rebuild: nothing in memory
        try:
            fresh.rebuild(page=7)
        finally:
            fresh.close()
        assert snapshot(db_url) == live
        assert_equal_to_direct(store)


def test_a_rebuilds_final_render_hands_its_documents_to_the_writer_as_it_goes(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not every explanation of the year held until the end (`Renderer.spill`): the tables are
    the same."""
    with opened(db_url) as store:
        store.submit(build())
        live = snapshot(db_url)
        spilled: list[int] = []
        take = documents.Rows.take_documents

        def counted(rows: documents.Rows) -> documents.Rows:
            taken = take(rows)
            spilled.append(len(taken.explanations) + len(taken.breakdowns) + len(taken.placements))
            return taken

        monkeypatch.setattr(documents, "SPILL_EVERY", 3)
        monkeypatch.setattr(documents.Rows, "take_documents", counted)
        assert store.projection.rebuild() == store.ledger.event_count()
        assert len(spilled) >= 3 and all(count >= 3 for count in spilled), spilled
        assert snapshot(db_url) == live
        assert store.projection.renderer.spill is None  # the live projection writes in its own transactions


def test_a_rebuild_whose_writes_fail_raises_and_leaves_the_live_tables_as_they_were(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rebuild's pages are written by a thread of their own: what it raises reaches the caller."""
    with opened(db_url) as store:
        store.submit(build())
        live = snapshot(db_url)

        def failing(tx: Any, rows: documents.Rows, suffix: str = "") -> None:
            raise RuntimeError("disk full")

        monkeypatch.setattr(writing, "write", failing)  # the rebuild's writer
        with pytest.raises(RuntimeError, match="disk full"):
            store.projection.rebuild(page=3)
        monkeypatch.undo()
        assert snapshot(db_url) == live


def test_commands_recorded_during_a_rebuild_are_processed_once_after_it(db_url: str) -> None:
    """What the rebuild did not read is for the projection to follow: none lost, none applied twice."""
    commands = demo_commands(YEAR, departments=2, staff_per_department=3)
    late = commands[-30:]
    with opened(db_url) as store:
        store.submit(commands[:-30])
        stop = threading.Event()

        def trickle() -> None:
            for command in late:
                store.ledger.submit([command])
                if stop.wait(0.05):
                    return

        writing = threading.Thread(target=trickle)
        writing.start()
        try:
            store.projection.rebuild()
        finally:
            stop.set()
            writing.join()
        submitted = store.ledger.event_count()
        assert store.projection.tracking() <= submitted
        store.projection.catch_up()
        assert store.projection.tracking() == submitted
        live = snapshot(db_url)
        assert store.projection.rebuild() == submitted
        assert snapshot(db_url) == live


def test_rebuilds_leave_the_audit_table_two_indexes_and_no_replaced_table(db_url: str) -> None:
    """The fresh audit table's indexes are made before the swap, under the names the live one's do
    not have (they alternate); the tables replaced are dropped after it; a restart adds none."""
    generations = [{f"rm_audit{g}_{index}" for index, _ in tables.AUDIT_INDEXES}
                   for g in tables.INDEX_GENERATIONS]
    with opened(db_url) as store:
        store.submit(build())
        seen = []
        for _ in range(3):
            store.projection.rebuild()
            ReadModelProjection(store.ledger).close()  # a restart: its tables exist
            with store.projection.db.transaction() as tx:
                names = tx.index_names("rm_audit")
            assert names in generations, names
            seen.append(generations.index(names))
            assert not any(store.projection.db.table_exists(f"{table}_replaced") for table in tables.TABLES)
        assert seen == [1, 0, 1]
        assert_equal_to_direct(store)


def test_readers_see_no_gap_while_a_rebuild_swaps_the_tables_in(db_url: str) -> None:
    with opened(db_url) as store:
        store.submit(demo_commands(YEAR, departments=2, staff_per_department=3))
        expected = store.views.results(YEAR)
        position = store.views.position()
        stop, seen, failures = threading.Event(), [0], []

        def read() -> None:
            views = ReadModels(db_url)
            try:
                while not stop.is_set():
                    try:
                        assert views.results(YEAR) == expected
                        assert views.position() == position
                        seen[0] += 1
                    except Exception as error:  # noqa: BLE001 (reported below)
                        failures.append(repr(error))
                        return
            finally:
                views.close()

        reader = threading.Thread(target=read)
        reader.start()
        try:
            for _ in range(3):
                store.projection.rebuild(page=500)
        finally:
            stop.set()
            reader.join(30)
        assert not failures, failures[:3]
        assert seen[0] > 0


def test_after_a_restart_the_projection_resumes_from_its_tracking_row(db_url: str) -> None:
    commands = demo_commands(YEAR, departments=2, staff_per_department=2)
    with opened(db_url) as store:
        store.submit(commands[:200])
    with opened(db_url) as store:
        position = store.projection.tracking()
        assert store.projection.state.position == position == store.ledger.event_count() > 0
        assert store.projection.catch_up() == 0
        store.submit(commands[200:])
        assert store.projection.tracking() == store.ledger.event_count() > position
        live = snapshot(db_url)
        assert sorted(row[0] for row in live["rm_audit"]) == list(range(1, store.ledger.event_count() + 1))
        assert_equal_to_direct(store)
        store.projection.rebuild()
        assert snapshot(db_url) == live


def test_a_restart_across_a_publication_gives_the_tables_of_a_rebuild(db_url: str) -> None:
    with opened(db_url) as store:
        store.submit([*build(), DEDUCTION, APPEAL])
        store.submit([PUBLISH])
    with opened(db_url) as store:  # a new projection: folds up to its tracking row, writes nothing
        before = snapshot(db_url)
        assert store.projection.catch_up() == 0
        assert snapshot(db_url) == before
        store.submit([OVERTURN])
        live = snapshot(db_url)
        assert sorted(row[0] for row in live["rm_audit"]) == list(range(1, store.ledger.event_count() + 1))
        store.projection.rebuild()
        assert snapshot(db_url) == live
        assert_equal_to_direct(store)


def test_after_a_restart_only_the_documents_that_changed_are_written_again(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A restarted projection knows the digests of the documents in the tables: its first render
    (every appraisal of the year) writes again only what a new event changed."""
    with opened(db_url) as store:
        store.submit(build())
        subjects = len(store.views.results(YEAR)["people"]) + len(store.views.results(YEAR)["departments"])
    written: list[documents.Rows] = []
    write = writing.write

    def recorded(tx: Any, rows: documents.Rows, suffix: str = "") -> None:
        written.append(rows)
        write(tx, rows, suffix)

    monkeypatch.setattr(writing, "write", recorded)  # the live batch's (`BatchWriter`)
    with opened(db_url) as store:
        store.submit([{"type": "rating.record", "id": "restart-1", "actor": "p-A", "at": "2025-12-21T10:00:00+08:00",
                       "appraisal": "2025:p-A", "leaf": "business", "period": "2025-11", "rater": "p-A",
                       "rater_role": "self", "score": "70"}])
        assert [row[0] for rows in written for row in rows.explanations] == ["2025:p-A"], subjects
        assert [(row[0], row[1]) for rows in written for row in rows.breakdowns] == [("2025:p-A", 0)]
        live = snapshot(db_url)
        store.projection.rebuild()
        assert snapshot(db_url) == live


def test_the_read_models_live_in_the_stores_own_postgresql_schema(pg_url: str) -> None:
    base = pg_url.split("?", 1)[0]
    with opened(pg_url) as store:
        store.submit(build())
        with fresh_pg_schema(base) as other, opened(other) as empty:
            assert empty.views.position() == 0
            with pytest.raises(NotFound):
                empty.views.results(YEAR)
        with psycopg.connect(base, autocommit=True) as conn:
            schema = pg_url.rsplit("schema=", 1)[1]
            count = conn.execute(sql.SQL("SELECT count(*) FROM {}.rm_audit").format(
                sql.Identifier(schema))).fetchone()
        assert count == (store.ledger.event_count(),)


class LogEndingAt:
    """The ledger as a rebuild saw it when it finished reading: the log up to `end`."""

    def __init__(self, ledger: AppraisalLedger, end: int) -> None:
        self.ledger, self.end = ledger, end
        self.db_url, self.mapper, self.recorder = ledger.db_url, ledger.mapper, self

    def select_notifications(self, start: int, limit: int, stop: int | None = None, **kwargs: Any) -> Any:
        stop = self.end if stop is None else min(stop, self.end)
        return self.ledger.recorder.select_notifications(start, limit, stop=stop, **kwargs)


def test_a_rebuild_swapped_in_behind_the_running_worker_loses_no_event(db_url: str) -> None:
    """`appraisal project --rebuild` while the worker runs: the worker may have processed events
    the rebuild has not read by the time it swaps its tables in; they must not go missing."""
    from projections.worker import run

    commands = demo_commands(YEAR, departments=2, staff_per_department=2)
    with opened(db_url) as store:
        stop = threading.Event()
        worker = threading.Thread(target=run, args=(lambda: AppraisalLedger(db_url),),
                                  kwargs={"stop": stop, "interval": 0.05}, daemon=True)
        worker.start()
        try:
            def caught_up() -> None:
                total = store.ledger.event_count()
                for _ in range(600):
                    if store.views.position() == total:
                        return
                    stop.wait(0.05)
                raise AssertionError(f"the worker did not reach {total}")

            store.ledger.submit(commands[:200])
            caught_up()
            read_by_rebuild = store.ledger.event_count()
            store.ledger.submit(commands[200:300])
            caught_up()  # the worker is ahead of what the rebuild read
            rebuild = ReadModelProjection(LogEndingAt(store.ledger, read_by_rebuild))  # type: ignore[arg-type]
            try:
                rebuild.rebuild()
            finally:
                rebuild.close()
            store.ledger.submit(commands[300:])
            caught_up()
        finally:
            stop.set()
            worker.join(30)
        positions = [row[0] for row in sorted(snapshot(db_url)["rm_audit"])]
        assert positions == list(range(1, store.ledger.event_count() + 1))
        live = snapshot(db_url)
        store.projection.rebuild()
        assert snapshot(db_url) == live


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")),
                      min_size=1, max_size=5),
       number=st.integers(min_value=-(2**62), max_value=2**62))
def test_rows_appended_in_one_statement_come_back_exactly(db_url: str, texts: list[str], number: int) -> None:
    """`append_rows` (SQLite: one JSON text unpacked by `json_each`) keeps every text and integer
    exactly: quotes, backslashes, JSON-looking text, non-ASCII."""

    db = open_view_db(db_url)
    try:
        rows = [(n, number, text, f'{{"k": "{text}"}}', "引号\"\\") for n, text in enumerate(texts)]
        with db.transaction() as tx:
            tx.execute("CREATE TABLE IF NOT EXISTS t_append (n INTEGER, big BIGINT, a TEXT, b TEXT, c TEXT)")
            tx.execute("DELETE FROM t_append")
            tx.append_rows("t_append", 5, rows)
        back = [tuple(row.values()) for row in db.query("SELECT n, big, a, b, c FROM t_append ORDER BY n")]
        assert back == rows
    finally:
        db.close()
