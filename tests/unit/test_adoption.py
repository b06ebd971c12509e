"""Adopting another scheme version (`year.adopt`, SCORING.md §9) and consequences over several years
(§7): results and explanations show both versions and when the switch happened; as-of views
before the switch (on either time axis) show the old version's results; "tier 1 three years
running" reads the published results of the two years before."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from api.ledger import AppraisalLedger, Refused
from domain.errors import Conflict
from projections.reading import explain_at, results_at
from tests.builders.corrected_scheme import ALL_FOUR, REASON, adopt, corrected, publish
from tests.builders.worked_example import build
from tests.builders.years import Years

ADOPT_AT = "2026-01-10T09:00:00+08:00"
ADOPT_REASON = "采用修订后的方案 adopt the corrected scheme"
V1_TOTALS = {"p-A": "79.16", "p-H1": "89.69"}
V2_TOTALS = {"p-A": "76.70", "p-H1": "91.49"}  # tests/unit/test_replay.py: all four corrections


def totals(document: dict[str, Any]) -> dict[str, str]:
    return {p["id"]: p["total"] for p in document["people"]}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture
def adopted() -> tuple[AppraisalLedger, datetime]:
    """The worked example under v1, v2 published, then 2025 rebound to v2; and a recording time
    between the two (after v2's publication, before the adoption)."""
    ledger = AppraisalLedger("memory://")
    ledger.submit([*build(), publish(corrected(*ALL_FOUR))])
    between = datetime.now(UTC)
    ledger.submit([adopt(at=ADOPT_AT, reason=ADOPT_REASON)])
    return ledger, between


def test_publishing_a_new_version_changes_nothing_by_itself() -> None:
    ledger = AppraisalLedger("memory://")
    ledger.submit(build())
    before = ledger.results(2025)
    ledger.submit([publish(corrected(*ALL_FOUR))])
    assert ledger.results(2025) == before
    assert "adoptions" not in before
    assert ledger.explain("2025:p-A")["scheme"] == "bianban@1"


def test_the_results_show_both_versions_and_the_switch(adopted: tuple[AppraisalLedger, datetime]) -> None:
    ledger, between = adopted
    for document in (ledger.results(2025), results_at(ledger, 2025)):
        assert document["scheme"] == {"id": "bianban", "version": 2}
        assert totals(document) == V2_TOTALS
        [switch] = document["adoptions"]
        assert (switch["from"], switch["to"], switch["at"], switch["reason"], switch["actor"]) == (
            "bianban@1", "bianban@2", at(ADOPT_AT).isoformat(), ADOPT_REASON, "admin")
        assert between < at(switch["recorded_at"]) <= datetime.now(UTC)  # the recording time, kept beside it


def test_every_explanation_shows_the_current_version_and_the_switch(
        adopted: tuple[AppraisalLedger, datetime]) -> None:
    ledger, _ = adopted
    for key in ("2025:p-A", "2025:p-H1", "2025:d-01"):
        for document in (ledger.explain(key), explain_at(ledger, key)):
            assert document["scheme"] == "bianban@2"
            assert [(a["from"], a["to"], a["at"]) for a in document["adoptions"]] == [
                ("bianban@1", "bianban@2", at(ADOPT_AT).isoformat())]
            assert {f["rule"]["scheme"] for f in document["figures"] if "rule" in f} == {"bianban@2"}
    total = next(f for f in ledger.explain("2025:p-A")["figures"] if f["key"] == "total")
    assert (total["value"], total["params"]) == ("76.70", {"department": "0.4", "individual": "0.6"})


def test_known_at_a_business_time_before_the_switch_shows_the_old_version(
        adopted: tuple[AppraisalLedger, datetime]) -> None:
    ledger, _ = adopted
    before = results_at(ledger, 2025, known_at=at("2026-01-09T09:00:00+08:00"))
    assert before["scheme"] == {"id": "bianban", "version": 1}
    assert totals(before) == V1_TOTALS
    assert "adoptions" not in before
    after = results_at(ledger, 2025, known_at=at("2026-01-10T09:00:00+08:00"))  # at the switch itself
    assert after["scheme"] == {"id": "bianban", "version": 2}
    assert totals(after) == V2_TOTALS
    assert [a["to"] for a in after["adoptions"]] == ["bianban@2"]
    explained = explain_at(ledger, "2025:p-A", known_at=at("2026-01-09T09:00:00+08:00"))
    assert (explained["scheme"], explained["summary"]["total"]) == ("bianban@1", "79.16")
    assert "adoptions" not in explained


def test_as_of_a_recording_time_before_the_adoption_shows_the_old_version(
        adopted: tuple[AppraisalLedger, datetime]) -> None:
    ledger, between = adopted
    before = results_at(ledger, 2025, as_of=between)
    assert before["scheme"] == {"id": "bianban", "version": 1}
    assert totals(before) == V1_TOTALS
    assert "adoptions" not in before
    now = results_at(ledger, 2025, as_of=datetime.now(UTC))
    assert totals(now) == V2_TOTALS and len(now["adoptions"]) == 1


def test_adopting_back_keeps_both_switches_in_order(adopted: tuple[AppraisalLedger, datetime]) -> None:
    ledger, _ = adopted
    ledger.submit([adopt(version=1, command_id="v1-again", at="2026-01-20T09:00:00+08:00", reason="撤回 revert")])
    document = ledger.results(2025)
    assert totals(document) == V1_TOTALS
    assert [(a["from"], a["to"], a["reason"]) for a in document["adoptions"]] == [
        ("bianban@1", "bianban@2", ADOPT_REASON), ("bianban@2", "bianban@1", "撤回 revert")]
    middle = results_at(ledger, 2025, known_at=at("2026-01-15T09:00:00+08:00"))
    assert totals(middle) == V2_TOTALS and len(middle["adoptions"]) == 1
    with pytest.raises(Refused) as refused:
        ledger.submit([adopt(version=1, command_id="v1-once-more")])
    assert isinstance(refused.value.outcome.error, Conflict)
    assert "already uses bianban@1" in str(refused.value)


def test_the_version_names_what_it_supersedes(adopted: tuple[AppraisalLedger, datetime]) -> None:
    ledger, _ = adopted
    scheme = ledger.scheme("bianban", 2)
    assert (scheme.supersedes, scheme.reason) == (1, REASON)


# --- several years: "tier 1 three years running" over published years --------------------------------


BEST_IS_1 = {"p-1": "100", "p-2": "90", "p-3": "80", "p-4": "70", "p-5": "60"}
BEST_IS_2 = {"p-1": "90", "p-2": "100", "p-3": "80", "p-4": "70", "p-5": "60"}
PREFERENCE = {"type": "staffing_allocation_preference"}


def consequences(document: dict[str, Any], person_id: str) -> list[dict[str, str]]:
    return next(p for p in document["people"] if p["id"] == person_id)["consequences"]


def tier(document: dict[str, Any], person_id: str) -> int:
    return next(p for p in document["people"] if p["id"] == person_id)["tier"]


def test_tier_1_three_years_running_gets_the_staffing_preference() -> None:
    # a cohort of 5: floor(0.2 × 5) = 1 person in tier 1, the best
    ledger = (Years().year(2023, BEST_IS_1).publish(2023).year(2024, BEST_IS_1).publish(2024)
              .year(2025, BEST_IS_1).ledger())
    for document in (ledger.results(2025), results_at(ledger, 2025)):
        assert tier(document, "p-1") == 1
        assert consequences(document, "p-1") == [
            {"type": "innovation_award_nomination"}, {"type": "promotion_priority"}, PREFERENCE]
        assert all(PREFERENCE not in consequences(document, p) for p in Years.PEOPLE[1:])
    # in 2024 only two years were running
    assert PREFERENCE not in consequences(ledger.results(2024), "p-1")


def test_not_when_the_year_before_was_not_published() -> None:
    ledger = Years().year(2023, BEST_IS_1).publish(2023).year(2024, BEST_IS_1).year(2025, BEST_IS_1).ledger()
    assert tier(ledger.results(2024), "p-1") == 1  # tier 1, but only in provisional results
    document = ledger.results(2025)
    assert tier(document, "p-1") == 1
    assert PREFERENCE not in consequences(document, "p-1")
    assert PREFERENCE not in consequences(results_at(ledger, 2025), "p-1")


def test_not_when_tier_1_was_missed_in_one_of_the_years() -> None:
    ledger = (Years().year(2023, BEST_IS_1).publish(2023).year(2024, BEST_IS_2).publish(2024)
              .year(2025, BEST_IS_1).ledger())
    assert tier(ledger.results(2024), "p-1") == 2
    assert PREFERENCE not in consequences(ledger.results(2025), "p-1")
    ledger = (Years().year(2023, BEST_IS_2).publish(2023).year(2024, BEST_IS_1).publish(2024)
              .year(2025, BEST_IS_1).ledger())
    assert PREFERENCE not in consequences(ledger.results(2025), "p-1")


def test_the_consequence_holds_across_scheme_versions_and_as_known_before_publication() -> None:
    years = Years().year(2023, BEST_IS_1).publish(2023).year(2024, BEST_IS_1)
    years.commands.append(publish(corrected(*ALL_FOUR), command_id="v2", at="2025-02-01T09:00:00+08:00"))
    years.year(2025, BEST_IS_1, version=2)  # 2023 and 2024 under v1, 2025 under v2 (facts on 2025-03-01)
    ledger = years.publish(2024, day="2025-06-02").ledger()  # 2024 published late
    document = ledger.results(2025)
    assert document["scheme"] == {"id": "bianban", "version": 2}
    assert PREFERENCE in consequences(document, "p-1")
    assert [ledger.results(y)["scheme"]["version"] for y in (2023, 2024, 2025)] == [1, 1, 2]
    # as known before 2024's publication, 2025's facts were there but 2024 was not yet published
    early = results_at(ledger, 2025, known_at=at("2025-04-01T09:00:00+08:00"))
    assert tier(early, "p-1") == 1
    assert PREFERENCE not in consequences(early, "p-1")
    later = results_at(ledger, 2025, known_at=at("2025-06-03T09:00:00+08:00"))
    assert PREFERENCE in consequences(later, "p-1")
