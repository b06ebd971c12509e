"""The pages for people, end to end.

In a browser (Playwright driving Debian's chromium; never a downloaded browser): the app under
uvicorn on 127.0.0.1 over a SQLite store with the worked example of SCORING.md §10, served from
the read models as in production. Staff sign in, read their breakdown (79.16, the events behind
it, no other rater's identity) and appeal an absence; the inspector reads the audit trail and the
full trace; a member of staff opening someone else's appraisal before publication gets the 403
page; the admin reads the year's table with everyone. Screenshots go to var/screenshots/.

Over HTTP (both stores, both read sides): the session cookie, the token never in a URL or a log,
errors as pages with their status, and the pages answering what the JSON API answers.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect

from api.http import logs
from tests.builders.http_world import World, served, world
from tests.builders.pages_kit import (
    HTML,
    ORIGIN,
    SCREENSHOTS,
    screenshot,
    sign_in,
    signed_in,
)

A, H1, D01 = "2025:p-A", "2025:p-H1", "2025:d-01"
OTHER_RATERS = ("p-L1", "p-H1", "李一", "何科长")  # who rated p-A besides p-A


# --- the browser -------------------------------------------------------------------------------------

@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[World, str]]:
    with world(f"sqlite:///{tmp_path}/appraisal.db") as made, \
            served(made.app) as base:
        yield made, base


def recent_absence(w: World) -> str:
    """An absence recorded yesterday, so that its appeal window is open today."""
    at = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0).isoformat()
    w.ledger.submit([{"type": "occurrence.record", "id": "pages-absence", "actor": "hr-office", "at": at,
                      "appraisal": A, "item": "absence", "count": 1, "evidence": "考勤记录：未请假缺勤"}])
    return "pages-absence"


def test_staff_read_their_breakdown_and_appeal_an_absence(browser: Browser, site: tuple[World, str]) -> None:
    w, base = site
    page = signed_in(browser, base, w.tokens["staff"])
    cookie = next(c for c in page.context.cookies() if c["name"] == "appraisal_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert w.tokens["staff"] not in page.url

    expect(page.locator("main")).to_contain_text(A)  # home links to the own appraisal
    page.click(f"a[href='/appraisals/{A}']")
    expect(page.get_by_test_id("total")).to_have_text("79.16")
    formula = page.get_by_test_id("formula")
    for part in ("79.155", "0.5 × ", "87.05", "71.26"):
        expect(formula).to_contain_text(part)
    # the events behind the figures: the two absences, the measurements, the adopted proposal
    events = page.get_by_test_id("events")
    for ref in ("2025:p-A#8", "2025:p-A#9", "2025:p-A#10", "2025:p-A#11", "2025:p-A#15"):
        expect(events.locator(f"tr[data-ref='{ref}']")).to_have_count(1)
    expect(page.get_by_test_id("itemised")).to_contain_text("缺勤")
    expect(page.get_by_test_id("hidden-note")).to_be_visible()
    text = page.locator("main").inner_text()
    assert not [who for who in OTHER_RATERS if who in text], "another rater's identity is shown to staff"
    assert page.locator("[data-testid=trace]").count() == 0  # the full trace is for admins and inspectors
    screenshot(page, "appraisal-staff.png")

    # an item whose appeal window has closed: the day it closed, and no form
    old = page.locator("tr[data-refs='2025:p-A#10']")
    expect(old.get_by_test_id("closed")).to_contain_text("已截止")
    assert old.locator("details.appeal-form").count() == 0

    # an appeal whose window closes while the page is open is refused beside the item
    command = recent_absence(w)
    page.goto(f"/appraisals/{A}")
    row = page.locator("tr", has=page.locator(f"input[name=target][value='{command}']"))
    row.locator("details.appeal-form summary").click()
    row.locator("textarea").fill("当日因公外出")
    now = w.ledger.clock
    w.ledger.clock = lambda: now() + timedelta(days=31)
    with page.expect_response(lambda r: r.request.method == "POST") as refused:
        row.locator("button[type=submit]").click()
    assert refused.value.status == 422
    w.ledger.clock = now
    row = page.locator("tr[data-refs]", has=page.get_by_test_id("refusal"))
    expect(row.get_by_test_id("refusal")).to_contain_text("申诉期限")
    expect(row.get_by_test_id("closed")).to_contain_text("已截止")
    assert row.locator("details.appeal-form").count() == 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#itemised").screenshot(path=str(SCREENSHOTS / "itemised-refused.png"))

    # a recent absence is appealed and listed
    page.goto(f"/appraisals/{A}")
    expect(page.get_by_test_id("total")).to_have_text("78.66")
    row = page.locator("tr", has=page.locator(f"input[name=target][value='{command}']"))
    row.locator("details.appeal-form summary").click()
    row.locator("textarea").fill("已按规定请假，附请假单")
    row.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r".*filed=.*"))
    expect(page.get_by_test_id("filed")).to_be_visible()
    appeals = page.get_by_test_id("appeals")
    expect(appeals).to_contain_text("已按规定请假，附请假单")
    expect(appeals).to_contain_text("待裁决")
    expect(appeals).to_contain_text(command)
    assert page.locator(f"input[name=target][value='{command}']").count() == 0  # appealed once only
    filed = [a for a in w.app.state.queries.appeals(2025) if a["target"]["command"] == command]
    assert [(a["appellant"], a["status"]) for a in filed] == [("p-A", "open")]
    screenshot(page, "appraisal-staff-appealed.png")
    page.locator("#appeals").screenshot(path=str(SCREENSHOTS / "appeals-filed.png"))

    page.click("text=退出")
    page.wait_for_url(f"{base}/")
    assert not [c for c in page.context.cookies() if c["name"] == "appraisal_session"]


def test_the_inspector_reads_the_audit_trail_and_the_full_trace(browser: Browser, site: tuple[World, str]) -> None:
    w, base = site
    page = signed_in(browser, base, w.tokens["inspector"])
    page.click("header nav a[href='/audit']")
    trail = page.get_by_test_id("audit")
    logged = w.app.state.queries.audit(0, 100)
    assert 40 < len(logged) < 100  # the worked example's events: one page
    expect(trail.locator("tbody tr")).to_have_count(len(logged))
    expect(trail).to_contain_text("记录评分 rating recorded")

    page.fill("input[name=appraisal]", A)
    page.fill("input[name=actor]", "p-L1")
    page.click("form.filters button[type=submit]")
    rows = trail.locator("tbody tr")
    expect(rows).to_have_count(3)  # L1's three ratings of p-A
    for index in range(3):
        expect(rows.nth(index)).to_contain_text("p-L1")
        expect(rows.nth(index)).to_contain_text(A)
    screenshot(page, "audit.png")

    page.goto(f"/appraisals/{A}")
    expect(page.get_by_test_id("total")).to_have_text("79.16")
    trace = page.get_by_test_id("trace")
    expect(trace.locator("tr[data-figure='total']")).to_contain_text("79.155")
    expect(trace.locator("tr[data-figure='rule:review_errors']")).to_contain_text("allowance")
    events = page.get_by_test_id("events")
    expect(events.locator("tr[data-kind=rating]")).to_have_count(9)
    expect(events).to_contain_text("p-L1")  # every rater, by name
    assert page.locator("details.appeal-form").count() == 0  # an inspector files nothing
    screenshot(page, "appraisal-inspector.png")


def test_staff_opening_another_appraisal_before_publication_get_the_403_page(
        browser: Browser, site: tuple[World, str]) -> None:
    w, base = site
    page = signed_in(browser, base, w.tokens["staff"])
    response = page.goto(f"/appraisals/{H1}")
    assert response is not None and response.status == 403
    main = page.locator("main")
    expect(main).to_contain_text("无权查看")
    expect(main).to_contain_text("Forbidden")
    expect(main).to_contain_text("尚未公示")
    expect(main).to_contain_text("not published yet")
    assert "89.69" not in page.content()
    response = page.goto("/audit")
    assert response is not None and response.status == 403
    expect(main).to_contain_text("纪检")


def test_the_admin_reads_the_year_with_everyone(browser: Browser, site: tuple[World, str]) -> None:
    w, base = site
    page = signed_in(browser, base, w.tokens["admin"])
    page.click("a[href='/years/2025']")
    people = page.get_by_test_id("people")
    expect(people.locator("tbody tr[data-person]")).to_have_count(2)
    expect(people.locator("tr[data-person='p-H1']")).to_contain_text("89.69")
    expect(people.locator("tr[data-person='p-A']")).to_contain_text("79.16")
    expect(page.get_by_test_id("year-status")).to_contain_text("暂定")
    expect(page.get_by_test_id("departments").locator("tr[data-department='d-01']")).to_contain_text("87.05")
    screenshot(page, "year-admin.png")
    page.click("tr[data-person='p-H1'] a")
    expect(page.get_by_test_id("total")).to_have_text("89.69")


# --- over HTTP: sessions, errors, and the same answers as the API ------------------------------------

@pytest.fixture
def w(db_url: str) -> Iterator[World]:
    with world(db_url) as made:
        yield made


@pytest.fixture
def client(w: World) -> Iterator[TestClient]:
    # What a browser sends with a form from these pages: their own origin (api/pages/session.py).
    with TestClient(w.app, headers={"Origin": ORIGIN}) as made:
        yield made


def test_sign_in_keeps_the_token_in_a_strict_http_only_cookie_and_out_of_urls_and_logs(
        w: World, client: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    token = w.tokens["staff"]
    logs.configure("json")
    try:
        capsys.readouterr()
        response = client.post("/", data={"token": token, "next": "/years/2025"}, headers=HTML,
                               follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/years/2025"
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("appraisal_session=") and "HttpOnly" in cookie
        assert "samesite=strict" in cookie.lower() and "Path=/" in cookie
        page = client.get("/years/2025", headers=HTML)
        assert page.status_code == 200 and token not in page.text
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    finally:
        import logging

        logging.getLogger().handlers = []
    requests = [line for line in lines if line.get("event") == "request"]
    assert [r["actor"] for r in requests] == ["p-A", "p-A"]
    assert token not in json.dumps(lines) and token[3:12] not in json.dumps(lines)
    assert client.get("/", headers=HTML, follow_redirects=False).headers["location"] == "/home"
    out = client.post("/logout", headers=HTML, follow_redirects=False)
    assert out.status_code == 303 and 'appraisal_session=""' in out.headers["set-cookie"]


def test_no_session_goes_to_sign_in_and_a_bad_token_is_a_401_page(w: World, client: TestClient) -> None:
    response = client.get("/years/2025", headers=HTML, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/?next=/years/2025"
    form = client.get("/?next=/years/2025", headers=HTML)
    assert form.status_code == 200 and 'name="next" value="/years/2025"' in form.text
    assert 'type="password"' in form.text and 'method="post"' in form.text
    refused = client.post("/", data={"token": "al_" + "x" * 43}, headers=HTML, follow_redirects=False)
    assert refused.status_code == 401 and "令牌无效" in refused.text and "set-cookie" not in refused.headers
    assert client.post("/", data={"token": "https://evil/", "next": "//evil.example"}, headers=HTML,
                       follow_redirects=False).status_code == 401
    sign_in(client, w.tokens["staff"])
    w.app.state.credentials.revoke(w.tokens["staff"], by="tests")
    revoked = client.get("/home", headers=HTML, follow_redirects=False)
    assert revoked.status_code == 401 and "令牌已被吊销" in revoked.text
    assert 'appraisal_session=""' in revoked.headers["set-cookie"]
    sign_in(client, w.tokens["admin"])
    assert client.post("/", data={"token": w.tokens["admin"], "next": "//evil.example"}, headers=HTML,
                       follow_redirects=False).headers["location"] == "/home"


def test_errors_are_pages_with_their_status_never_a_200(w: World, client: TestClient) -> None:
    sign_in(client, w.tokens["staff"])
    for path, status, words in [
        (f"/appraisals/{H1}", 403, ("无权查看", "Forbidden", "尚未公示")),
        ("/audit", 403, ("无权查看", "纪检")),
        ("/appraisals/2025:p-nobody", 403, ("无权查看", "Forbidden")),  # as another's: no existence oracle
        ("/years/2031", 404, ("未找到",)),
        ("/years/1234", 404, ("未找到",)),
    ]:
        response = client.get(path, headers=HTML)
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"].startswith("text/html")
        assert all(word in response.text for word in words), (path, response.text)
        assert response.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_the_audit_path_is_the_page_for_a_browser_and_the_api_for_everyone_else(
        w: World, client: TestClient) -> None:
    api = client.get("/audit", headers=w.auth("inspector"))
    assert api.status_code == 200 and api.headers["content-type"] == "application/json"
    assert client.get("/audit").headers["content-type"].startswith("application/problem+json")
    sign_in(client, w.tokens["inspector"])
    page = client.get(f"/audit?appraisal={A}&actor=hr-office", headers=HTML)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    shown = re.findall(r'<tr data-position="(\d+)">', page.text)
    listed = client.get(f"/audit?appraisal={A}&actor=hr-office", headers=w.auth("inspector")).json()["events"]
    assert shown == [str(e["position"]) for e in listed] and len(shown) == 5
    paths = client.get("/openapi.json").json()["paths"]
    assert "/audit" in paths and not {"/", "/home", "/years/{year}", "/appraisals/{key}"} & set(paths)


def test_the_pages_show_what_the_api_answers(w: World, client: TestClient) -> None:
    for role in ("staff", "head", "outsider", "admin", "inspector"):
        client.cookies.clear()
        sign_in(client, w.tokens[role])
        page = client.get("/years/2025", headers=HTML)
        results = client.get("/years/2025/results", headers=w.auth(role)).json()
        assert sorted(re.findall(r'data-person="([^"]+)"', page.text)) == sorted(p["id"] for p in results["people"])
        ranking = client.get("/years/2025/departments", headers=w.auth(role)).json()["departments"]
        assert re.findall(r'data-department="([^"]+)"', page.text) == [d["department"] for d in ranking]
        for key in (A, H1, D01):
            shown = client.get(f"/appraisals/{key}", headers=HTML)
            api = client.get(f"/appraisals/{key}/breakdown", headers=w.auth(role))
            assert shown.status_code == api.status_code, (role, key)


def test_after_publication_staff_read_everyone_as_published(w: World, client: TestClient) -> None:
    w.ledger.submit([{"type": "year.publish", "id": "pages-publish", "actor": "admin-2", "year": 2025}])
    sign_in(client, w.tokens["staff"])
    year = client.get("/years/2025", headers=HTML)
    assert year.status_code == 200 and "已公示" in year.text
    assert re.findall(r'data-person="([^"]+)"', year.text) == ["p-H1", "p-A"]
    other = client.get(f"/appraisals/{H1}", headers=HTML)
    assert other.status_code == 200 and "89.69" in other.text
    assert "appeal-form" not in other.text  # only the subject appeals
    assert not [who for who in ("p-L1", "p-L2", "p-L3", "p-S1") if who in other.text]


def test_an_appeal_posted_from_another_site_is_refused_and_records_nothing(w: World, client: TestClient) -> None:
    sign_in(client, w.tokens["staff"])
    before = w.ledger.event_count()
    response = client.post(f"/appraisals/{A}", data={"target": "we-027", "grounds": "g", "id": "x-site"},
                           headers={**HTML, "Origin": "https://evil.example"})
    assert response.status_code == 403 and "其他网站" in response.text
    assert w.ledger.event_count() == before


def test_an_appeal_from_the_page_is_the_api_command(w: World, client: TestClient) -> None:
    command = recent_absence(w)
    sign_in(client, w.tokens["staff"])
    before = w.ledger.event_count()
    body: dict[str, Any] = {"target": command, "grounds": "请假已批准", "id": "page-appeal-1"}
    response = client.post(f"/appraisals/{A}", data=body, headers=HTML, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == (f"/appraisals/{A}?filed=page-appeal-1"
                                            f"&position={w.ledger.event_count()}#appeals")
    again = client.post(f"/appraisals/{A}", data=body, headers=HTML, follow_redirects=False)
    assert again.status_code == 303 and w.ledger.event_count() == before + 1  # the same id: recorded once
    appeal = client.get("/appeals/page-appeal-1", headers=w.auth("staff")).json()
    assert (appeal["appellant"], appeal["target"]["command"], appeal["grounds"]) == ("p-A", command, "请假已批准")
    twice = client.post(f"/appraisals/{A}", data={**body, "id": "page-appeal-2"}, headers=HTML)
    assert twice.status_code == 409 and "只能申诉一次" in twice.text
    empty = client.post(f"/appraisals/{A}", data={"target": "we-028", "grounds": " ", "id": "e"}, headers=HTML)
    assert empty.status_code == 422
    client.cookies.clear()
    sign_in(client, w.tokens["head"])
    theirs = client.post(f"/appraisals/{A}", data={"target": "we-028", "grounds": "g", "id": "h"}, headers=HTML)
    assert theirs.status_code == 403  # only the subject appeals, and the head may not read it either
    assert w.ledger.event_count() == before + 1


def test_an_appeal_from_the_page_is_at_the_server_clock_whatever_the_form_says(w: World, client: TestClient) -> None:
    """COMMANDS.md § Envelope: a page forwards no business time; the appellant's is the server's."""
    command = recent_absence(w)
    moment = datetime.now(UTC).replace(microsecond=0)
    w.ledger.clock = lambda: moment
    sign_in(client, w.tokens["staff"])
    body = {"target": command, "grounds": "请假已批准", "id": "page-appeal-at", "at": "2025-03-05T09:00:00+08:00"}
    assert client.post(f"/appraisals/{A}", data=body, headers=HTML, follow_redirects=False).status_code == 303
    appeal = client.get("/appeals/page-appeal-at", headers=w.auth("staff")).json()
    assert datetime.fromisoformat(appeal["filed_at"]) == moment


def test_the_audit_page_marks_and_filters_back_dated_events(w: World, client: TestClient) -> None:
    recent = recent_absence(w)  # a day back: not back-dated; the worked example's (2025) are
    sign_in(client, w.tokens["inspector"])
    page = client.get(f"/audit?appraisal={A}&limit=1000", headers=HTML)
    rows = re.findall(r'<tr data-position="(\d+)">(.*?)</tr>', page.text, re.S)
    marked = {position for position, row in rows if 'data-testid="backdated"' in row}
    listed = client.get(f"/audit?appraisal={A}&limit=1000", headers=w.auth("inspector")).json()["events"]
    assert marked == {str(e["position"]) for e in listed if e["backdated"]} and marked
    fresh = next(str(e["position"]) for e in listed if e["command_id"] == recent)
    assert fresh not in marked and fresh in {position for position, _ in rows}

    filtered = client.get(f"/audit?appraisal={A}&backdated=true&limit=1000", headers=HTML)
    shown = re.findall(r'<tr data-position="(\d+)">', filtered.text)
    assert set(shown) == marked and len(shown) == len(marked)
    assert 'name="backdated" value="true" checked' in filtered.text
    assert 'name="backdated" value="true" checked' not in page.text


def test_unresolved_ties_are_highlighted(db_url: str) -> None:
    from api.ledger import AppraisalLedger
    from api.server.app import create_app
    from tests.builders.http_world import settings
    from tests.builders.years import Years

    tied = {"p-1": "90", "p-2": "90", "p-3": "80", "p-4": "70", "p-5": "60"}  # 1st and 2nd: tier 1 of 5 is one
    ledger = AppraisalLedger(db_url)
    try:
        ledger.submit(Years().year(2025, tied).commands)
        app = create_app(settings(db_url), ledger=ledger)
        with TestClient(app) as client:
            sign_in(client, app.state.credentials.create("admin-2", ("admin",), created_by="tests")[0])
            page = client.get("/years/2025", headers=HTML)
            assert page.status_code == 200 and "并列待定" in page.text and "Unresolved ties" in page.text
            rows = dict(re.findall(r'<tr data-person="([^"]+)" class="([^"]*)"', page.text))
            assert {p for p, classes in rows.items() if "tie" in classes.split()} == {"p-1", "p-2"}
            appraisal = client.get("/appraisals/2025:p-1", headers=HTML)
            assert "并列待定" in appraisal.text and "员工p-2" in appraisal.text
            client.cookies.clear()
            sign_in(client, app.state.credentials.create("p-2", (), created_by="tests")[0])
            own = client.get("/years/2025", headers=HTML)
            assert re.findall(r'data-person="([^"]+)"', own.text) == ["p-2"] and "并列待定" in own.text
    finally:
        ledger.close()


def people_on(html: str) -> list[str]:
    return re.findall(r'<tr data-person="([^"]+)"', html)


def test_a_year_of_many_people_is_shown_a_page_at_a_time_with_filters(db_url: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The year's page, a publication and the year looked back show `PAGE_ROWS` people a page in
    the order of the ranking, of one department or found by name (a 3,000-person year is megabytes
    of HTML in one page)."""
    from api.ledger import AppraisalLedger
    from api.pages import views
    from api.server.app import create_app
    from tests.builders.http_world import settings
    from tests.builders.years import Years

    monkeypatch.setattr(views, "PAGE_ROWS", 2)
    ranked = ["p-3", "p-5", "p-1", "p-4", "p-2"]
    ledger = AppraisalLedger(db_url)
    try:
        ledger.submit(Years().year(2025, {"p-1": "80", "p-2": "60", "p-3": "95", "p-4": "70", "p-5": "90"}).commands)
        app = create_app(settings(db_url), ledger=ledger)
        with TestClient(app, headers={"Origin": ORIGIN}) as client:
            sign_in(client, app.state.credentials.create("admin-2", ("admin",), created_by="tests")[0])
            seen: list[str] = []
            for number in (1, 2, 3):
                html = client.get(f"/years/2025?page={number}", headers=HTML).text
                assert 'data-testid="people-pager"' in html and "共 5 人" in html
                seen += people_on(html)
            assert seen == ranked
            assert people_on(client.get("/years/2025?page=9", headers=HTML).text) == ["p-2"]  # past the end: the last

            html = client.get("/years/2025?department=d-01&page=2", headers=HTML).text
            assert people_on(html) == ranked[2:4] and "department=d-01&amp;page=3" in html  # the pages keep the filter
            nobody = client.get("/years/2025?department=d-99", headers=HTML)
            assert nobody.status_code == 200 and people_on(nobody.text) == [] and "没有符合条件的人员" in nobody.text
            assert people_on(client.get("/years/2025?q=p-4", headers=HTML).text) == ["p-4"]  # by id
            found = client.get("/years/2025?q=" + "员工p-5", headers=HTML).text  # by name
            assert people_on(found) == ["p-5"] and "共 1 人（全部 5 人）" in found

            ledger.submit([{"type": "year.publish", "id": "paged-publish", "actor": "admin-2", "year": 2025}])
            published = client.get("/years/2025/published/1?page=2", headers=HTML).text
            assert people_on(published) == ranked[2:4] and "/years/2025/published/1?page=3" in published
            back = client.get("/years/2025/lookback?known_at=2025-12-31&page=2", headers=HTML).text
            assert people_on(back) == ranked[2:4] and "/years/2025/lookback?known_at=2025-12-31&amp;page=3" in back
            assert 'name="known_at" value="2025-12-31"' in back  # the filter form keeps the look-back's times
    finally:
        ledger.close()


def test_a_workbook_is_made_once_for_the_same_figures_and_names_and_again_after_any_change(
        w: World, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The results and 公示 workbooks (seconds for a big year) are kept by the digest of what they
    are made of: the same figures and names give the kept file; a change to either, a new one."""
    import io

    from openpyxl import load_workbook

    from api.pages import admin, views

    views.kept.clear()  # what another test's identical world left
    made: list[str] = []
    real = admin.office_workbook

    def counted(document: dict[str, Any], **kwargs: Any) -> bytes:
        made.append(kwargs["title"])
        return real(document, **kwargs)

    monkeypatch.setattr(admin, "office_workbook", counted)
    sign_in(client, w.tokens["admin"])

    def cells(response: Any) -> list[Any]:
        assert response.status_code == 200
        book = load_workbook(io.BytesIO(response.content))
        return [cell for sheet in book.worksheets for row in sheet.iter_rows(values_only=True) for cell in row]

    first = client.get("/admin/years/2025/results.xlsx", headers=HTML)
    again = client.get("/admin/years/2025/results.xlsx", headers=HTML)
    assert again.content == first.content and len(made) == 1
    # a figure changes: a new file, with the new figure
    w.ledger.submit([{"type": "adjustment.apply", "id": "kept-adjust", "actor": "hr-office",
                      "at": "2025-12-20T09:00:00+08:00", "appraisal": A, "item": "over_quota_hiring",
                      "evidence": "超编进人 1 名"}])
    changed = client.get("/admin/years/2025/results.xlsx", headers=HTML)
    assert len(made) == 2 and cells(changed) != cells(first)
    # a name changes (the figures do not): a new file, with the new name
    w.ledger.submit([{"type": "org.person", "id": "kept-rename", "actor": "admin", "person": "p-A",
                      "name": "王新名", "position": "staff", "department": "d-01"}])
    renamed = client.get("/admin/years/2025/results.xlsx", headers=HTML)
    assert len(made) == 3 and any("王新名" in str(cell) for cell in cells(renamed))
    # a publication's workbook: kept by its own inputs, beside the results'
    w.ledger.submit([{"type": "year.publish", "id": "kept-publish", "actor": "admin-2", "year": 2025}])
    published = client.get("/admin/years/2025/publication.xlsx", headers=HTML)
    assert client.get("/admin/years/2025/publication.xlsx", headers=HTML).content == published.content
    assert len(made) == 4 and "公示" in made[-1]


@pytest.fixture
def folds(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int | None]]:
    """Every fold of a year looked back the server makes: (year, the log position it folds to)."""
    from api.http import read_side

    made: list[tuple[int, int | None]] = []
    real = read_side.year_at

    def counted(ledger: Any, year: int, **kwargs: Any) -> Any:
        made.append((year, kwargs.get("stop")))
        return real(ledger, year, **kwargs)

    monkeypatch.setattr(read_side, "year_at", counted)
    return made


def test_a_look_back_is_folded_once_for_its_pages_and_its_appraisals_and_again_once_the_log_grows(
        w: World, client: TestClient, folds: list[tuple[int, int | None]]) -> None:
    """The year looked back is read a page at a time: its pages, and its appraisals looked back at
    the same times (in the pages and through the API), share one fold of the log (kept by the
    year, the times and the log's last position); a new event makes a new one, with it."""
    sign_in(client, w.tokens["inspector"])
    path = "/years/2025/lookback?known_at=2025-12-31"
    first = client.get(path, headers=HTML)
    assert client.get(path + "&page=2", headers=HTML).status_code == 200
    assert first.status_code == 200 and folds == [(2025, w.ledger.event_count())]
    assert "79.16" in first.text
    # its appraisals at the same times: the same fold, in the pages and through the API
    for key in (A, H1):
        assert client.get(f"/appraisals/{key}?known_at=2025-12-31", headers=HTML).status_code == 200
    explained = client.get(f"/appraisals/{A}/explanation", headers=w.auth("inspector"),
                           params={"known_at": "2025-12-31T23:59:59.999999+08:00"})
    assert explained.status_code == 200 and explained.json()["summary"]["total"] == "79.16"
    assert len(folds) == 1
    assert client.get(f"/appraisals/{A}?known_at=2025-01-01", headers=HTML).status_code == 404  # not open yet
    assert len(folds) == 2
    w.ledger.submit([{"type": "adjustment.apply", "id": "lookback-adjust", "actor": "hr-office",
                      "at": "2025-12-20T09:00:00+08:00", "appraisal": A, "item": "over_quota_hiring",
                      "evidence": "超编进人 1 名"}])
    again = client.get(f"/appraisals/{A}?known_at=2025-12-31", headers=HTML)
    assert folds[2:] == [(2025, w.ledger.event_count())] and folds[2][1] > folds[0][1]  # type: ignore[operator]
    assert again.status_code == 200 and "79.16" not in again.text  # the back-dated deduction is known by then
    assert "79.16" not in client.get(path, headers=HTML).text and len(folds) == 3  # the year: that fold
    other = client.get("/years/2025/lookback?known_at=2025-06-30", headers=HTML)
    assert other.status_code == 200 and len(folds) == 4  # other times: a fold of their own


def test_a_look_back_at_a_past_recording_time_is_kept_while_the_log_grows_one_at_its_end_is_not(
        w: World, client: TestClient, folds: list[tuple[int, int | None]]) -> None:
    """A look-back as of a recording time that the log has gone past (it holds an event recorded
    later) is the log before that event: a command recorded meanwhile changes nothing, so an
    inspector paging through it is not folded again by the office's work. As of a time the log
    has not reached yet, a new event belongs before the cut: folded again, and shown."""
    sign_in(client, w.tokens["inspector"])
    middle = w.ledger.recorder.select_notifications(w.ledger.event_count() // 2, 1)[0]
    past = w.ledger.mapper.to_domain_event(middle).timestamp.isoformat()
    path = "/years/2025/lookback?" + urlencode({"as_of": past})
    first = client.get(path, headers=HTML)
    assert first.status_code == 200 and folds == [(2025, w.ledger.event_count())]
    # kept out of the cyclic collector's passes (`freeze_kept`): a full pass would scan it each time
    kept = next(iter(w.app.state.queries._looked_back.values()))[0]
    assert gc.is_tracked(kept) and not any(o is kept for o in gc.get_objects())

    def adjust(name: str) -> None:
        w.ledger.submit([{"type": "adjustment.apply", "id": name, "actor": "hr-office",
                          "at": "2025-12-20T09:00:00+08:00", "appraisal": A, "item": "over_quota_hiring",
                          "evidence": "超编进人 1 名"}])

    adjust("settled-adjust-1")
    again = client.get(path + "&page=1", headers=HTML)
    assert again.status_code == 200 and len(folds) == 1  # kept: the command came after the cut
    assert people_on(again.text) == people_on(first.text)
    assert client.get(f"/appraisals/{A}?" + urlencode({"as_of": past}), headers=HTML).status_code == 200
    assert len(folds) == 1
    # as of a time the log has not reached: the new event is inside the cut, so it is folded again
    ahead = {"as_of": "2099-01-01T00:00:00+08:00"}

    def total() -> str:
        explained = client.get(f"/appraisals/{A}/explanation", headers=w.auth("inspector"), params=ahead)
        assert explained.status_code == 200
        return str(explained.json()["summary"]["total"])

    assert client.get("/years/2025/lookback?" + urlencode(ahead), headers=HTML).status_code == 200
    before = total()
    assert len(folds) == 2
    adjust("settled-adjust-2")
    assert total() != before and folds[2:] == [(2025, w.ledger.event_count())]


def test_a_look_back_known_at_a_business_time_is_kept_until_a_fact_of_that_time_or_earlier_comes(
        w: World, client: TestClient, folds: list[tuple[int, int | None]]) -> None:
    """As known at a business time, the year folded is kept while the facts recorded meanwhile all
    happened after it (an office recording this month's ledger does not fold an inspector's look
    at June again); a fact back-dated to it, or anything that is not a fact, folds it again."""
    from projections.reading import results_at

    sign_in(client, w.tokens["inspector"])
    known_at = {"known_at": "2025-06-30T23:59:59.999999+08:00"}

    def total() -> str:
        explained = client.get(f"/appraisals/{A}/explanation", headers=w.auth("inspector"), params=known_at)
        assert explained.status_code == 200
        return str(explained.json()["summary"]["total"])

    def occurrence(name: str, at: str) -> None:
        w.ledger.submit([{"type": "occurrence.record", "id": name, "actor": "hr-office", "at": at,
                          "appraisal": A, "item": "absence", "count": 1, "evidence": "考勤记录"}])

    june = total()
    assert client.get("/years/2025/lookback?" + urlencode(known_at), headers=HTML).status_code == 200
    assert len(folds) == 1
    occurrence("known-later", "2025-09-01T09:00:00+08:00")  # after the time looked at
    assert total() == june and len(folds) == 1
    moment = datetime.fromisoformat(known_at["known_at"])  # the kept year is the year folded again:
    assert w.app.state.queries.results_at(2025, None, moment) == results_at(w.ledger, 2025, known_at=moment)
    assert len(folds) == 1
    occurrence("known-then", "2025-06-02T09:00:00+08:00")  # back-dated to before it: counted
    assert total() != june and len(folds) == 2
    w.ledger.submit([{"type": "org.person", "id": "known-rename", "actor": "admin", "person": "p-A",
                      "name": "王新名", "position": "staff", "department": "d-01"}])  # not a fact
    total()
    assert len(folds) == 3
