"""The queries behind the staff's pages, on both stores: a person's appeals across years and an
appraisal's appeals, each read without the whole year's (no read per appeal of others)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from api.http.read_side import Queries
from api.ledger import AppraisalLedger
from tests.builders.staff_years import staff_years


@pytest.fixture
def queries(db_url: str) -> Iterator[Queries]:
    ledger = AppraisalLedger(db_url)
    try:
        ledger.submit(staff_years())
        made = Queries(ledger, inline=True)
        try:
            yield made
        finally:
            made.close()
    finally:
        ledger.close()


def test_a_persons_appeals_of_every_year_with_their_outcome(queries: Queries) -> None:
    found = queries.appeals_of(appellant="p-3")
    assert [(a["appeal"], a["appraisal"], a["status"]) for a in found] == [
        ("appeal-p3-2024", "2024:p-3", "decided"), ("appeal-p3-2025", "2025:p-3", "overdue")]
    decided = found[0]["decision"]
    assert (decided["outcome"], decided["reason"], decided["actor"]) == ("overturned", "文件核实有误，撤销该项", "admin")
    assert found[0]["target"]["kind"] == "occurrence" and found[0]["target"]["ref"].startswith("2024:p-3#")
    assert found == [a for a in queries.appeals(2024) + queries.appeals(2025) if a["appellant"] == "p-3"]
    assert queries.appeals_of(appellant="p-5") == []


def test_an_appraisals_appeals(queries: Queries) -> None:
    assert [a["appeal"] for a in queries.appeals_of(appraisal="2024:p-4")] == ["appeal-p4-2024"]
    assert [a["appeal"] for a in queries.appeals_of(appraisal="2024:p-3", appellant="p-4")] == []


def test_a_persons_appeals_read_only_the_appraisals_they_concern(queries: Queries,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[str] = []
    explanation = queries.explanation
    monkeypatch.setattr(queries, "explanation", lambda key: read.append(key) or explanation(key))
    queries.appeals_of(appellant="p-3")
    assert sorted(read) == ["2024:p-3", "2025:p-3"]
