"""The read models beside the direct computation, on one store: `opened(url)` gives a ledger, its
read-model projection and a reader; `assert_equal_to_direct` checks that the read models serve
what the scoring engine computes; `snapshot` is every rm_ table, row by row."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from api.ledger import AppraisalLedger
from projections import tables
from projections.db import open_view_db
from projections.documents import public_breakdown
from projections.projection import ReadModelProjection
from projections.reading import ReadModels

YEAR = 2025


@dataclass
class Store:
    """A ledger, its read-model projection and a reader, on one store."""

    url: str
    ledger: AppraisalLedger
    projection: ReadModelProjection
    views: ReadModels

    def submit(self, commands: list[dict[str, Any]]) -> None:
        self.ledger.submit(commands)
        self.projection.catch_up()


@contextmanager
def opened(url: str) -> Iterator[Store]:
    ledger = AppraisalLedger(url)
    projection = ReadModelProjection(ledger)
    views = ReadModels(url)
    try:
        yield Store(url, ledger, projection, views)
    finally:
        views.close()
        projection.close()
        ledger.close()


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every rm_ table (and the tracking rows), row by row, in one canonical order."""
    db = open_view_db(url)
    try:
        return {table: sorted((tuple(row.values()) for row in db.query(f"SELECT * FROM {table}")), key=repr)
                for table in (*tables.TABLES, "rm_tracking")}
    finally:
        db.close()


def as_json(document: Any) -> Any:
    """What the direct computation serves (JSON, as the command line writes it)."""
    return json.loads(json.dumps(document, ensure_ascii=False))


def subjects(results: dict[str, Any]) -> list[str]:
    return [f"{results['year']}:{s['id']}" for s in results["departments"] + results["people"]]


def canonical(document: Any) -> str:
    """The text a read model's document must have: json's canonical form (sorted keys, compact)."""
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def assert_equal_to_direct(store: Store, year: int = YEAR) -> None:
    direct = store.ledger.results(year)
    assert store.views.results(year) == as_json(direct)
    for key in subjects(direct):
        explained = store.ledger.explain(key)
        served, public = store.views.explanation(key), store.views.breakdown(key, 0)
        assert served == as_json(explained), key
        assert public == as_json(public_breakdown(explained)), key
        # key for key, in the same order, as json's canonical text of a full computation
        plain = {"ensure_ascii": False, "separators": (",", ":")}
        assert json.dumps(served, **plain) == canonical(explained), key  # type: ignore[arg-type]
        assert json.dumps(public, **plain) == canonical(public_breakdown(explained)), key  # type: ignore[arg-type]
    people = {row["person"]: row for row in store.views.db.query(
        "SELECT * FROM rm_person_history WHERE year = ?", [year])}
    assert set(people) == {p["id"] for p in direct["people"]}
    for person in direct["people"]:
        row = people[person["id"]]
        assert (row["total"], row["rank"], row["tier"], row["grade"], row["coefficient"], row["status"]) == (
            person["total"], person["rank"], person["tier"], person["grade"], person["coefficient"],
            direct["status"])
    departments = {row["department"]: row for row in store.views.department_ranking(year)}
    assert {d: (r["score"], r["rank"]) for d, r in departments.items()} == {
        d["id"]: (d["score"], d["rank"]) for d in direct["departments"]}


def chunks(commands: list[dict[str, Any]], parts: int) -> list[list[dict[str, Any]]]:
    """The commands in `parts` consecutive slices of (about) equal size."""
    size = -(-len(commands) // parts)
    return [commands[i:i + size] for i in range(0, len(commands), size)]
