"""Years pile up (issue 19), on SQLite and PostgreSQL: the read side lets go of a finalized year's
appraisals once its rows are made, and a finalized year's read models are the same whether it was
rebuilt alone or with later years; a revision of a finalized year (recorded events on it) still
reaches its read models, its histories and the three-year preference of later years."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent

from api.ledger import AppraisalLedger
from api.ledger.application import UnitOfWork
from domain.aggregates import ledger_id
from projections.db import open_view_db
from projections.events import read_events
from projections.projection import ReadModelProjection, TakeBackFailed
from projections.reading import ReadModels
from projections.tables import YEAR_TABLES, set_aside
from tests.builders.read_models import as_json, snapshot
from tests.builders.years import Years

BEST_IS_1 = {"p-1": "100", "p-2": "90", "p-3": "80", "p-4": "70", "p-5": "60"}
BEST_IS_2 = {"p-1": "90", "p-2": "100", "p-3": "80", "p-4": "70", "p-5": "60"}
PREFERENCE = {"type": "staffing_allocation_preference"}


def closed_year(years: Years, year: int, scores: dict[str, str]) -> Years:
    """A year published in January and finalized in February."""
    years.year(year, scores).publish(year, f"{year + 1}-01-15")
    years.add("year.finalize", f"{year + 1}-02-01", year=year)
    return years


def three_years() -> Years:
    """2023 and 2024 finalized, 2025 open; p-1 is best in 2024 and 2025 but not in 2023."""
    years = closed_year(closed_year(Years(), 2023, BEST_IS_2), 2024, BEST_IS_1)
    return years.year(2025, BEST_IS_1)


@contextmanager
def ledger_at(url: str) -> Iterator[AppraisalLedger]:
    ledger = AppraisalLedger(url)
    try:
        yield ledger
    finally:
        ledger.close()


def caught_up(url: str) -> ReadModelProjection:
    with ledger_at(url) as ledger:
        projection = ReadModelProjection(ledger)
        projection.catch_up()
        projection.close()
        return projection


def rebuilt(url: str) -> ReadModelProjection:
    with ledger_at(url) as ledger:
        projection = ReadModelProjection(ledger, resume=False)
        projection.rebuild()
        projection.close()
        return projection


def year_rows(url: str, year: int) -> dict[str, list[tuple[Any, ...]]]:
    """A year's rows in every per-year table and its publications, in one canonical order."""
    db = open_view_db(url)
    try:
        return {table: sorted((tuple(row.values()) for row in db.query(f"SELECT * FROM {table} WHERE year = ?",
                                                                         [year])), key=repr)
                for table in (*YEAR_TABLES, "rm_publications")}
    finally:
        db.close()


def held(projection: ReadModelProjection) -> set[int]:
    """The years whose appraisals the projection holds."""
    return {int(key.partition(":")[0]) for key in projection.state.appraisals}


def test_a_finalized_years_read_models_are_the_same_rebuilt_alone_or_with_later_years(
        db_url: str, empty_url: str) -> None:
    with ledger_at(db_url) as ledger, ledger_at(empty_url) as alone:
        ledger.submit(three_years().commands)
        # the same log up to the finalization of 2023 (the same events, recorded at the same times)
        end = next(position for position, event in read_events(ledger)
                   if type(event).__name__ == "Finalized" and event.originator_id == ledger_id("year", "2023"))
        alone.recorder.insert_events([
            StoredEvent(n.originator_id, n.originator_version, n.topic, n.state)
            for n in ledger.recorder.select_notifications(0, end, stop=end, inclusive_of_start=False)])
    projection = rebuilt(empty_url)
    assert held(projection) == set() and set(projection.state.closed) == {2023}
    projection = rebuilt(db_url)
    assert held(projection) == {2025} and set(projection.state.closed) == {2023, 2024}  # let go
    for year_number in (2023, 2024):  # a finalized year's Year stays: later years read its tiers
        assert projection.state.years[year_number].publications
    assert year_rows(db_url, 2023) == year_rows(empty_url, 2023)
    assert all(rows for table, rows in year_rows(db_url, 2023).items() if table != "rm_appeals")


def test_a_worker_lets_finalized_years_go_and_gives_the_tables_of_a_rebuild(db_url: str) -> None:
    commands = three_years().commands
    with ledger_at(db_url) as ledger:
        projection = ReadModelProjection(ledger)
        for start in range(0, len(commands), 25):  # in several batches, as a worker meets them
            ledger.submit(commands[start:start + 25])
            projection.catch_up(page=40)
        assert held(projection) == {2025} and set(projection.state.closed) == {2023, 2024}
        projection.close()
    followed = snapshot(db_url)
    restarted = caught_up(db_url)  # a restart folds up to its tracking row, letting them go too
    assert held(restarted) == {2025} and set(restarted.state.closed) == {2023, 2024}
    rebuilt(db_url)
    assert snapshot(db_url) == followed


def write_raw(ledger: AppraisalLedger, aggregate_id: Any, kind: str, **changes: Any) -> None:
    """A copy of the aggregate's last event of `kind` with `changes`, recorded after its last event
    through the recorder: no command, no check (the domain has no command that records on a
    finalized year; this stands for a revision recorded by other means)."""
    events = [ledger.mapper.to_domain_event(stored) for stored in ledger.recorder.select_events(aggregate_id)]
    last = next(event for event in reversed(events) if type(event).__name__ == kind)
    copy = type(last).__new__(type(last))
    copy.__dict__.update(last.__dict__, originator_version=events[-1].originator_version + 1, **changes)
    ledger.recorder.insert_events([ledger.mapper.to_stored_event(copy)])


def test_a_revision_of_a_finalized_year_reaches_its_read_models_histories_and_later_years(db_url: str) -> None:
    with ledger_at(db_url) as ledger:
        ledger.submit(three_years().commands)
        projection = ReadModelProjection(ledger)
        projection.catch_up()
        views = ReadModels(db_url)
        try:
            assert PREFERENCE not in next(p for p in views.results(2025)["people"] if p["id"] == "p-1")["consequences"]
            assert set(projection.state.closed) == {2023, 2024}
            # The revision of 2023: p-1's business rating raised, p-2's lowered, and a revised
            # publication in which p-1 is tier 1.
            write_raw(ledger, ledger_id("appraisal", "2023:p-1"), "RatingRecorded", score=Decimal("100"),
                      leaf="innovation", command_id="revision-1")
            write_raw(ledger, ledger_id("appraisal", "2023:p-2"), "RatingRecorded", score=Decimal("60"),
                      leaf="innovation", command_id="revision-2")
            with ledger_at(db_url) as fresh:
                revised = fresh.results(2023)
            assert next(p for p in revised["people"] if p["id"] == "p-1")["tier"] == 1
            write_raw(ledger, ledger_id("year", "2023"), "Published", document={**revised, "publication": 2},
                      digest="revised", command_id="revision-3")
            projection.catch_up()
            assert set(projection.state.closed) == {2023, 2024}  # taken back, and let go again
            with ledger_at(db_url) as fresh:  # the direct computation, from the store
                direct = {year: fresh.results(year) for year in (2023, 2024, 2025)}
                explained = fresh.explain("2023:p-1")
            for year, document in direct.items():
                assert views.results(year) == as_json(document), year
            assert views.explanation("2023:p-1") == as_json(explained)
            history = {row["year"]: row for row in views.person_history("p-1")}
            assert history[2023]["tier"] == 1
            assert PREFERENCE in next(p for p in views.results(2025)["people"] if p["id"] == "p-1")["consequences"]
            followed = snapshot(db_url)
        finally:
            views.close()
            projection.close()
    rebuilt(db_url)
    assert snapshot(db_url) == followed


def test_the_ledger_lets_a_finalized_years_appraisals_go(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The import and the server keep the open years' appraisals, not every year's: a finalized
    year's leave the import's unit of work and the cache (a later read loads them from the store)."""
    units: list[UnitOfWork] = []
    start = UnitOfWork.__init__

    def recorded(unit: UnitOfWork, ledger: AppraisalLedger) -> None:
        start(unit, ledger)
        units.append(unit)

    monkeypatch.setattr(UnitOfWork, "__init__", recorded)
    with ledger_at(db_url) as ledger:
        ledger.submit(three_years().commands)  # one import, as `appraisal import` does
        loaded = set(units[-1].loaded)
        monkeypatch.undo()
        for year in (2023, 2024):
            assert not any(ledger_id("appraisal", f"{year}:{s}").int in loaded for s in ("d-01", *Years.PEOPLE))
        assert all(ledger_id("appraisal", f"2025:{s}").int in loaded for s in ("d-01", *Years.PEOPLE))
        ledger.submit([{"type": "year.publish", "id": "p-2025", "actor": "admin", "at": "2026-01-15T09:00:00+08:00",
                        "year": 2025}])
        ledger.submit_one({"type": "year.finalize", "id": "f-2025", "actor": "admin",
                           "at": "2026-02-01T09:00:00+08:00", "year": 2025})  # one command, as the server does
        cached = set(ledger.repository.cache.cache)  # type: ignore[union-attr]
        assert not any(ledger_id("appraisal", f"2025:{s}") in cached for s in ("d-01", *Years.PEOPLE))
        assert ledger.explain("2023:p-1")["summary"]["tier"] == 2  # read again from the store


def test_a_rebuild_lets_a_year_go_before_it_folds_the_next(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rebuild's page ends at a year's finalization: the year is rendered and let go before any
    event of a later year is folded, whatever the page size (it holds one year, not a year and a
    page of the next)."""
    with ledger_at(db_url) as ledger:
        ledger.submit(three_years().commands)
    met: list[tuple[int, set[int]]] = []  # (the year of an appraisal's event, the years let go then)
    fold = ReadModelProjection._fold_one

    def watched(projection: ReadModelProjection, position: int, event: Any, rows: Any) -> Any:
        change = fold(projection, position, event, rows)
        if change is not None and change.appraisal is not None:
            met.append((change.year, set(projection.state.closed)))
        return change

    monkeypatch.setattr(ReadModelProjection, "_fold_one", watched)
    with ledger_at(db_url) as ledger:
        projection = ReadModelProjection(ledger, resume=False)
        projection.rebuild(page=100_000)  # the whole log in one page
        projection.close()
    assert {year for year, _ in met} == {2023, 2024, 2025}
    assert all(closed == {2023} for year, closed in met if year == 2024)
    assert all(closed == {2023, 2024} for year, closed in met if year == 2025)


def test_a_restart_reads_no_rows_of_the_years_let_go(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A restarted worker (or server) reads the digests of the open years only: the rows of the
    finalized years, many in a log of many years, are not read into memory to be dropped."""
    with ledger_at(db_url) as ledger:
        ledger.submit(three_years().commands)
    caught_up(db_url)
    read: list[dict[str, Any]] = []
    db = open_view_db(db_url)
    kind = type(db)
    db.close()
    query = kind.query

    def watched(db: Any, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        rows = query(db, sql, params)
        read.extend(rows)
        return rows

    monkeypatch.setattr(kind, "query", watched)
    restarted = caught_up(db_url)
    assert set(restarted.state.closed) == {2023, 2024}
    assert {row["year"] for row in read if "digest" in row} == {2025}  # (and which years are final)
    assert {key[1] for key in restarted.renderer.digests if key[0] == "results"} == {2025}


def test_a_catch_up_never_cuts_a_commands_events(db_url: str) -> None:
    """A command that opens an appraisal records the year's new subject, then the appraisal: a
    catch-up whose page would end between the two processes them together (the year rendered
    with a subject and no appraisal was set aside, found by `scripts/bench years` after an import
    of a year)."""
    commands = three_years().commands
    with ledger_at(db_url) as ledger:
        ledger.submit(commands)
        projection = ReadModelProjection(ledger)
        projection.catch_up(page=7)  # odd: pages end inside commands of two events
        assert set_aside(projection.db) == []
        projection.close()
    followed = snapshot(db_url)
    rebuilt(db_url)
    assert snapshot(db_url) == followed


def test_a_rebuild_hands_a_publications_documents_to_the_writer_as_they_are_made(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rebuild's page with a publication renders the year there: its documents go to the writer
    every `SPILL_EVERY` of them, as the final render's do, not all at the end of the page."""
    import projections.documents
    from projections.documents import Rows
    from projections.write import PageWriter

    with ledger_at(db_url) as ledger:
        ledger.submit(three_years().commands)
    monkeypatch.setattr(projections.documents, "SPILL_EVERY", 4)
    sizes: list[int] = []
    put = PageWriter.put

    def watched(writer: PageWriter, rows: Any) -> None:
        if isinstance(rows, Rows):
            sizes.append(len(rows.explanations) + len(rows.breakdowns) + len(rows.placements))
        put(writer, rows)

    monkeypatch.setattr(PageWriter, "put", watched)
    with ledger_at(db_url) as ledger:
        projection = ReadModelProjection(ledger, resume=False)
        projection.rebuild(page=100_000)
        projection.close()
    assert sum(sizes) > 40 and max(sizes) <= 4 + 3  # a subject's explanation, breakdown(s), placement


def test_a_worker_catching_up_years_at_once_writes_their_documents_as_they_are_made(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A live batch that renders whole years (here the whole log in one batch, as a worker that
    catches up a year at once) hands its documents over every `SPILL_EVERY` of them into its one
    transaction, not all at its end (`BatchWriter`): exactly once still (a batch that fails at its
    end leaves nothing written), and the tables are those of a rebuild."""
    import projections.documents
    from projections import write as writing

    with ledger_at(db_url) as ledger:
        ledger.submit(three_years().commands)
    monkeypatch.setattr(projections.documents, "SPILL_EVERY", 4)
    sizes: list[int] = []
    write, set_tracking = writing.write, writing.set_tracking

    def watched(tx: Any, rows: Any, suffix: str = "") -> None:
        sizes.append(len(rows.explanations) + len(rows.breakdowns) + len(rows.placements))
        write(tx, rows, suffix)

    def moved(tx: Any, position: int, *, expected: int | None = None) -> None:
        raise writing.TrackingMoved("moved")

    monkeypatch.setattr(writing, "write", watched)
    monkeypatch.setattr(writing, "set_tracking", moved)
    with ledger_at(db_url) as ledger:
        projection = ReadModelProjection(ledger)
        with pytest.raises(writing.TrackingMoved):
            projection.catch_up(page=100_000)
        projection.close()
    assert len(sizes) > 10  # written before the end, then rolled back with it
    assert all(rows == [] for rows in snapshot(db_url).values())

    monkeypatch.setattr(writing, "set_tracking", set_tracking)
    sizes.clear()
    with ledger_at(db_url) as ledger:
        projection = ReadModelProjection(ledger)
        assert projection.catch_up(page=100_000) == ledger.event_count()
        # what a subject's explanation depends on beyond its facts, kept as a digest: early in a
        # year it names the whole cohort's tie, for each member
        assert projection.renderer.signatures and all(
            len(kept) == 64 for kept in projection.renderer.signatures.values())
        projection.close()
    assert sum(sizes) > 40 and max(sizes) <= 2 * (4 + 3), sizes  # a subject's explanation, breakdowns, placement
    followed = snapshot(db_url)
    rebuilt(db_url)
    assert snapshot(db_url) == followed


def test_a_start_passes_the_finalized_years_events_unread_and_a_revision_still_takes_them_back(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A start (`_resume`) neither decodes nor folds the events of the appraisals of the years
    finalized by its tracking row (its CPU does not grow with the years behind it); a revision of
    such a year recorded afterwards still folds them back from the store and reaches its read
    models and later years, as a rebuild has them."""
    with ledger_at(db_url) as ledger:
        ledger.submit(three_years().commands)
    caught_up(db_url)
    decoded: list[Any] = []
    with ledger_at(db_url) as ledger:
        to_domain_event = ledger.mapper.to_domain_event

        def watched(stored: Any) -> Any:
            decoded.append(stored.originator_id)
            return to_domain_event(stored)

        monkeypatch.setattr(ledger.mapper, "to_domain_event", watched)
        projection = ReadModelProjection(ledger)
        assert decoded and not {ledger_id("appraisal", f"{year}:{s}") for year in (2023, 2024)
                                for s in ("d-01", *Years.PEOPLE)} & set(decoded)
        assert held(projection) == {2025} and set(projection.state.closed) == {2023, 2024}
        assert projection.state.closed[2023][ledger_id("appraisal", "2023:p-1").int] == len(
            list(ledger.recorder.select_events(ledger_id("appraisal", "2023:p-1"))))
        write_raw(ledger, ledger_id("appraisal", "2023:p-1"), "RatingRecorded", score=Decimal("100"),
                  leaf="innovation", command_id="revision-1")
        with ledger_at(db_url) as fresh:
            revised = fresh.results(2023)
        write_raw(ledger, ledger_id("year", "2023"), "Published", document={**revised, "publication": 2},
                  digest="revised", command_id="revision-2")
        assert projection.catch_up() == 2
        assert set(projection.state.closed) == {2023, 2024}  # taken back, and let go again
        projection.close()
    views = ReadModels(db_url)
    try:
        assert views.results(2023) == as_json(revised)
    finally:
        views.close()
    followed = snapshot(db_url)
    rebuilt(db_url)
    assert snapshot(db_url) == followed


def test_an_event_a_start_passed_that_cannot_be_folded_again_makes_the_next_start_rebuild(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An event of a finalized year that this version cannot decode, passed unread by a start, is
    met when a revision takes the year back: noted, the batch fails, and the next start rebuilds,
    setting it aside as every fold does."""
    with ledger_at(db_url) as ledger:
        ledger.submit(three_years().commands)
    caught_up(db_url)
    bad = ledger_id("appraisal", "2023:p-3")
    with ledger_at(db_url) as ledger:
        to_domain_event = ledger.mapper.to_domain_event

        def fails_to_decode(stored: Any) -> Any:  # this version cannot decode p-3's second event
            if stored.originator_id == bad and stored.originator_version == 2:
                raise ValueError("cannot decode this event")
            return to_domain_event(stored)

        monkeypatch.setattr(ledger.mapper, "to_domain_event", fails_to_decode)
        projection = ReadModelProjection(ledger)
        assert set_aside(projection.db) == []  # passed, not met
        write_raw(ledger, ledger_id("appraisal", "2023:p-1"), "RatingRecorded", score=Decimal("100"),
                  leaf="innovation", command_id="revision-1")
        with pytest.raises(TakeBackFailed):
            projection.catch_up()
        assert [row["stage"] for row in set_aside(projection.db)] == ["fold"]
        projection.close()
        restarted = ReadModelProjection(ledger)  # rebuilds
        assert [(row["aggregate"], row["stage"]) for row in set_aside(restarted.db)] == [("2023:p-3", "decode")]
        assert restarted.state.position == ledger.event_count()
        restarted.close()
