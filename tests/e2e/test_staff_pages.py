"""The staff's jobs in the pages (issue 17, jobs 11 to 13), end to end.

In a browser (Playwright driving Debian's chromium, as tests/e2e/test_pages.py), as p-3 of three
years (tests/staff_years.py): their years as charts drawn on the server with the figures beside
them, and the appeals they filed with the outcome (job 12); their breakdown with each appealable
item's deadline, "closed" and no form where the window has closed, a refusal shown beside the
item (job 11); who recorded each item and when, never who rated (job 13). Another member of staff
is refused p-3's years and appeals. Screenshots go to var/screenshots/staff/.

Over HTTP (TestClient): who may read a person's years.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect

from api.ledger import AppraisalLedger
from api.server.app import create_app
from tests.builders.http_world import World, served, settings
from tests.builders.pages_kit import HTML, ORIGIN, SCREENSHOTS, screenshot, sign_in, signed_in
from tests.builders.staff_years import staff_years

HOLDERS = {"staff": ("p-3", ()), "colleague": ("p-4", ()), "admin": ("admin-2", ("admin",)),
           "inspector": ("p-S1", ("inspector",))}
RATERS = ("p-L1", "李一", "p-L2", "李二")  # who rated p-3 (the leader in charge) and the department
BEIJING = timezone(timedelta(hours=8))
RECENT = "recent-absence"
OLD = "old-absence"


@contextmanager
def staff_world(db_url: str) -> Iterator[World]:
    """Three years with appeals; in 2025 p-3 also has an absence of yesterday (its window open)
    and one of May 2025 (closed: the year is not published)."""
    ledger = AppraisalLedger(db_url)
    try:
        yesterday = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0).isoformat()
        ledger.submit([*staff_years(),
                       {"type": "occurrence.record", "id": OLD, "actor": "hr-office", "appraisal": "2025:p-3",
                        "at": "2025-05-06T09:00:00+08:00", "item": "absence", "count": 1, "evidence": "考勤表"},
                       {"type": "occurrence.record", "id": RECENT, "actor": "hr-office", "appraisal": "2025:p-3",
                        "at": yesterday, "item": "absence", "count": 1, "evidence": "考勤记录：未请假缺勤"}])
        app = create_app(settings(db_url, projection="inline"), ledger=ledger)
        credentials = app.state.credentials
        yield World(ledger, app, {role: credentials.create(person, grants, created_by="tests")[0]
                                  for role, (person, grants) in HOLDERS.items()})
    finally:
        ledger.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[World, str]]:
    with staff_world(f"sqlite:///{tmp_path}/appraisal.db") as made, served(made.app) as base:
        yield made, base


def no_sideways_scroll(page: Page, name: str) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= 390, f"{page.url} is {wide}px wide at 390px"
    screenshot(page, name)
    page.set_viewport_size({"width": 1280, "height": 900})


def item_row(page: Page, command: str, w: World, key: str = "2025:p-3") -> str:
    """The CSS selector of the itemised row of the item recorded by `command`."""
    ref = next(e for e in w.app.state.queries.history(key) if e["command_id"] == command)
    return f"tr[data-refs='{key}#{ref['version']}']"


# --- the browser -------------------------------------------------------------------------------------

def test_staff_follow_their_years_and_the_appeals_they_filed(browser: Browser, site: tuple[World, str]) -> None:
    w, base = site
    page = signed_in(browser, base, w.tokens["staff"])
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.get_by_test_id("my-years").click()
    page.wait_for_url("**/people/p-3")

    years = w.app.state.queries.person_history("p-3")
    assert [y["year"] for y in years] == [2023, 2024, 2025]
    charts = page.get_by_test_id("charts").locator("svg[role=img]")
    expect(charts).to_have_count(4)
    for index, name in enumerate(("总分", "名次", "档次", "等次")):
        chart = charts.nth(index)
        assert name in (chart.locator("title").first.text_content() or "")
        labelled = chart.get_attribute("aria-labelledby")
        assert labelled and page.locator(f"[id='{labelled}']").count() == 1
    desc = charts.nth(0).locator("desc").text_content()
    assert desc == "；".join(f"{y['year']}: {y['total']}" for y in years)
    assert charts.nth(1).locator("desc").text_content() == "；".join(
        f"{y['year']}: {y['rank'] if y['rank'] is not None else '—'}" for y in years)
    # the same figures in a table beside the charts, for screen readers and for print
    table = page.get_by_test_id("history")
    for y in years:
        row = table.locator(f"tr[data-year='{y['year']}']")
        expect(row).to_contain_text(y["total"])
        expect(row).to_contain_text(y["grade"] or "—")
    assert len({y["grade"] for y in years}) > 1  # the chart has something to show

    appeals = page.get_by_test_id("my-appeals")
    expect(appeals.locator("tr[data-appeal]")).to_have_count(2)
    decided = appeals.locator("tr[data-appeal='appeal-p3-2024']")
    expect(decided).to_contain_text("撤销 overturned")
    expect(decided).to_contain_text("文件核实有误，撤销该项")
    expect(decided).to_contain_text("省级采纳文件日期有误")
    expect(appeals.locator("tr[data-appeal='appeal-p3-2025']")).to_contain_text("2025 年的申诉")
    assert "appeal-p4-2024" not in page.content()  # a colleague's appeal is not mine

    # drawn on the server: no script, nothing fetched from anywhere but this site
    assert page.locator("script").count() == 0
    assert requested and all(url.startswith(base) for url in requested), requested
    screenshot(page, "staff/12-years.png")
    no_sideways_scroll(page, "staff/12-years-390.png")


def test_staff_read_each_items_deadline_and_who_recorded_it(browser: Browser, site: tuple[World, str]) -> None:
    w, base = site
    page = signed_in(browser, base, w.tokens["staff"])
    page.goto("/appraisals/2025:p-3")

    recent = page.locator(item_row(page, RECENT, w))
    at = next(e for e in w.app.state.queries.history("2025:p-3") if e["command_id"] == RECENT)["data"]["at"]
    closes = (datetime.fromisoformat(at) + timedelta(days=30)).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")
    expect(recent.get_by_test_id("deadline")).to_contain_text(closes)
    expect(recent.locator("details.appeal-form")).to_have_count(1)

    old = page.locator(item_row(page, OLD, w))
    expect(old.get_by_test_id("closed")).to_contain_text("已截止")
    expect(old.get_by_test_id("closed")).to_contain_text("2025-06-05 09:00")  # 30 days after 6 May, 09:00
    expect(old.get_by_test_id("closed")).to_contain_text("公示后")  # publication opens it again
    expect(old.locator("form")).to_have_count(0)

    appealed = page.locator(item_row(page, _occurrence(w), w))
    expect(appealed).to_contain_text("已申诉")
    expect(appealed.locator("form")).to_have_count(0)

    # who recorded each item and when; the raters stay anonymous
    recorded = old.get_by_test_id("recorded")
    expect(recorded).to_contain_text("hr-office")
    expect(recorded).to_contain_text("2025-05-06 09:00")
    text = page.locator("main").inner_text()
    assert not [who for who in RATERS if who in text], "a rater's identity is shown to the subject"
    screenshot(page, "staff/11-deadlines.png")
    no_sideways_scroll(page, "staff/11-deadlines-390.png")

    # the same item appealed from another tab first: the refusal shows beside the item
    other = page.context.new_page()
    other.goto("/appraisals/2025:p-3")
    there = other.locator(item_row(other, RECENT, w))
    there.locator("details.appeal-form summary").click()
    there.locator("textarea").fill("已按规定请假")
    there.locator("button[type=submit]").click()
    other.wait_for_url("**filed=**")

    recent.locator("details.appeal-form summary").click()
    recent.locator("textarea").fill("当日因公外出，有派车单")
    with page.expect_response(lambda r: r.request.method == "POST") as refused:
        recent.locator("button[type=submit]").click()
    assert refused.value.status == 409
    row = page.locator(item_row(page, RECENT, w))
    refusal = row.get_by_test_id("refusal")
    expect(refusal).to_contain_text("只能申诉一次")
    expect(refusal).to_contain_text("当日因公外出，有派车单")  # what was typed is not lost
    expect(refusal).to_be_in_viewport()  # where the person was looking, not at the top
    expect(row.locator("form")).to_have_count(0)
    assert page.locator("main > .alert.refusal").count() == 0
    screenshot(page, "staff/11-refused.png")
    page.locator("#itemised").screenshot(path=str(SCREENSHOTS / "staff" / "11-refused-itemised.png"))


def _occurrence(w: World) -> str:
    """The command of p-3's 2025 item appealed in tests/staff_years.py."""
    return next(a["target"]["command"] for a in w.app.state.queries.appeals_of(appellant="p-3")
                if a["appraisal"] == "2025:p-3")


def test_another_member_of_staff_is_refused_my_years_and_appeals(browser: Browser,
                                                                 site: tuple[World, str]) -> None:
    w, base = site
    page = signed_in(browser, base, w.tokens["colleague"])
    response = page.goto("/people/p-3")
    assert response is not None and response.status == 403
    expect(page.locator("main")).to_contain_text("仅供本人、管理员和纪检人员查看")
    assert page.locator("svg.chart").count() == 0 and "appeal-p3" not in page.content()
    screenshot(page, "staff/12-refused.png")

    # p-3's published appraisal: the breakdown, without p-3's appeals or a form
    response = page.goto("/appraisals/2024:p-3")
    assert response is not None and response.status == 200
    assert "省级采纳文件日期有误" not in page.content()  # the grounds (a struck item's decision is public)
    expect(page.get_by_test_id("appeals")).to_have_count(0)
    assert page.locator("details.appeal-form, form[action^='/appraisals']").count() == 0
    # their own years, with their own appeal only
    page.goto("/people/p-4")
    expect(page.get_by_test_id("my-appeals").locator("tr[data-appeal]")).to_have_count(1)


# --- over HTTP ---------------------------------------------------------------------------------------

@pytest.fixture
def w(db_url: str) -> Iterator[World]:
    with staff_world(db_url) as made:
        yield made


def test_admins_and_inspectors_read_anyones_years_staff_only_their_own(w: World) -> None:
    with TestClient(w.app, headers={"Origin": ORIGIN}) as client:
        for role in ("admin", "inspector"):
            client.cookies.clear()
            sign_in(client, w.tokens[role])
            page = client.get("/people/p-3", headers=HTML)
            assert page.status_code == 200 and page.text.count("<svg") == 4 and "appeal-p3-2024" in page.text
            assert client.get("/people/nobody", headers=HTML).status_code == 404
        client.cookies.clear()
        sign_in(client, w.tokens["colleague"])
        theirs, unknown = client.get("/people/p-3", headers=HTML), client.get("/people/nobody", headers=HTML)
        assert theirs.status_code == unknown.status_code == 403  # no existence oracle
        assert "<svg" not in theirs.text and "appeal-p3" not in theirs.text
