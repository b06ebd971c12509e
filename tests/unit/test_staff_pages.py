"""The staff's pages, as pure functions: appeal windows beside items (the domain's deadline, one
rule), who recorded an item, and the history charts drawn on the server as accessible SVG."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from api.pages.charts import history_series, line_chart
from api.pages.labels import Labels
from api.pages.views import Explained, appeal_windows, beijing
from domain.handlers import appeal_deadline

ITEM_AT = "2025-03-03T09:00:00+08:00"


def rows(at: str = ITEM_AT) -> list[dict[str, Any]]:
    return [{"appeal_targets": [{"command": "c-1", "ref": "2025:p-A#10", "at": at}], "commands": ["c-1"]}]


def window(now: datetime, **kwargs: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"first_publication": None, "window_days": 30, **kwargs}
    return appeal_windows(rows(), now=now, **values)[0]["appeal_targets"][0]


def test_the_deadline_is_thirty_days_from_the_later_of_the_item_and_the_first_publication() -> None:
    item = datetime.fromisoformat(ITEM_AT)
    assert appeal_deadline(item, None, 30) == item + timedelta(days=30)
    published = datetime.fromisoformat("2026-01-15T09:00:00+08:00")
    assert appeal_deadline(item, published, 30) == published + timedelta(days=30)
    assert appeal_deadline(published + timedelta(days=3), published, 30) == published + timedelta(days=33)


def test_an_item_shows_when_its_window_closes_and_whether_it_is_open() -> None:
    before = datetime(2025, 4, 1, tzinfo=UTC)
    shown = window(before)
    assert (shown["deadline"], shown["open"], shown["reopens"]) == ("2025-04-02 09:00", True, False)
    after = datetime(2025, 4, 3, tzinfo=UTC)
    shown = window(after)
    assert (shown["deadline"], shown["open"], shown["reopens"]) == ("2025-04-02 09:00", False, True)


def test_publication_opens_the_window_again_for_thirty_days() -> None:
    now = datetime(2026, 1, 20, tzinfo=UTC)
    shown = window(now, first_publication="2026-01-15T09:00:00+08:00")
    assert (shown["deadline"], shown["open"], shown["reopens"]) == ("2026-02-14 09:00", True, False)
    shown = window(datetime(2026, 2, 15, tzinfo=UTC), first_publication="2026-01-15T09:00:00+08:00")
    assert (shown["open"], shown["reopens"]) == (False, False)


def test_a_final_year_takes_no_appeal() -> None:
    shown = window(datetime(2025, 3, 4, tzinfo=UTC), final=True)
    assert (shown["open"], shown["final"], shown["reopens"]) == (False, True, False)


def test_without_a_known_window_the_command_decides() -> None:
    shown = window(datetime(2030, 1, 1, tzinfo=UTC), window_days=None)
    assert (shown["deadline"], shown["open"]) == ("", True)


def test_times_beside_items_are_beijing_time() -> None:
    assert beijing("2026-12-06T04:49:39+00:00") == "2026-12-06 12:49"
    assert beijing(ITEM_AT) == "2025-03-03 09:00"
    assert beijing(None) == ""


def test_a_breakdown_item_shows_who_recorded_it_and_when() -> None:
    """A breakdown's items carry no recorder: the page adds them from the appraisal's events."""
    doc = {"appraisal": "2025:p-A", "year": 2025, "subject": {"id": "p-A", "kind": "person"},
           "figures": [{"key": "adjustment:innovation_award", "value": "2", "events": ["2025:p-A#9"],
                        "rule": {"type": "adjustment", "id": "innovation_award"}}],
           "items": [{"ref": "2025:p-A#9", "kind": "adjustment", "at": ITEM_AT, "what": "innovation_award",
                      "evidence": "文件"}]}
    records = {"2025:p-A#9": {"command": "c-9", "actor": "hr-office", "at": ITEM_AT,
                              "recorded_at": "2025-03-04T01:00:00+00:00", "backdated": False}}
    row = Explained(doc, Labels(), records).itemised()[0]
    assert row["recorded"] == [{"ref": "2025:p-A#9", "actor": "hr-office", "name": "hr-office",
                                "at": "2025-03-03 09:00", "recorded_at": "2025-03-04 09:00", "backdated": False}]
    assert row["commands"] == ["c-9"]
    assert [t["command"] for t in row["appeal_targets"]] == ["c-9"]
    assert Explained(doc, Labels()).itemised()[0]["recorded"] == []  # nothing known: nothing shown


YEARS = [{"year": 2023, "total": "79.16", "rank": 3, "tier": 2, "grade": "B"},
         {"year": 2024, "total": "85", "rank": None, "tier": None, "grade": None},  # an unresolved tie
         {"year": 2025, "total": "91.5", "rank": 1, "tier": 1, "grade": "A"}]


def test_the_history_charts_are_accessible_svg_with_nothing_from_elsewhere() -> None:
    charts = {series.key: str(line_chart(series)) for series in history_series(YEARS)}
    assert list(charts) == ["total", "rank", "tier", "grade"]
    for key, svg in charts.items():
        assert svg.startswith("<svg ") and 'role="img"' in svg
        assert f'aria-labelledby="chart-{key}-title"' in svg and f'<title id="chart-{key}-title">' in svg
        assert f'aria-describedby="chart-{key}-desc"' in svg
        assert not re.search(r"<script|<style|style=|<image|href=|url\(|@import", svg)
        assert re.findall(r"https?://[^\"' ]+", svg) == ["http://www.w3.org/2000/svg"]
    assert "<desc id=\"chart-total-desc\">2023: 79.16；2024: 85；2025: 91.5</desc>" in charts["total"]
    assert "2024: —" in charts["rank"]


def point(svg: str, year: int) -> tuple[str, str]:
    found = re.search(rf'<circle cx="([\d.]+)" cy="([\d.]+)" r="4" fill="[^"]+"><title>{year}: ', svg)
    assert found, f"no point for {year}"
    return found.group(1), found.group(2)


def test_rank_tier_and_grade_put_the_best_at_the_top_and_a_missing_year_is_a_gap() -> None:
    charts = {series.key: str(line_chart(series)) for series in history_series(YEARS)}
    for key in ("rank", "tier", "grade"):
        assert Decimal(point(charts[key], 2025)[1]) < Decimal(point(charts[key], 2023)[1]), key
        assert "<title>2024:" not in charts[key]  # no point, and no line through the gap
        assert "<polyline" not in charts[key]
    assert Decimal(point(charts["total"], 2025)[1]) < Decimal(point(charts["total"], 2023)[1])  # higher total: higher
    assert charts["total"].count("<polyline") == 1


def test_text_in_a_chart_is_escaped() -> None:
    series = history_series([{"year": 2025, "total": "80", "rank": 1, "tier": 1, "grade": "<b>"}])[3]
    svg = str(line_chart(series))
    assert "<b>" not in svg and "&lt;b&gt;" in svg
