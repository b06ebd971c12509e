"""The admin's jobs in the pages (api/pages/admin.py), end to end.

In a browser (Playwright driving Debian's chromium, as tests/e2e/test_pages.py): the admin decides
an appeal from the queue (and an admin who recorded the item is refused, the reason on the page);
breaks a tie, publishes the year and is told why finalizing is refused; creates a token for a
person (shown once, it signs in) and revokes it. Members of staff and inspectors get the 403 page.
It loads a JSON Lines file (a refused line shown with its place, what came before kept) and
downloads the template, the results and the 公示 as office workbooks. Each page is also opened 390 px wide: no sideways scrolling of the whole page. Screenshots go to
var/screenshots/admin-*.png.

Over HTTP (TestClient): the refusals for roles that may not, forms from another site, bad input
recording nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect

from api.ledger import AppraisalLedger
from api.server.app import create_app
from tests.builders.http_world import HOLDERS, World, served, settings
from tests.builders.pages_kit import HTML, ORIGIN, SCREENSHOTS, screenshot, sign_in, signed_in
from tests.builders.worked_example import APPEAL, DEDUCTION, build
from tests.builders.years import Years

TIED = {"p-1": "90", "p-2": "90", "p-3": "80", "p-4": "70", "p-5": "60"}  # p-1 and p-2 tie at the top


@contextmanager
def appeal_world(db_url: str) -> Iterator[World]:
    """The worked example with p-H1's appeal of a deduction (recorded by hr-office) still open."""
    ledger = AppraisalLedger(db_url)
    try:
        ledger.submit([*build(), DEDUCTION, APPEAL])
        app = create_app(settings(db_url, projection="inline"), ledger=ledger)
        credentials = app.state.credentials
        yield World(ledger, app, {role: credentials.create(person, grants, created_by="tests")[0]
                                  for role, (person, grants) in HOLDERS.items()})
    finally:
        ledger.close()


def no_sideways_scroll(page: Page, name: str) -> None:
    """The page at 390 px: the whole page never scrolls sideways; a screenshot of it."""
    page.set_viewport_size({"width": 390, "height": 844})
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= 390, f"{page.url} is {wide}px wide at 390px"
    screenshot(page, name)
    page.set_viewport_size({"width": 1280, "height": 900})


def refused_page(page: Page, path: str) -> None:
    response = page.goto(path)
    assert response is not None and response.status == 403
    expect(page.locator("main")).to_contain_text("只供管理员使用")
    assert page.get_by_test_id("admin-link").count() == 0
    assert page.locator("main form[method=post]").count() == 0


# --- the browser ---------------------------------------------------------------------------------

@pytest.fixture
def appealed(tmp_path: Path) -> Iterator[tuple[World, str]]:
    """The worked example with p-H1's appeal of a deduction (recorded by hr-office) still open."""
    with appeal_world(f"sqlite:///{tmp_path}/appraisal.db") as made:
        credentials = made.app.state.credentials
        made.tokens["recording-admin"] = credentials.create("hr-office", ("admin", "recorder"), created_by="tests")[0]
        with served(made.app) as base:
            yield made, base


def test_job2_the_admin_decides_an_appeal_from_the_queue(browser: Browser, appealed: tuple[World, str]) -> None:
    w, base = appealed
    # the admin who recorded the item is refused: separation of duties, the reason on the page
    page = signed_in(browser, base, w.tokens["recording-admin"])
    page.click("[data-testid=admin-link]")
    page.click("a[href='/admin/appeals']")
    card = page.locator("article[data-appeal='we-appeal']")
    expect(card).to_contain_text("该人员系按调剂计划接收")  # the grounds
    expect(card).to_contain_text("逾期未裁决")  # due long ago
    card.locator("input[value=overturned]").check()
    card.locator("textarea[name=reason]").fill("核实为计划内调剂")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        card.locator("button[type=submit]").click()
    assert answer.value.status == 403  # may not: as the API answers it
    card = page.locator("article[data-appeal='we-appeal']")
    expect(card.get_by_test_id("refusal")).to_contain_text("职责分离")
    expect(card.locator("textarea[name=reason]")).to_have_value("核实为计划内调剂")  # what was typed is kept
    assert "independent-decision" not in page.locator("main").inner_text()  # no rule code as words
    screenshot(page, "admin-appeal-refused.png")
    assert w.app.state.queries.appeal("we-appeal")["decision"] is None

    # another admin decides it: the decision is recorded and listed
    page = signed_in(browser, base, w.tokens["admin"])
    page.goto("/admin/appeals")
    no_sideways_scroll(page, "admin-appeals-390.png")
    card = page.locator("article[data-appeal='we-appeal']")
    card.locator("input[value=amended]").check()
    card.locator("input[name=points]").fill("-0.5")
    card.locator("textarea[name=reason]").fill("核实部分属实，减半扣分")
    card.locator("button[type=submit]").click()
    expect(page.get_by_test_id("decided-notice")).to_be_visible()
    expect(page.get_by_test_id("queue-empty")).to_be_visible()
    row = page.locator("[data-testid=decided] tr[data-appeal='we-appeal']")
    expect(row).to_contain_text("变更")
    expect(row).to_contain_text("-0.5")
    screenshot(page, "admin-appeal-decided.png")
    decision = w.app.state.queries.appeal("we-appeal")["decision"]
    assert decision["outcome"] == "amended" and decision["actor"] == "admin-2" and decision["points"] == "-0.5"

    # staff and inspectors: the 403 page, no form
    for role in ("staff", "inspector"):
        refused_page(signed_in(browser, base, w.tokens[role]), "/admin/appeals")


@pytest.fixture
def tied(tmp_path: Path) -> Iterator[tuple[World, str]]:
    db_url = f"sqlite:///{tmp_path}/appraisal.db"
    ledger = AppraisalLedger(db_url)
    try:
        ledger.submit(Years().year(2025, TIED).commands)
        app = create_app(settings(db_url, projection="inline"), ledger=ledger)
        credentials = app.state.credentials
        tokens = {"admin": credentials.create("admin-2", ("admin",), created_by="tests")[0],
                  "staff": credentials.create("p-3", (), created_by="tests")[0],
                  "inspector": credentials.create("p-L2", ("inspector",), created_by="tests")[0]}
        with served(app) as base:
            yield World(ledger, app, tokens), base
    finally:
        ledger.close()


def test_job3_the_admin_breaks_a_tie_publishes_and_sees_why_finalizing_waits(
        browser: Browser, tied: tuple[World, str]) -> None:
    w, base = tied
    page = signed_in(browser, base, w.tokens["admin"])
    page.goto("/admin")
    page.click("a[href='/admin/years/2025']")
    expect(page.get_by_test_id("year-status")).to_contain_text("暂定")
    # publishing with a tie is refused, with the reason
    publish = page.get_by_test_id("publish")
    expect(publish).to_contain_text("公示后，全体人员可以查看")  # what happens, before confirming
    publish.locator("input[name=confirm]").check()
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        publish.locator("button[type=submit]").click()
    assert answer.value.status == 422
    expect(page.get_by_test_id("publish").get_by_test_id("refusal")).to_contain_text("未打破的并列")
    screenshot(page, "admin-year-publish-refused.png")

    # the tie: p-2 first
    tie = page.locator("form.tie")
    expect(tie).to_contain_text("员工p-1")
    tie.locator("select[name=order-0]").select_option("p-2")
    tie.locator("select[name=order-1]").select_option("p-1")
    tie.locator("textarea[name=reason]").fill("p-2 年度内获省级表彰")
    tie.locator("button[type=submit]").click()
    expect(page.get_by_test_id("done")).to_contain_text("并列排序已记录")
    expect(page.locator("form.tie")).to_have_count(0)
    assert w.app.state.queries.results(2025)["unresolved_ties"] == []

    # publish, confirmed
    publish = page.get_by_test_id("publish")
    publish.locator("input[name=confirm]").check()
    publish.locator("button[type=submit]").click()
    expect(page.get_by_test_id("done")).to_contain_text("已公示")
    expect(page.get_by_test_id("year-status")).to_contain_text("已公示")
    assert w.app.state.queries.year(2025).status == "published"

    # finalizing right away: refused, the publicity period named
    final = page.get_by_test_id("finalize")
    expect(final).to_contain_text("定稿后，本年度的结果不可再更改")
    final.locator("input[name=confirm]").check()
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        final.locator("button[type=submit]").click()
    assert answer.value.status == 422
    expect(page.get_by_test_id("finalize").get_by_test_id("refusal")).to_contain_text("公示期尚未结束")
    assert w.app.state.queries.year(2025).status == "published"
    no_sideways_scroll(page, "admin-year-390.png")

    for role in ("staff", "inspector"):
        refused_page(signed_in(browser, base, w.tokens[role]), "/admin/years/2025")


def test_job6_the_admin_downloads_the_results_and_the_publication_as_office_workbooks(
        browser: Browser, tied: tuple[World, str], tmp_path: Path) -> None:
    from openpyxl import load_workbook

    w, base = tied
    w.ledger.submit_one({"type": "year.tie_break", "id": "t-1", "year": 2025, "order": ["p-2", "p-1"],
                         "reason": "省级表彰"}, actor="admin-2")
    w.ledger.submit_one({"type": "year.publish", "id": "t-2", "year": 2025}, actor="admin-2")
    page = signed_in(browser, base, w.tokens["admin"])
    page.goto("/admin/years/2025")
    downloads = page.get_by_test_id("downloads")
    books = {}
    for link, name in (("results.xlsx", "results"), ("publication.xlsx?version=1", "publicity")):
        with page.expect_download() as download:
            downloads.locator(f"a[href='/admin/years/2025/{link}']").click()
        path = tmp_path / f"{name}.xlsx"
        download.value.save_as(path)
        books[name] = load_workbook(path)
    screenshot(page, "admin-downloads.png")
    people = books["publicity"]["个人 people"]
    assert people["A1"].value == "2025年度绩效考核结果公示"
    assert [c.value for c in people[2]][:5] == ["序号 No.", "姓名 Name", "部门 Department", "职务 Position", "总分 Total"]
    names = [row[1] for row in people.iter_rows(min_row=3, values_only=True)]
    assert names[:3] == ["员工p-2", "员工p-1", "员工p-3"]  # the ranking, the tie broken; names, not ids
    assert people.print_title_rows == "$2:$2"
    assert books["results"]["个人 people"]["A1"].value.startswith("2025年度绩效考核结果（已公示")
    assert "部门 departments" in books["results"].sheetnames

    for role in ("staff", "inspector"):
        other = signed_in(browser, base, w.tokens[role])
        response = other.request.get(f"{base}/admin/years/2025/publication.xlsx")
        assert response.status == 403


def test_job5_the_admin_gives_and_takes_back_a_persons_access(
        browser: Browser, appealed: tuple[World, str]) -> None:
    w, base = appealed
    page = signed_in(browser, base, w.tokens["admin"])
    page.goto("/admin/tokens")
    page.fill("#person", "p-L2")
    page.check("input[name=grant-recorder]")
    page.fill("#note", "考勤录入")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.click("form[action='/admin/tokens'] button[type=submit]")
    assert answer.value.status == 201
    token = page.get_by_test_id("new-token").input_value()
    assert token.startswith("al_") and token not in page.url
    screenshot(page, "admin-token-created.png")

    # the token works, once shown it is never shown again
    other = signed_in(browser, base, token)
    expect(other.get_by_test_id("viewer")).to_have_text("p-L2")
    page.goto("/admin/tokens")
    assert token not in page.content()
    row = page.locator(f"[data-testid=tokens] tr[data-prefix='{token[:10]}']")
    expect(row).to_contain_text("记录员")
    no_sideways_scroll(page, "admin-tokens-390.png")

    # revoked: it signs in no more
    row.locator("button[type=submit]").click()
    expect(page.get_by_test_id("revoked")).to_be_visible()
    expect(page.locator(f"[data-testid=tokens] tr[data-prefix='{token[:10]}']")).to_contain_text("已吊销")
    context = browser.new_context(base_url=base)
    fresh = context.new_page()
    fresh.goto("/")
    fresh.fill("#token", token)
    with fresh.expect_response(lambda r: r.request.method == "POST") as answer:
        fresh.click("form[action='/'] button[type=submit]")
    assert answer.value.status == 401

    # a refusal: an inspector grant with another, on the page, what was typed kept
    page.fill("#person", "p-S1")
    page.check("input[name=grant-inspector]")
    page.check("input[name=grant-admin]")
    page.click("form[action='/admin/tokens'] button[type=submit]")
    expect(page.get_by_test_id("refusal")).to_contain_text("an inspector writes nothing")
    expect(page.locator("#person")).to_have_value("p-S1")

    for role in ("staff", "inspector"):
        refused_page(signed_in(browser, base, w.tokens[role]), "/admin/tokens")
    assert SCREENSHOTS.exists()


def test_job1_the_admin_loads_a_ledger_and_a_refused_line_keeps_what_came_before(
        browser: Browser, appealed: tuple[World, str], tmp_path: Path) -> None:
    w, base = appealed
    page = signed_in(browser, base, w.tokens["admin"])
    page.goto("/admin")
    page.click("a[href='/admin/import']")
    with page.expect_download() as download:
        page.click("form[action='/admin/import/template'] button[type=submit]")
    template = tmp_path / "ledger-2025.xlsx"
    download.value.save_as(template)
    assert template.read_bytes()[:2] == b"PK"  # an xlsx

    at = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0).isoformat()
    lines = [{"type": "occurrence.record", "id": "upload-1", "at": at, "appraisal": "2025:p-A", "item": "absence",
              "count": 1, "evidence": "考勤记录"},
             {"type": "measurement.record", "id": "upload-2", "at": at, "appraisal": "2025:p-A",
              "input": "no_such_input", "value": "1"},
             {"type": "occurrence.record", "id": "upload-3", "at": at, "appraisal": "2025:p-A", "item": "absence",
              "count": 1, "evidence": "考勤记录"}]
    upload = tmp_path / "march.jsonl"
    upload.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), "utf-8")
    page.set_input_files("#file", str(upload))
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.click("form#upload button[type=submit]")
    assert answer.value.status == 422
    refused = page.get_by_test_id("import-refused")
    expect(refused).to_contain_text("第2行 line 2")
    expect(refused).to_contain_text("no_such_input")
    expect(page.get_by_test_id("import-kept")).to_contain_text("此前的 1 条已记录")
    expect(page.locator("#upload-progress")).to_have_attribute("value", "100")
    screenshot(page, "admin-import-refused.png")
    commands = {e["command_id"] for e in w.app.state.queries.history("2025:p-A")}
    assert "upload-1" in commands and not {"upload-2", "upload-3"} & commands

    # the template as it came: a workbook, nothing to import
    page.set_input_files("#file", str(template))
    page.click("form#upload button[type=submit]")
    expect(page.get_by_test_id("import-done")).to_contain_text("已导入 0 条")
    no_sideways_scroll(page, "admin-import-390.png")

    for role in ("staff", "inspector"):
        refused_page(signed_in(browser, base, w.tokens[role]), "/admin/import")


# --- over HTTP -------------------------------------------------------------------------------------

@pytest.fixture
def w(db_url: str) -> Iterator[World]:
    with appeal_world(db_url) as made:
        yield made


@pytest.fixture
def client(w: World) -> Iterator[TestClient]:
    with TestClient(w.app, headers={"Origin": ORIGIN}) as made:
        yield made


def decisions(w: World) -> int:
    return sum(1 for e in w.app.state.queries.history("2025:p-H1") if e["type"].endswith("AppealDecided"))


@pytest.mark.parametrize("role", ["staff", "inspector", "recorder", "head"])
def test_only_an_admin_opens_the_admin_pages_or_posts_their_forms(w: World, client: TestClient, role: str) -> None:
    sign_in(client, w.tokens[role])
    for path in ("/admin", "/admin/appeals", "/admin/years/2025", "/admin/tokens", "/admin/import",
                 "/admin/import/template?year=2025", "/admin/years/2025/results.xlsx"):
        page = client.get(path, headers=HTML)
        assert page.status_code == 403 and "只供管理员使用" in page.text, path
    posts = {"/admin/appeals/we-appeal": {"outcome": "overturned", "reason": "r"},
             "/admin/years/2025/publish": {"confirm": "yes"}, "/admin/years/2025/finalize": {"confirm": "yes"},
             "/admin/tokens": {"person": "p-A"}}
    before = w.ledger.event_count(), len(w.app.state.credentials.list())
    for path, form in posts.items():
        assert client.post(path, data=form, headers=HTML).status_code == 403, path
    line = json.dumps({"type": "org.person", "id": "sneak", "person": "p-X", "name": "X", "position": "staff"})
    assert client.post("/admin/import?name=a.jsonl", content=line.encode(), headers=HTML).status_code == 403
    assert (w.ledger.event_count(), len(w.app.state.credentials.list())) == before
    assert decisions(w) == 0


def test_an_admin_form_from_another_site_is_refused_and_records_nothing(w: World, client: TestClient) -> None:
    sign_in(client, w.tokens["admin"])
    answer = client.post("/admin/appeals/we-appeal", data={"outcome": "overturned", "reason": "r"},
                         headers={**HTML, "Origin": "https://evil.example"})
    assert answer.status_code == 403 and "表单来自其他网站" in answer.text
    assert client.post("/admin/tokens", data={"person": "p-A"},
                       headers={**HTML, "Origin": "https://evil.example"}).status_code == 403
    before = w.ledger.event_count()
    line = json.dumps({"type": "org.person", "id": "sneak", "person": "p-X", "name": "X", "position": "staff"})
    assert client.post("/admin/import?name=a.jsonl", content=line.encode(),
                       headers={**HTML, "Origin": "https://evil.example"}).status_code == 403
    assert decisions(w) == 0 and w.ledger.event_count() == before


def test_a_refused_decision_shows_why_and_records_nothing(w: World, client: TestClient) -> None:
    sign_in(client, w.tokens["admin"])
    harsher = client.post("/admin/appeals/we-appeal", data={"outcome": "amended", "points": "-100", "reason": "r"},
                          headers=HTML)
    assert harsher.status_code == 422 and "不能加重原处理" in harsher.text and "never-harsher" not in harsher.text
    no_reason = client.post("/admin/appeals/we-appeal", data={"outcome": "upheld", "reason": " "}, headers=HTML)
    assert no_reason.status_code == 422 and "请填写裁决理由" in no_reason.text
    unconfirmed = client.post("/admin/years/2025/publish", data={"id": "p-1"}, headers=HTML)
    assert unconfirmed.status_code == 422 and "请勾选确认框" in unconfirmed.text
    assert decisions(w) == 0 and w.app.state.queries.year(2025).status == "provisional"
    upheld = client.post("/admin/appeals/we-appeal", data={"outcome": "upheld", "reason": "扣分有据"},
                         headers=HTML, follow_redirects=False)
    assert upheld.status_code == 303 and upheld.headers["location"].startswith("/admin/appeals?decided=we-appeal")
    assert decisions(w) == 1
    again = client.post("/admin/appeals/we-appeal", data={"outcome": "overturned", "reason": "r"}, headers=HTML)
    assert again.status_code == 409 or "该申诉已经裁决过" in again.text
    assert decisions(w) == 1


def test_an_appeal_loaded_by_upload_is_decided_from_the_queue(db_url: str) -> None:
    """A batch (an upload) leaves the server's cached appraisal behind the log; the decision that
    follows is decided on the log, not refused with a 500 (it was: KeyError in `decide_appeal`)."""
    ledger = AppraisalLedger(db_url)
    try:
        ledger.submit(build())
        app = create_app(settings(db_url, projection="inline"), ledger=ledger)
        with TestClient(app, headers={"Origin": ORIGIN}) as client:
            sign_in(client, app.state.credentials.create("admin-2", ("admin",), created_by="tests")[0])
            lines = "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in (DEDUCTION, APPEAL))
            loaded = client.post("/admin/import?name=appeal.jsonl", content=lines.encode("utf-8"), headers=HTML)
            assert loaded.status_code == 200 and "已导入 2 条" in loaded.text, re.sub(r"<[^>]+>", " ", loaded.text)[-1500:]
            decided = client.post("/admin/appeals/we-appeal", data={"outcome": "upheld", "reason": "扣分有据"},
                                  headers=HTML, follow_redirects=False)
            assert decided.status_code == 303, decided.text
            assert app.state.queries.appeal("we-appeal")["decision"]["outcome"] == "upheld"
    finally:
        ledger.close()


def test_the_admin_pages_are_accessible_and_load_nothing_from_elsewhere(w: World, client: TestClient) -> None:
    sign_in(client, w.tokens["admin"])
    for path in ("/admin", "/admin/appeals", "/admin/years/2025", "/admin/tokens", "/admin/import"):
        page = client.get(path, headers=HTML)
        assert page.status_code == 200
        assert "<main " in page.text and "<nav" in page.text
        assert not re.search(r"""(src|href)=["']https?://""", page.text), path
        assert all(src.startswith("/assets/") for src in re.findall(r'<script[^>]*src="([^"]+)"', page.text))
        assert not re.search(r"<script(?![^>]*\bsrc=)", page.text), path  # no inline script
        for head in re.findall(r"<th\b[^>]*>", page.text):
            assert "scope=" in head, (path, head)
        ids = set(re.findall(r'\bid="([^"]+)"', page.text))
        for control in re.findall(r"<(?:input|textarea|select)\b[^>]*>", page.text):
            if 'type="hidden"' in control or 'type="radio"' in control or 'type="checkbox"' in control:
                continue
            found = re.search(r'\bid="([^"]+)"', control)
            assert found and f'for="{found.group(1)}"' in page.text and found.group(1) in ids, (path, control)
