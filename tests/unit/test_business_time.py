"""Who may give a business time (COMMANDS.md § Envelope), the rules of domain/times.py at their
limits: 5 minutes either way of the server's clock, 7 days for a back-dated fact."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from domain.errors import DomainError
from domain.times import backdated, business_time, caller_time

NOW = datetime.fromisoformat("2026-12-06T09:00:00+08:00")
MINUTE, SECOND = timedelta(minutes=1), timedelta(seconds=1)


def test_without_a_business_time_it_is_the_recording_time() -> None:
    assert business_time(None, NOW) == NOW


@pytest.mark.parametrize("ahead", [timedelta(0), 5 * MINUTE, -400 * timedelta(days=1)])
def test_a_given_business_time_up_to_5_minutes_ahead_is_kept(ahead: timedelta) -> None:
    assert business_time(NOW + ahead, NOW) == NOW + ahead


def test_a_business_time_more_than_5_minutes_ahead_is_refused() -> None:
    with pytest.raises(DomainError) as refused:
        business_time(NOW + 5 * MINUTE + SECOND, NOW)
    assert (refused.value.field, refused.value.rule) == ("at", "business-time")


@pytest.mark.parametrize("grant", ["admin", "recorder"])
def test_an_admin_or_a_recorder_names_a_business_time(grant: str) -> None:
    historical = datetime.fromisoformat("2025-03-01T09:00:00+08:00")
    assert caller_time(historical, NOW, frozenset({grant})) == historical
    assert caller_time(None, NOW, frozenset({grant})) is None


@pytest.mark.parametrize("grants", [frozenset(), frozenset({"inspector"})])
@pytest.mark.parametrize("away", [timedelta(0), 5 * MINUTE, -5 * MINUTE])
def test_anyone_else_gets_the_server_clock_within_5_minutes(grants: frozenset[str], away: timedelta) -> None:
    assert caller_time(NOW + away, NOW, grants) is None  # dropped: the server's clock
    assert caller_time(None, NOW, grants) is None


@pytest.mark.parametrize("away", [5 * MINUTE + SECOND, -5 * MINUTE - SECOND, -timedelta(days=400)])
def test_anyone_else_naming_another_time_is_refused(away: timedelta) -> None:
    with pytest.raises(DomainError) as refused:
        caller_time(NOW + away, NOW, frozenset())
    assert (refused.value.field, refused.value.rule) == ("at", "business-time")
    assert refused.value.message.startswith("业务时间") and "admin or recorder grant" in refused.value.message


def test_back_dated_means_more_than_7_days_before_the_recording() -> None:
    week = timedelta(days=7)
    assert not backdated(NOW, NOW)
    assert not backdated(NOW - week, NOW)
    assert backdated(NOW - week - SECOND, NOW)
    assert not backdated(NOW + MINUTE, NOW)
