"""The inspector's jobs (纪检) in the pages, end to end in a browser (Playwright driving Debian's
chromium, as in tests/e2e/test_pages.py), with the refusals for staff:

7. an appraisal's trace that a person can read (rules by name, not wrapped into fragments; values
   as decimals with the exact value on demand);
9. the audit trail with its filters (event type, time range, actor, appraisal, back-dated) and its
   export as CSV, the data column by name;
8. looking back: an appraisal as of a recording time and as known at a business time, and every
   publication of a year as it was published.

Screenshots go to var/screenshots/inspector/ (ignored by git).
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect

from tests.builders.http_world import World, served, world
from tests.builders.pages_kit import HTML, ORIGIN, screenshot, sign_in, signed_in

A = "2025:p-A"
NARROW = {"width": 390, "height": 844}
INTERNAL = ("rule:review_errors", "individual[0]", "node:business", "base:business", "reform_tasks")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[World, str]]:
    with world(f"sqlite:///{tmp_path}/appraisal.db", projection="inline") as made, \
            served(made.app) as base:
        yield made, base


def no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"the page scrolls sideways: {width} px wide"  # type: ignore[index]


# --- 7. the trace ----------------------------------------------------------------------------------

def test_7_the_inspector_reads_a_trace(browser: Browser, site: tuple[World, str]) -> None:
    w, base = site
    page = signed_in(browser, base, w.tokens["inspector"])
    page.goto(f"/appraisals/{A}")
    trace = page.get_by_test_id("trace")
    total = trace.locator("tr[data-figure='total']")
    expect(total.locator("abbr.value")).to_have_text("79.16")
    expect(total.locator("abbr.value")).to_have_attribute("title", re.compile("79.155"))
    exact = total.locator("details.exact")
    expect(exact.get_by_test_id("exact")).not_to_be_visible()
    exact.locator("summary").click()  # the exact value, on demand
    expect(exact.get_by_test_id("exact")).to_have_text("79.155")
    expect(total).to_contain_text("0.5 × 所在部门得分")  # terms by name
    errors = trace.locator("tr[data-figure='rule:review_errors']")
    expect(errors).to_contain_text("超出容错扣分 excess over allowance")
    rule_cell = errors.locator("td").nth(1)
    box = rule_cell.bounding_box()
    assert box is not None and box["width"] >= 150, box  # the rule column is no longer 44 px wide
    name = rule_cell.locator(".rule-name").bounding_box()
    assert name is not None and name["height"] < 3 * 24, name  # a name on a line or two, not in fragments
    refs = errors.locator("a.ref")
    expect(refs).to_have_count(2)
    heights = {round(r["height"]) for r in (refs.nth(i).bounding_box() for i in range(2)) if r}
    assert max(heights) < 30, heights  # an event reference on one line
    table = trace.bounding_box()
    assert table is not None and table["height"] < 4500, table["height"]  # was 7,900 px
    text = trace.inner_text()
    assert not [word for word in INTERNAL if word in text], "an internal id is shown as a word"
    screenshot(page, "inspector/7-trace-inspector.png")

    narrow = signed_in(browser, base, w.tokens["inspector"], NARROW)
    narrow.goto(f"/appraisals/{A}#trace")
    expect(narrow.get_by_test_id("trace").locator("tr[data-figure='total']")).to_contain_text("79.16")
    no_sideways_scroll(narrow)
    screenshot(narrow, "inspector/7-trace-inspector-390.png")


def test_7_staff_get_no_trace_and_no_one_elses_appraisal(browser: Browser, site: tuple[World, str]) -> None:
    w, base = site
    page = signed_in(browser, base, w.tokens["staff"])
    page.goto(f"/appraisals/{A}")
    expect(page.get_by_test_id("total")).to_have_text("79.16")
    assert page.locator("[data-testid=trace]").count() == 0
    response = page.goto("/appraisals/2025:p-H1")
    assert response is not None and response.status == 403
    screenshot(page, "inspector/7-trace-staff-refused.png")


# --- 9. the audit trail ----------------------------------------------------------------------------

def test_9_the_inspector_filters_and_exports_the_audit_trail(browser: Browser, site: tuple[World, str]) -> None:
    w, base = site
    page = signed_in(browser, base, w.tokens["inspector"])
    page.click("header nav a[href='/audit']")
    trail = page.get_by_test_id("audit")
    expect(trail).to_contain_text("记录评分 rating recorded")
    assert "Appraisal.RatingRecorded" not in trail.inner_text()  # event types by name

    page.select_option("#f-type", "Appraisal.RatingRecorded")
    page.fill("#f-appraisal", A)
    page.click("form.filters button[type=submit]")
    rows = trail.locator("tbody tr")
    expect(rows).to_have_count(9)  # the nine ratings of p-A
    first = rows.first
    expect(first).to_contain_text("评分人 rater")  # the data column by name, people by name
    expect(first).to_contain_text("评分 score")
    assert "rater=" not in trail.inner_text() and "leaf=" not in trail.inner_text()
    expect(page.locator("#f-type")).to_have_value("Appraisal.RatingRecorded")
    screenshot(page, "inspector/9-audit-filtered.png")

    # the time range (recording time): everything was recorded today
    today = datetime.now(UTC).date()
    page.fill("#f-since", (today + timedelta(days=2)).isoformat())
    page.click("form.filters button[type=submit]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("没有符合条件的事件")
    page.fill("#f-since", (today - timedelta(days=2)).isoformat())
    page.fill("#f-until", (today + timedelta(days=2)).isoformat())
    page.click("form.filters button[type=submit]")
    expect(rows).to_have_count(9)

    # the export: the same events, in Chinese and English, as CSV for Excel
    with page.expect_download() as waited:
        page.get_by_test_id("export").click()
    download = waited.value
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0][0] == "位置 position" and len(table) == 1 + 9
    shown = [rows.nth(i).get_attribute("data-position") for i in range(9)]
    assert [row[0] for row in table[1:]] == shown
    assert {row[1] for row in table[1:]} == {"记录评分 rating recorded"}

    # back-dated, by actor
    page.goto("/audit?actor=hr-office&backdated=true")
    expect(page.locator("#f-backdated")).to_be_checked()
    assert rows.count() > 0
    for index in range(rows.count()):
        expect(rows.nth(index).get_by_test_id("backdated")).to_be_visible()

    narrow = signed_in(browser, base, w.tokens["inspector"], NARROW)
    narrow.goto(f"/audit?appraisal={A}")
    expect(narrow.get_by_test_id("audit").locator("tbody tr").first).to_be_visible()
    no_sideways_scroll(narrow)
    screenshot(narrow, "inspector/9-audit-390.png")


def test_9_the_audit_trail_works_from_the_keyboard_with_labelled_controls(
        browser: Browser, site: tuple[World, str]) -> None:
    w, base = site
    page = signed_in(browser, base, w.tokens["inspector"])
    page.goto("/audit")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"  # first stop: skip to the content
    for name in ("事件类型", "考核", "操作人", "记录时间自", "记录时间至", "仅补录", "每页条数"):
        expect(page.get_by_label(name, exact=False).first).to_be_visible()
    assert page.locator("main").get_by_role("search").count() == 1
    assert page.locator("table[data-testid=audit] thead th:not([scope=col])").count() == 0
    page.focus("#f-actor")
    page.keyboard.type("p-L1")
    page.keyboard.press("Tab")  # on to the appraisal's recording range, then submit with Enter
    page.keyboard.press("Enter")
    page.wait_for_url("**actor=p-L1**")
    rows = page.get_by_test_id("audit").locator("tbody tr")
    assert rows.count() > 0
    for index in range(rows.count()):
        expect(rows.nth(index)).to_contain_text("p-L1")


def test_9_staff_are_refused_the_audit_trail_and_its_export(browser: Browser, site: tuple[World, str]) -> None:
    w, base = site
    page = signed_in(browser, base, w.tokens["staff"])
    assert page.locator("header nav a[href='/audit']").count() == 0
    for path in ("/audit", "/audit.csv"):
        response = page.goto(path)
        assert response is not None and response.status == 403, path
    expect(page.locator("main")).to_contain_text("无权查看")
    screenshot(page, "inspector/9-audit-staff-refused.png")


# --- 8. looking back -------------------------------------------------------------------------------

def publish_then_revise(w: World) -> str:
    """The year published (79.16 for p-A), then an absence recorded (a revision: 78.66); the
    recording time between the two."""
    w.ledger.submit([{"type": "year.publish", "id": "lb-publish", "actor": "admin-2", "year": 2025}])
    between = datetime.now(UTC).isoformat()
    recent = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0).isoformat()
    w.ledger.submit([{"type": "occurrence.record", "id": "lb-absence", "actor": "hr-office", "at": recent,
                      "appraisal": A, "item": "absence", "count": 1, "evidence": "考勤记录"}])
    return between


def test_8_the_inspector_looks_back_at_the_year_and_an_appraisal(browser: Browser, site: tuple[World, str]) -> None:
    w, base = site
    between = publish_then_revise(w)
    page = signed_in(browser, base, w.tokens["inspector"])
    page.goto("/years/2025")
    page.get_by_test_id("lookback-link").click()
    publications = page.get_by_test_id("publications")
    expect(publications.locator("tbody tr")).to_have_count(2)

    # every publication, readable as published
    publications.locator("tr[data-version='1'] a").click()
    expect(page.get_by_test_id("people").locator("tr[data-person='p-A']")).to_contain_text("79.16")
    expect(page.get_by_test_id("publication-meta")).not_to_contain_text("lb-absence")
    screenshot(page, "inspector/8-publication-1.png")
    page.get_by_test_id("publications").locator("tr[data-version='2'] a").click()
    expect(page.get_by_test_id("people").locator("tr[data-person='p-A']")).to_contain_text("78.66")
    expect(page.get_by_test_id("revision-reason")).to_contain_text("lb-absence")

    # the year as the system showed it between the two (recording time), and as known mid-year
    page.goto("/years/2025/lookback")
    page.fill("#lb-as-of", between)
    page.click("[data-testid=lookback] button[type=submit]")
    expect(page.get_by_test_id("as-of")).to_have_text(between)
    expect(page.get_by_test_id("people").locator("tr[data-person='p-A']")).to_contain_text("79.16")
    page.fill("#lb-as-of", "")
    page.fill("#lb-known-at", "2025-06-30")
    page.click("[data-testid=lookback] button[type=submit]")
    expect(page.get_by_test_id("known-at")).to_have_text("2025-06-30")
    expect(page.get_by_test_id("people").locator("tr[data-person='p-A']")).to_contain_text("63.06")
    screenshot(page, "inspector/8-year-known-at.png")

    # an appraisal, the same way
    page.goto(f"/appraisals/{A}")
    expect(page.get_by_test_id("total")).to_have_text("78.66")
    page.locator("details.lookback summary").click()
    page.fill("#lb-as-of", between)
    page.click("[data-testid=lookback] button[type=submit]")
    expect(page.get_by_test_id("total")).to_have_text("79.16")
    expect(page.get_by_test_id("as-of-banner")).to_contain_text("记录时间")
    page.fill("#lb-as-of", "")
    page.fill("#lb-known-at", "2025-06-30")
    page.click("[data-testid=lookback] button[type=submit]")
    expect(page.get_by_test_id("total")).to_have_text("63.06")
    screenshot(page, "inspector/8-appraisal-known-at.png")

    narrow = signed_in(browser, base, w.tokens["inspector"], NARROW)
    narrow.goto("/years/2025/lookback?known_at=2025-06-30")
    expect(narrow.get_by_test_id("people").locator("tr[data-person='p-A']")).to_contain_text("63.06")
    no_sideways_scroll(narrow)
    screenshot(narrow, "inspector/8-year-known-at-390.png")


def test_8_staff_may_not_look_back_but_read_the_publications(browser: Browser, site: tuple[World, str]) -> None:
    w, base = site
    publish_then_revise(w)
    page = signed_in(browser, base, w.tokens["staff"])
    for path in ("/years/2025/lookback", f"/appraisals/{A}?known_at=2025-06-30", f"/appraisals/{A}?as_of=2025-12-31"):
        response = page.goto(path)
        assert response is not None and response.status == 403, path
    page.goto(f"/appraisals/{A}")
    assert page.locator("[data-testid=lookback]").count() == 0
    response = page.goto("/years/2025/published/1")  # a publication is public
    assert response is not None and response.status == 200
    expect(page.get_by_test_id("people").locator("tr[data-person='p-A']")).to_contain_text("79.16")
    screenshot(page, "inspector/8-staff-publication.png")


# --- 10. integrity ---------------------------------------------------------------------------------

VERIFIER = Path(__file__).resolve().parents[2] / "scripts" / "verify_proof.py"


def take_checkpoint(w: World, folder: Path) -> Path:
    """What the operator does (`appraisal checkpoint`, `appraisal key --out PUBLIC.pem`): a signed
    checkpoint recorded in the store, and the public key handed to the inspector."""
    from api.integrity import verification
    from api.integrity.keys import load_or_create, public_pem
    from api.store.logstore import log_store

    signer = load_or_create(folder / "signing.key")
    verification.make_checkpoint(log_store(w.ledger.recorder), signer, w.ledger.clock)
    public = folder / "PUBLIC.pem"
    public.write_text(public_pem(signer.public))
    return public


def verifier(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(VERIFIER), *map(str, args)], capture_output=True, text=True,
                          timeout=60, check=False)


def test_10_the_inspector_checks_the_log_without_trusting_the_server(
        browser: Browser, site: tuple[World, str], tmp_path: Path) -> None:
    w, base = site
    page = signed_in(browser, base, w.tokens["inspector"])
    page.click("header nav a[href='/integrity']")
    expect(page.get_by_test_id("chain-ok")).to_be_visible()
    expect(page.get_by_test_id("no-checkpoint")).to_be_visible()
    last = w.ledger.event_count()
    expect(page.get_by_test_id("verified-to")).to_have_text(str(last))

    public = take_checkpoint(w, tmp_path)
    page.reload()
    expect(page.get_by_test_id("checkpoint-size")).to_have_text(str(last))
    with page.expect_download() as waited:
        page.get_by_test_id("checkpoint-download").click()
    checkpoint = tmp_path / waited.value.suggested_filename
    waited.value.save_as(checkpoint)
    page.fill("#proof-position", "5")
    with page.expect_download() as waited:
        page.click("[data-testid=proof-form] button[type=submit]")
    proof = tmp_path / waited.value.suggested_filename
    waited.value.save_as(proof)
    assert proof.name == "proof-5.json"
    screenshot(page, "inspector/10-integrity.png")

    checked = verifier("checkpoint", checkpoint, "--public-key", public)
    assert checked.returncode == 0 and checked.stdout.startswith("ok"), checked
    included = verifier("inclusion", proof, "--public-key", public, "--checkpoint", checkpoint, "--show-event")
    assert included.returncode == 0 and "ok" in included.stdout, included
    # a key other than the operator's: the files prove nothing
    from api.integrity.keys import load_or_create, public_pem
    stranger = tmp_path / "STRANGER.pem"
    stranger.write_text(public_pem(load_or_create(tmp_path / "other.key").public))
    assert verifier("checkpoint", checkpoint, "--public-key", stranger).returncode == 1

    # an event altered behind the ledger's back: a view verifies what came after the checkpoint and
    # says so; the whole log verified on demand says where
    with sqlite3.connect(tmp_path / "appraisal.db") as conn:
        state = conn.execute("SELECT state FROM stored_events WHERE rowid = 7").fetchone()[0]
        conn.execute("UPDATE stored_events SET state = ? WHERE rowid = 7", (bytes(state) + b" ",))
    page.reload()
    expect(page.get_by_test_id("verified-how")).to_contain_text(f"位置 1–{last}")
    page.get_by_test_id("verify-whole").locator("button").click()
    expect(page.get_by_test_id("chain-broken")).to_contain_text("7")
    expect(page.get_by_test_id("verified-how")).to_contain_text("整个日志")
    screenshot(page, "inspector/10-integrity-broken.png")

    narrow = signed_in(browser, base, w.tokens["inspector"], NARROW)
    narrow.goto("/integrity")
    expect(narrow.get_by_test_id("checkpoint")).to_be_visible()
    no_sideways_scroll(narrow)
    screenshot(narrow, "inspector/10-integrity-390.png")


def test_10_staff_are_refused_the_integrity_pages(browser: Browser, site: tuple[World, str], tmp_path: Path) -> None:
    w, base = site
    take_checkpoint(w, tmp_path)
    page = signed_in(browser, base, w.tokens["staff"])
    assert page.locator("header nav a[href='/integrity']").count() == 0
    for path in ("/integrity", "/integrity/checkpoint.json", "/integrity/proof.json?position=1"):
        response = page.goto(path)
        assert response is not None and response.status == 403, path
    screenshot(page, "inspector/10-integrity-staff-refused.png")


# --- over HTTP ------------------------------------------------------------------------------------

@pytest.fixture
def w(db_url: str) -> Iterator[World]:
    with world(db_url, projection="inline") as made:
        yield made


@pytest.fixture
def client(w: World) -> Iterator[TestClient]:
    with TestClient(w.app, headers={"Origin": ORIGIN}) as made:
        yield made


def test_the_audit_export_is_what_the_page_shows_and_safe_in_a_spreadsheet(w: World, client: TestClient) -> None:
    w.ledger.submit([{"type": "occurrence.record", "id": "=cmd", "actor": "hr-office",
                      "at": (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0).isoformat(),
                      "appraisal": A, "item": "absence", "count": 1, "evidence": "=HYPERLINK(\"x\")"}])
    sign_in(client, w.tokens["inspector"])
    page = client.get(f"/audit?appraisal={A}&type=Appraisal.OccurrenceRecorded&limit=1000", headers=HTML)
    shown = re.findall(r'<tr data-position="(\d+)">', page.text)
    exported = client.get(f"/audit.csv?appraisal={A}&type=Appraisal.OccurrenceRecorded", headers=HTML)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))[1:]
    assert [r[0] for r in rows] == shown and len(shown) == 4
    assert not [cell for r in rows for cell in r if cell[:1] in "=+-@" and cell], "a cell a spreadsheet would run"
    assert client.get("/audit?type=Nope", headers=HTML).status_code == 422
    assert client.get("/audit?since=yesterday", headers=HTML).status_code == 422


def test_the_audit_pages_by_the_filters_it_applies_itself(w: World, client: TestClient) -> None:
    sign_in(client, w.tokens["inspector"])
    kind = "Appraisal.RatingRecorded"
    everything = client.get(f"/audit?type={kind}&limit=1000", headers=HTML)
    all_shown = re.findall(r'<tr data-position="(\d+)">', everything.text)
    first = client.get(f"/audit?type={kind}&limit=5", headers=HTML)
    page_one = re.findall(r'<tr data-position="(\d+)">', first.text)
    following = re.search(r'href="(/audit\?[^"]*after=\d+[^"]*)" data-testid="next"', first.text)
    assert following is not None
    page_two = re.findall(r'<tr data-position="(\d+)">', client.get(following.group(1).replace("&amp;", "&"),
                                                                         headers=HTML).text)
    assert page_one + page_two == all_shown[:10] and len(all_shown) > 10


@pytest.mark.parametrize(("why", "shown"), [
    ("overturned on appeal ap-1: 当日因公外出", "经申诉撤销 overturned on appeal（ap-1）：当日因公外出"),
    ("replaced by a later measurement", "已被后来的测量值取代 replaced by a later measurement"),
    ("replaced by a later rating of the same rater and period", "已被同一评分人同一期间的后续评分取代"),
    ("rater role superior has no weight in bianban@1", "该评分身份（上级领导 superior）在本方案中没有权重"),
    ("no rating leaf business in bianban@1", "本方案没有该评分指标"),
    ("input review_errors is not read in bianban@1", "本方案不计此项"),
    ("item absence is not read in bianban@1", "本方案不计此项"),
    ("item over_quota_hiring is not in bianban@1's catalogue", "不在本方案的目录中"),
    ("reason corruption is not in bianban@1's catalogue", "不在本方案的目录中"),
])
def test_struck_reasons_are_in_chinese_with_english_beside_and_no_ids(why: str, shown: str) -> None:
    from api.pages.labels import struck_reason

    text = struck_reason(why)
    assert text.startswith(shown)
    assert not [word for word in ("bianban@1", "review_errors", "over_quota_hiring", "corruption") if word in text]
