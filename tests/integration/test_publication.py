"""The publication lifecycle on a historical year (SCORING.md §7–8), on business time, both stores:
publish, appeal within the window, decide, revised publications, finalize refused early and while
an appeal is open, accepted after; appeals past their decision date are flagged overdue."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from api.ledger import AppraisalLedger, Refused
from domain.aggregates import Year
from projections.projection import ReadModelProjection
from projections.reading import ReadModels
from tests.builders.worked_example import APPEAL, DEDUCTION, OVERTURN, build


def _cmd(kind: str, cid: str, at: str, **fields: object) -> dict[str, object]:
    return {"type": kind, "id": cid, "actor": "admin", "at": at, **fields}


def _refusal(ledger: AppraisalLedger, body: dict[str, object]) -> tuple[str, str]:
    before = ledger.event_count()
    with pytest.raises(Refused) as refused:
        ledger.submit([body])
    assert ledger.event_count() == before  # nothing recorded
    error = refused.value.outcome.error
    assert error is not None
    return error.field, error.rule


def _published(ledger: AppraisalLedger, year: int) -> list[dict[str, Any]]:
    """Every publication's document of a year, as the log keeps them (the year itself keeps the
    latest one's; the ones before give way to their tiers)."""
    return [event.document for event in ledger.events.get(Year.create_id(year)) if isinstance(event, Year.Published)]


def _h1_total(document: dict[str, object]) -> str:
    return next(p["total"] for p in document["people"] if p["id"] == "p-H1")  # type: ignore[index,union-attr]


def test_publish_appeal_decide_revise_and_finalize_on_business_time(db_url: str) -> None:
    ledger = AppraisalLedger(db_url)
    try:
        ledger.submit(build())
        # Published on Sunday 28 December 2025: 5 working days end on Friday 2 January 2026, 09:00.
        ledger.submit([_cmd("year.publish", "pub", "2025-12-28T09:00:00+08:00", year=2025)])
        year = ledger.year(2025)
        assert year is not None and year.status == "published" and len(year.publications) == 1
        assert _h1_total(year.publications[0]["document"]) == "89.69"

        assert _refusal(ledger, _cmd("year.finalize", "fin-early", "2025-12-31T09:00:00+08:00", year=2025)) == (
            "at", "finalize-after-publicity")

        # A deduction after publication: a revised publication, the first one unchanged.
        ledger.submit([{**DEDUCTION, "at": "2025-12-29T09:00:00+08:00"}])
        year = ledger.year(2025)
        assert [p["publication"] for p in _published(ledger, 2025)] == [1, 2]
        assert [_h1_total(p) for p in _published(ledger, 2025)] == ["89.69", "69.69"]
        assert year.publications[0]["document"] is None and year.publications[0]["tiers"]["p-H1"] is not None

        # Appealed within 30 days of the later of the item and the publication.
        ledger.submit([{**APPEAL, "at": "2026-01-02T09:00:00+08:00"}])
        assert len(ledger.year(2025).publications) == 2  # filing moves no figure: no revision
        assert _refusal(ledger, _cmd("year.finalize", "fin-open", "2026-01-03T09:00:00+08:00", year=2025)) == (
            "year", "finalize-after-appeals")

        # An absence recorded in September: its window runs from the publication, to 27 January.
        late = {"type": "appeal.file", "id": "late", "actor": "p-A", "at": "2026-01-27T09:00:01+08:00",
                "appraisal": "2025:p-A", "target": "we-027", "grounds": "迟到的申诉"}
        assert _refusal(ledger, late) == ("at", "appeal-window")

        ledger.submit([{**OVERTURN, "at": "2026-01-05T09:00:00+08:00"}])
        year = ledger.year(2025)
        assert [_h1_total(p) for p in _published(ledger, 2025)] == ["89.69", "69.69", "89.69"]
        assert year.publications[2]["document"]["revision_reason"] == "changed by command we-decision"

        assert 2025 in ledger._scores  # kept for the next revision (`UnitOfWork.year_results`)
        ledger.submit([_cmd("year.finalize", "fin", "2026-01-06T09:00:00+08:00", year=2025)])
        assert ledger.year(2025).status == "final"
        assert 2025 not in ledger._scores  # never revised again: let go with its appraisals
        assert ledger.results(2025)["status"] == "final"
        rating = {"type": "rating.record", "id": "after-final", "actor": "p-L1", "at": "2026-01-07T09:00:00+08:00",
                  "appraisal": "2025:p-A", "leaf": "business", "period": "2025-12", "rater_role": "in_charge",
                  "score": "10"}
        assert _refusal(ledger, rating) == ("appraisal", "year-final")
    finally:
        ledger.close()


def test_a_revision_scores_again_what_moved_since_the_scores_last_written_and_equals_the_year_scored_whole(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """After publication every batch that moves a figure records a revision: its document is the
    year's results, made from the scores last written for the appraisals still at their version
    (`UnitOfWork.year_results`), here and in another process; the same document as the year
    scored whole."""
    from domain import results

    ledger, other = AppraisalLedger(db_url), AppraisalLedger(db_url)
    try:
        ledger.submit([*build(), _cmd("year.publish", "pub", "2025-12-28T09:00:00+08:00", year=2025)])
        ledger.submit([{**DEDUCTION, "at": "2025-12-29T09:00:00+08:00"}])  # a revision: the scores kept
        scored: list[str] = []
        for name in ("score_person", "score_department"):
            real = getattr(results, name)
            monkeypatch.setattr(results, name, lambda scheme, a, *rest, real=real, **options: (
                scored.append(a.key), real(scheme, a, *rest, **options))[1])
        ledger.submit([{**APPEAL, "at": "2026-01-02T09:00:00+08:00"}, {**OVERTURN, "at": "2026-01-05T09:00:00+08:00"}])
        assert scored == ["2025:p-H1"]  # the decided appraisal alone
        assert _published(ledger, 2025)[-1] == {**ledger.results(2025), "publication": 3,
                                                 "revision_reason": "changed by command we-decision"}
        # another process moved p-A on: this one scores it again (its version moved), and p-A only
        occurrence = {"type": "occurrence.record", "id": "late-absence", "actor": "hr-office",
                      "at": "2026-01-05T10:00:00+08:00", "appraisal": "2025:p-A", "item": "absence", "count": 1,
                      "evidence": "考勤"}
        other.submit([occurrence])
        scored.clear()
        ledger.submit([{**occurrence, "id": "late-absence-2", "appraisal": "2025:p-H1"}])
        assert sorted(scored) == ["2025:p-A", "2025:p-H1"]
        assert {k: v for k, v in _published(ledger, 2025)[-1].items() if k != "revision_reason"} == {
            **ledger.results(2025), "publication": 5}
    finally:
        other.close()
        ledger.close()


def test_an_appeal_undecided_after_30_days_is_flagged_overdue(db_url: str) -> None:
    ledger = AppraisalLedger(db_url)
    try:
        ledger.submit([*build(), DEDUCTION, APPEAL])
        projection = ReadModelProjection(ledger)
        projection.catch_up()
        projection.close()
        reads = ReadModels(db_url)
        filed = datetime.fromisoformat(APPEAL["at"])  # type: ignore[arg-type]
        assert [a["status"] for a in reads.appeals(year=2025, now=filed + timedelta(days=29))] == ["open"]
        assert [a["status"] for a in reads.appeals(year=2025, now=filed + timedelta(days=31))] == ["overdue"]
        reads.close()
    finally:
        ledger.close()
