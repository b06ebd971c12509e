"""The admin's rule changes in the pages (api/pages/rules.py, issue 17 job 4), end to end.

In a browser (Playwright driving Debian's chromium): the admin lists the scheme versions, reads a
version's document, compares v1 with v2 (tests/builders/corrected_scheme.py), replays the year under v2
(who moves, by how much, which leaves and rules), adopts v2 with a reason and sees the year bound
to it; publishes v3 (refused first, without a reason, the reason on the page). Members of staff and
inspectors get the 403 page. Screenshots go to var/screenshots/admin-rules-*.png.

Over HTTP (TestClient, both stores): the refusals for roles that may not, refused adoptions and
publications recording nothing, and a year of 120 people replayed a page at a time, folded once.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect

from api.ledger import AppraisalLedger
from api.pages import rules
from api.server.app import create_app
from tests.builders.corrected_scheme import ALL_FOUR, REASON, corrected, publish
from tests.builders.http_world import HOLDERS, World, served, settings
from tests.builders.pages_kit import HTML, ORIGIN, screenshot, sign_in, signed_in
from tests.builders.worked_example import build
from tests.builders.years import Years

RAW_IDS = ("implementation_shortfall", "reform_tasks", "function_implementation_rate", "absences",
           "adopt-change", "scheme-immutable", "points_each")


@contextmanager
def corrected_world(db_url: str, commands: list[dict[str, Any]] | None = None,
                    roles: tuple[str, ...] = tuple(HOLDERS)) -> Iterator[World]:
    """The worked example under bianban@1 with bianban@2 (all four corrections) published (or
    `commands`), and a token for each of `roles`."""
    ledger = AppraisalLedger(db_url)
    try:
        ledger.submit(commands if commands is not None else [*build(), publish(corrected(*ALL_FOUR))])
        app = create_app(settings(db_url, projection="inline"), ledger=ledger)
        credentials = app.state.credentials
        yield World(ledger, app, {role: credentials.create(*HOLDERS[role], created_by="tests")[0] for role in roles})
    finally:
        ledger.close()


def visible(page: Page) -> str:
    return page.locator("main").inner_text()


def no_sideways_scroll(page: Page, name: str) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= 390, f"{page.url} is {wide}px wide at 390px"
    screenshot(page, name)
    page.set_viewport_size({"width": 1280, "height": 900})


# --- the browser ---------------------------------------------------------------------------------

@pytest.fixture
def served_world(tmp_path: Path) -> Iterator[tuple[World, str]]:
    with corrected_world(f"sqlite:///{tmp_path}/appraisal.db") as made, served(made.app) as base:
        yield made, base


def test_job4_the_admin_reads_compares_replays_and_adopts_a_corrected_scheme(
        browser: Browser, served_world: tuple[World, str]) -> None:
    w, base = served_world
    page = signed_in(browser, base, w.tokens["admin"])
    page.click("[data-testid=admin-link]")
    page.click("a[href='/admin/schemes']")

    # the versions: v2 supersedes v1, with its reason; 2025 is bound to v1
    versions = page.get_by_test_id("versions")
    expect(versions.locator("tr[data-ref='bianban@2']")).to_contain_text(REASON)
    expect(versions.locator("tr[data-ref='bianban@2']")).to_contain_text("bianban@1")
    expect(versions.locator("tr[data-ref='bianban@1']")).to_contain_text("在用")
    expect(page.get_by_test_id("binding-2025")).to_have_text("bianban@1")
    screenshot(page, "admin-rules-versions.png")

    # a version's document, readable: weights, rules by name with their inputs
    versions.locator("tr[data-ref='bianban@2'] a[href='/admin/schemes/bianban/2']").first.click()
    expect(page.get_by_test_id("composition")).to_contain_text("0.6")
    discipline = page.locator("tr[data-node='discipline']")
    expect(discipline).to_contain_text("纪律作风 discipline and conduct")
    expect(discipline).to_contain_text("按次计分 per occurrence")
    expect(discipline).to_contain_text("缺勤 absence")
    expect(discipline).to_contain_text("-2")
    assert not any(raw in visible(page) for raw in RAW_IDS), visible(page)
    page.get_by_test_id("document-json").locator("summary").click()
    expect(page.get_by_test_id("document-json")).to_contain_text('"supersedes": 1')
    screenshot(page, "admin-rules-document.png")
    no_sideways_scroll(page, "admin-rules-document-390.png")

    # the diff of v1 and v2, chosen in the form
    page.goto("/admin/schemes")
    form = page.get_by_test_id("diff-form")
    form.locator("select[name=old]").select_option("bianban@1")
    form.locator("select[name=new]").select_option("bianban@2")
    form.locator("button[type=submit]").click()
    expect(page.get_by_test_id("diff-count")).to_contain_text("9")
    department = page.get_by_test_id("diff-department")
    expect(department).to_contain_text("职责履行 duty performance · 未达标扣分 shortfall（职能落实率")
    expect(department).to_contain_text("95")
    expect(department).to_contain_text("90")
    expect(page.get_by_test_id("diff-individual")).to_contain_text("缺勤 absence")
    assert not any(raw in visible(page) for raw in RAW_IDS), visible(page)
    screenshot(page, "admin-rules-diff.png")
    no_sideways_scroll(page, "admin-rules-diff-390.png")

    # the replay of 2025 under v2: who moves, by how much, which leaves and rules
    page.click("[data-testid=replay-links] a[href='/admin/years/2025/replay?scheme=bianban@2']")
    expect(page.get_by_test_id("count-people")).to_have_text("2", timeout=120_000)  # a busy machine: "replaying" first
    expect(page.get_by_test_id("count-total")).to_have_text("2")
    expect(page.get_by_test_id("count-rank")).to_have_text("0")
    expect(page.get_by_test_id("moves-down").locator("tr[data-person='p-A']")).to_contain_text("-2.46")
    row = page.get_by_test_id("replay-people").locator("tr[data-person='p-A']")
    expect(row).to_contain_text("79.16 → 76.70")
    expect(row).to_contain_text("纪律作风 discipline and conduct：18.00 → 16.00")  # a leaf
    expect(row).to_contain_text("按次计分 per occurrence（缺勤 absence）：-2.00 → -4.00")  # a rule, its parameter
    expect(row).to_contain_text("每次分值 points each -1 → -2")
    expect(row).to_contain_text("自评占比 self share 0.3 → 0.2")
    expect(page.get_by_test_id("replay-departments")).to_contain_text("87.05 → 90.05")
    assert not any(raw in visible(page) for raw in RAW_IDS), visible(page)
    screenshot(page, "admin-rules-replay.png")
    no_sideways_scroll(page, "admin-rules-replay-390.png")
    assert w.app.state.queries.results(2025)["scheme"] == {"id": "bianban", "version": 1}  # nothing recorded

    # adoption, with a reason and a confirmation that says what happens
    adopt = page.get_by_test_id("adopt")
    expect(adopt).to_contain_text("采用后，本年度改按 bianban@2 计分")
    adopt.locator("textarea[name=reason]").fill("按考核办公室会议纪要采用修订方案")
    adopt.locator("input[name=confirm]").check()
    adopt.locator("button[type=submit]").click()
    expect(page.get_by_test_id("adopted")).to_be_visible()
    expect(page.get_by_test_id("binding-2025")).to_have_text("bianban@2")
    expect(page.get_by_test_id("bindings").locator("tr[data-year='2025']")).to_contain_text(
        "bianban@1 → bianban@2")
    expect(page.get_by_test_id("bindings").locator("tr[data-year='2025']")).to_contain_text("按考核办公室会议纪要采用修订方案")
    screenshot(page, "admin-rules-adopted.png")
    results = w.app.state.queries.results(2025)
    assert results["scheme"] == {"id": "bianban", "version": 2}
    [switch] = results["adoptions"]
    assert (switch["actor"], switch["reason"]) == ("admin-2", "按考核办公室会议纪要采用修订方案")
    assert {p["id"]: p["total"] for p in results["people"]} == {"p-A": "76.70", "p-H1": "91.49"}
    page.goto("/years/2025")
    expect(page.locator("main")).to_contain_text("第2版 version 2")  # the year now shows the adopted binding, by name

    # the replay under the version in use: nothing to adopt
    page.goto("/admin/years/2025/replay?scheme=bianban@2")
    expect(page.get_by_test_id("adopt")).to_contain_text("本年度已在使用 bianban@2", timeout=120_000)
    assert page.get_by_test_id("adopt").locator("form").count() == 0

    for role in ("staff", "inspector"):
        other = signed_in(browser, base, w.tokens[role])
        for path in ("/admin/schemes", "/admin/schemes/bianban/2", "/admin/schemes/diff?old=bianban@1&new=bianban@2",
                     "/admin/years/2025/replay?scheme=bianban@1"):
            response = other.goto(path)
            assert response is not None and response.status == 403, (role, path)
            expect(other.locator("main")).to_contain_text("只供管理员使用")
            assert other.locator("main form[method=post]").count() == 0


def test_job4_the_admin_publishes_a_new_version_with_its_reason(
        browser: Browser, served_world: tuple[World, str]) -> None:
    w, base = served_world
    page = signed_in(browser, base, w.tokens["admin"])
    page.goto("/admin/schemes")
    form = page.get_by_test_id("publish-scheme")
    draft = json.loads(form.locator("textarea[name=document]").input_value())
    assert (draft["version"], draft["supersedes"]) == (3, 2)  # drafted from the latest version

    # without a reason: refused on the page, in Chinese, what was typed kept
    form.locator("input[name=confirm]").check()
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        form.locator("button[type=submit]").click()
    assert answer.value.status == 422
    refusal = page.get_by_test_id("publish-scheme").get_by_test_id("refusal")
    expect(refusal).to_contain_text("请填写修订理由")
    expect(refusal).to_contain_text("must say why")
    assert "scheme-reason" not in visible(page)
    screenshot(page, "admin-rules-publish-refused.png")

    # edited (complaints cost 3 points instead of 5), with its reason: published, shown as a diff
    draft["department"][2]["rules"][0]["points_each"] = "-3"
    form = page.get_by_test_id("publish-scheme")
    form.locator("textarea[name=document]").fill(json.dumps(draft, ensure_ascii=False, indent=1))
    form.locator("textarea[name=reason]").fill("投诉扣分过重，调整为每次3分")
    form.locator("input[name=confirm]").check()
    form.locator("button[type=submit]").click()
    expect(page.get_by_test_id("published")).to_contain_text("bianban@3")
    expect(page.get_by_test_id("reason")).to_have_text("投诉扣分过重，调整为每次3分")
    expect(page.get_by_test_id("diff-department")).to_contain_text("跨部门协作有效投诉")
    expect(page.get_by_test_id("diff-count")).to_contain_text("3")  # supersedes, reason, the points
    screenshot(page, "admin-rules-published.png")
    scheme = w.ledger.scheme("bianban", 3)
    assert (scheme.supersedes, scheme.reason) == (2, "投诉扣分过重，调整为每次3分")
    assert w.app.state.queries.results(2025)["scheme"]["version"] == 1  # publishing changes no year
    page.goto("/admin/schemes")
    no_sideways_scroll(page, "admin-rules-390.png")


# --- over HTTP -------------------------------------------------------------------------------------

@pytest.fixture
def w(db_url: str) -> Iterator[World]:
    with corrected_world(db_url) as made:
        yield made


@pytest.fixture
def client(w: World) -> Iterator[TestClient]:
    with TestClient(w.app, headers={"Origin": ORIGIN}) as made:
        yield made


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def replayed(client: TestClient, path: str) -> Any:
    """A replay page once its report is there (a busy machine may answer "replaying" first)."""
    deadline = time.monotonic() + 120
    while True:
        answer = client.get(path, headers=HTML)
        if answer.status_code != 202 or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


@pytest.mark.parametrize("role", ["staff", "inspector", "recorder"])
def test_only_an_admin_opens_the_rule_pages_or_adopts_or_publishes(w: World, client: TestClient, role: str) -> None:
    sign_in(client, w.tokens[role])
    for path in ("/admin/schemes", "/admin/schemes/bianban/1", "/admin/schemes/bianban/1/document.json",
                 "/admin/schemes/diff?old=bianban@1&new=bianban@2", "/admin/years/2025/replay?scheme=bianban@2"):
        page = client.get(path, headers=HTML)
        assert page.status_code == 403 and "只供管理员使用" in page.text, path
    before = w.ledger.event_count()
    adopted = client.post("/admin/years/2025/adopt", data={"scheme": "bianban@2", "reason": "r", "confirm": "yes"},
                          headers=HTML)
    assert adopted.status_code == 403 and "只供管理员使用" in adopted.text
    document = corrected(*ALL_FOUR, version=3)
    document["supersedes"] = 2
    published = client.post("/admin/schemes", data={"document": json.dumps(document), "reason": "r",
                                                     "confirm": "yes"}, headers=HTML)
    assert published.status_code == 403
    assert w.ledger.event_count() == before
    assert w.app.state.queries.results(2025)["scheme"]["version"] == 1


def test_refused_adoptions_say_why_and_record_nothing(w: World, client: TestClient) -> None:
    sign_in(client, w.tokens["admin"])
    before = w.ledger.event_count()
    assert replayed(client, "/admin/years/2025/replay?scheme=bianban@2").status_code == 200
    no_reason = client.post("/admin/years/2025/adopt", data={"scheme": "bianban@2", "reason": " ", "confirm": "yes"},
                            headers=HTML)
    assert no_reason.status_code == 422 and "请填写采用理由" in no_reason.text
    assert "79.16" in no_reason.text  # the replay is still there, beside the refusal
    unconfirmed = client.post("/admin/years/2025/adopt", data={"scheme": "bianban@2", "reason": "r"}, headers=HTML)
    assert unconfirmed.status_code == 422 and "请勾选确认框" in unconfirmed.text
    in_use = client.post("/admin/years/2025/adopt", data={"scheme": "bianban@1", "reason": "r", "confirm": "yes"},
                         headers=HTML)
    assert in_use.status_code == 409 and "已经采用该方案版本" in text_of(in_use.text)
    assert "adopt-change" not in text_of(in_use.text)
    unknown = client.post("/admin/years/2025/adopt", data={"scheme": "bianban@9", "reason": "r", "confirm": "yes"},
                          headers=HTML)
    assert unknown.status_code == 404 and "该方案版本尚未发布" in unknown.text
    elsewhere = client.post("/admin/years/2025/adopt", data={"scheme": "bianban@2", "reason": "r", "confirm": "yes"},
                            headers={**HTML, "Origin": "https://evil.example"})
    assert elsewhere.status_code == 403 and "表单来自其他网站" in elsewhere.text
    assert w.ledger.event_count() == before
    assert w.app.state.queries.results(2025)["scheme"]["version"] == 1

    adopted = client.post("/admin/years/2025/adopt", data={"scheme": "bianban@2", "reason": "采用", "confirm": "yes"},
                          headers=HTML, follow_redirects=False)
    assert adopted.status_code == 303 and adopted.headers["location"].startswith("/admin/schemes?adopted=2025")
    assert w.app.state.queries.results(2025)["scheme"]["version"] == 2


def test_refused_publications_say_why_and_record_nothing(w: World, client: TestClient) -> None:
    sign_in(client, w.tokens["admin"])
    before = w.ledger.event_count()
    not_json = client.post("/admin/schemes", data={"document": "{version: 3", "reason": "r", "confirm": "yes"},
                           headers=HTML)
    assert not_json.status_code == 422 and "不是有效的 JSON" in not_json.text
    assert "{version: 3" in not_json.text  # what was typed is kept
    other_v2 = corrected(*ALL_FOUR, version=2, reason="另一版")
    other_v2["composition"]["staff"] = {"department": "0.3", "individual": "0.7"}
    changed = client.post("/admin/schemes", data={"document": json.dumps(other_v2), "reason": "r", "confirm": "yes"},
                          headers=HTML)
    assert changed.status_code == 409 and "已发布的版本不可修改" in changed.text
    unconfirmed = client.post("/admin/schemes", data={"document": json.dumps(corrected(version=3)), "reason": "r"},
                              headers=HTML)
    assert unconfirmed.status_code == 422 and "请勾选确认框" in unconfirmed.text
    broken = corrected(version=3)
    broken["supersedes"] = 2
    broken["composition"]["staff"] = {"department": "0.5", "individual": "0.6"}
    invalid = client.post("/admin/schemes", data={"document": json.dumps(broken), "reason": "r", "confirm": "yes"},
                          headers=HTML)
    assert invalid.status_code == 422 and "方案文件不符合要求" in invalid.text
    assert "document.composition" in invalid.text  # where in the document
    assert w.ledger.event_count() == before


def test_the_rule_pages_are_accessible_and_load_nothing_from_elsewhere(w: World, client: TestClient) -> None:
    sign_in(client, w.tokens["admin"])
    for path in ("/admin/schemes", "/admin/schemes/bianban/2", "/admin/schemes/diff?old=bianban@1&new=bianban@2",
                 "/admin/years/2025/replay?scheme=bianban@2"):
        page = replayed(client, path)
        assert page.status_code == 200, path
        assert "<main " in page.text and "<nav" in page.text
        assert not re.search(r"""(src|href)=["']https?://""", page.text), path
        assert "<script" not in page.text, path
        for head in re.findall(r"<th\b[^>]*>", page.text):
            assert "scope=" in head, (path, head)
        ids = set(re.findall(r'\bid="([^"]+)"', page.text))
        for control in re.findall(r"<(?:input|textarea|select)\b[^>]*>", page.text):
            if 'type="hidden"' in control or 'type="checkbox"' in control:
                continue
            found = re.search(r'\bid="([^"]+)"', control)
            assert found and f'for="{found.group(1)}"' in page.text and found.group(1) in ids, (path, control)
    document = client.get("/admin/schemes/bianban/2/document.json")
    assert document.status_code == 200 and json.loads(document.text)["reason"] == REASON


def people_of(html: str) -> list[str]:
    return re.findall(r'<tr data-person="(p-\d+)">', html.split('data-testid="replay-people"')[1])


class Many(Years):
    PEOPLE = tuple(f"p-{i:03d}" for i in range(1, 121))


def test_a_large_year_is_replayed_once_and_shown_a_page_at_a_time(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """120 people: the summary counts everyone; the people come 50 at a time; paging and filtering
    reuse the report of that log position; a new event makes a new one."""
    scores = {p: str(60 + i % 40) for i, p in enumerate(Many.PEOPLE)}
    commands = [*Many().year(2025, scores).commands, publish(corrected(*ALL_FOUR), at="2025-12-01T09:00:00+08:00")]
    folds = []
    real = rules.replay
    monkeypatch.setattr(rules, "replay", lambda *a, **k: folds.append(a[1:]) or real(*a, **k))
    monkeypatch.setattr(rules, "reports", rules.Reports())
    with corrected_world(db_url, commands, roles=("admin",)) as world, TestClient(world.app, headers={"Origin": ORIGIN}) as client:
        sign_in(client, world.tokens["admin"])
        first = replayed(client, "/admin/years/2025/replay?scheme=bianban@2")
        assert first.status_code == 200
        summary = text_of(first.text)
        assert re.search(r"人员 People 120 ", summary) and re.search(r"总分变化 Total moved 120 ", summary)
        assert len(people_of(first.text)) == 50  # a page
        assert first.text.split('data-testid="replay-people"')[0].count('<tr data-person="') in (5, 10)  # largest moves
        assert "第 1 / 3 页" in summary
        last = client.get("/admin/years/2025/replay?scheme=bianban@2&order=name&page=3", headers=HTML)
        assert people_of(last.text) == [f"p-{i:03d}" for i in range(101, 121)]
        beyond = client.get("/admin/years/2025/replay?scheme=bianban@2&page=99", headers=HTML)
        assert "第 3 / 3 页" in text_of(beyond.text)
        assert folds == [(2025, ("bianban", 2))]  # three pages, one replay

        world.ledger.submit_one({"type": "occurrence.record", "id": "late-absence", "at": "2025-06-01T09:00:00+08:00",
                                 "appraisal": "2025:p-001", "item": "absence"}, actor="hr-office")
        again = replayed(client, "/admin/years/2025/replay?scheme=bianban@2")
        assert again.status_code == 200 and len(folds) == 2  # a new log position: replayed again


def test_a_replay_that_takes_long_says_so_and_the_page_comes_back_for_it(
        w: World, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """A large year's replay takes seconds: the page answers at once that it is replaying (and
    reloads itself), and shows the report when it is done; a failed replay is tried again."""
    release = threading.Event()
    real = rules.replay

    def slow(*args: Any, **kwargs: Any) -> dict[str, Any]:
        assert release.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(rules, "replay", slow)
    monkeypatch.setattr(rules, "reports", rules.Reports(wait=0.05))
    sign_in(client, w.tokens["admin"])
    path = "/admin/years/2025/replay?scheme=bianban@2&order=name"
    waiting = client.get(path, headers=HTML)
    assert waiting.status_code == 202 and 'data-testid="replaying"' in waiting.text
    assert f'http-equiv="refresh" content="2;url={path.replace("&", "&amp;")}"' in waiting.text
    assert "重算中" in waiting.text
    release.set()
    done = replayed(client, path)
    assert done.status_code == 200 and "79.16" in done.text

    def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("a replay that failed")

    monkeypatch.setattr(rules, "replay", broken)
    monkeypatch.setattr(rules, "reports", rules.Reports(wait=5))
    assert client.get(path, headers=HTML).status_code == 500
    monkeypatch.setattr(rules, "replay", real)
    assert replayed(client, path).status_code == 200  # not kept as failed: tried again
