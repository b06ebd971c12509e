"""The 公示 as an office posts it (issue 17, job 14), end to end: in a browser (Playwright driving
Debian's chromium) a member of staff reads the published notice — its title, issuing body, dates,
the ranked list, the 加分/扣分明细 and a revision after an appeal with its reason in words — and
downloads its PDF; over HTTP (both stores) the PDF is a real PDF with the title in its text, the
list is paged, and before publication a member of staff gets the refusal page, not the notice.

Screenshots go to var/screenshots/notice/ (ignored by git).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect

from api.pages import notice
from tests.builders.http_world import World, served, world
from tests.builders.pages_kit import HTML, ORIGIN, screenshot, sign_in, signed_in

A = "2025:p-A"
TITLE = "关于2025年度考核结果的公示"
NARROW = {"width": 390, "height": 844}
BODY = "某市机构编制委员会办公室"
CONTACT = "某市编办机关纪委，电话 0000-12345678"
DECISION = "已补交请假单，按规定不计为缺勤"


def publish_then_appeal(w: World) -> None:
    """The year published; then an absence recorded (a first revision), appealed by p-A and
    overturned by another admin (a second revision, the decision's reason its reason)."""
    w.ledger.submit([{"type": "year.publish", "id": "n-publish", "actor": "admin-2", "year": 2025}])
    recent = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0).isoformat()
    w.ledger.submit([{"type": "occurrence.record", "id": "n-absence", "actor": "hr-office", "at": recent,
                      "appraisal": A, "item": "absence", "count": 1, "evidence": "考勤记录：未打卡"}])
    w.ledger.submit([{"type": "appeal.file", "id": "n-appeal", "actor": "p-A", "appraisal": A,
                      "target": "n-absence", "grounds": "当日已请假"}])
    w.ledger.submit([{"type": "appeal.decide", "id": "n-decide", "actor": "admin-2", "appeal": "n-appeal",
                      "outcome": "overturned", "reason": DECISION}])


def no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"the page scrolls sideways: {width} px wide"  # type: ignore[index]


# --- in the browser ---------------------------------------------------------------------------------

@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[World, str]]:
    with world(f"sqlite:///{tmp_path}/appraisal.db", projection="inline", issuing_body=BODY,
               objection_contact=CONTACT) as made, served(made.app) as base:
        yield made, base


def test_14_staff_read_the_published_notice_and_its_revision(browser: Browser, site: tuple[World, str]) -> None:
    w, base = site
    publish_then_appeal(w)
    publications = w.app.state.queries.publications(2025)
    assert [p["version"] for p in publications] == [1, 2, 3]
    page = signed_in(browser, base, w.tokens["staff"])
    page.goto("/years/2025")  # the year's page links to its notice
    page.get_by_test_id("notice-link").click()
    page.wait_for_url("**/years/2025/notice")

    expect(page.get_by_test_id("notice-title")).to_have_text(TITLE)
    expect(page).to_have_title(re.compile(TITLE))
    expect(page.get_by_test_id("issuing-body")).to_have_text(BODY)
    expect(page.get_by_test_id("objection-contact")).to_have_text(CONTACT)
    first = datetime.fromisoformat(publications[0]["at"])
    expect(page.get_by_test_id("published-on")).to_contain_text(f"{first.year}年{first.month}月{first.day}日")
    ends = page.get_by_test_id("publicity-ends")
    expect(ends).to_contain_text("5个工作日")  # the scheme's publicity_working_days
    expect(ends.locator("time")).to_have_attribute("datetime", re.compile(r"^\d{4}-\d{2}-\d{2}$"))
    expect(page.get_by_test_id("notice-sign")).to_contain_text(BODY)

    # the ranked list: rank, tier, grade, consequences, from the latest publication
    people = page.get_by_test_id("notice-people")
    published = w.app.state.queries.publication(2025, 3)["document"]["people"]
    expect(people.locator("tbody tr")).to_have_count(len(published))
    best = min((p for p in published if p["rank"] is not None), key=lambda p: p["rank"])
    top = people.locator("tbody tr").first
    expect(top).to_have_attribute("data-person", best["id"])
    expect(top).to_contain_text(best["total"])
    expect(top).to_contain_text(best["grade"])
    row_a = people.locator("tr[data-person='p-A']")
    expect(row_a).to_contain_text("79.16")  # the absence overturned: as first published

    # 加分/扣分明细: office-wide, with dates; the overturned absence struck, its reason in words
    items = page.get_by_test_id("notice-items")
    expect(items).to_contain_text("缺勤")
    expect(items.locator("tr.struck")).to_contain_text(DECISION)
    expect(items.locator("td[data-label^='日期']").first).to_contain_text(re.compile(r"\d{4}-\d{2}-\d{2}"))

    # the revision: marked as revised, the reason in words, not a command id or a rule code
    expect(page.get_by_test_id("revised-mark")).to_be_visible()
    reason = page.get_by_test_id("revision-reason")
    expect(reason).to_contain_text(DECISION)
    expect(reason).to_contain_text("撤销")
    text = page.locator("main").inner_text()
    for internal in ("n-decide", "n-appeal", "n-absence", "changed by command", "publication-known"):
        assert internal not in text, internal
    expect(page.get_by_test_id("revision-moved").locator("tr[data-person='p-A']")).to_contain_text("78.66 → 79.16")
    expect(row_a.locator(".badge.revised")).to_be_visible()
    screenshot(page, "notice/14-notice-revised.png")

    # the first revision: the absence, in words
    page.get_by_test_id("notice-versions").locator("a", has_text="第2次公示").click()
    expect(page.get_by_test_id("revision-reason")).to_contain_text("缺勤")
    expect(page.get_by_test_id("revision-reason")).to_contain_text("考勤记录：未打卡")
    expect(people.locator("tr[data-person='p-A']")).to_contain_text("78.66")
    # the first publication: not revised
    page.get_by_test_id("notice-versions").locator("a", has_text="第1次公示").click()
    expect(page.get_by_test_id("notice-title")).to_have_text(TITLE)
    assert page.get_by_test_id("revision").count() == 0
    screenshot(page, "notice/14-notice-first.png")

    # the PDF, as the link downloads it
    page.goto("/years/2025/notice")
    with page.expect_download(timeout=180_000) as downloaded:  # the first PDF imports WeasyPrint (seconds)
        page.get_by_test_id("notice-pdf").click()
    path = downloaded.value.path()
    assert path is not None and Path(path).read_bytes()[:5] == b"%PDF-"

    # printed: A4, the notice alone (no site navigation, no pager, no download links)
    page.emulate_media(media="print")
    assert not page.locator("header.site").is_visible()
    assert not page.locator("nav.gongshi-more").is_visible()
    page.emulate_media(media="screen")

    narrow = signed_in(browser, base, w.tokens["staff"], NARROW)
    narrow.goto("/years/2025/notice")
    expect(narrow.get_by_test_id("notice-title")).to_have_text(TITLE)
    no_sideways_scroll(narrow)
    screenshot(narrow, "notice/14-notice-390.png")


def test_14_before_publication_staff_get_the_refusal_not_the_notice(browser: Browser,
                                                                    site: tuple[World, str]) -> None:
    w, base = site
    page = signed_in(browser, base, w.tokens["staff"])
    for path in ("/years/2025/notice", "/years/2025/notice.pdf"):
        response = page.goto(path)
        assert response is not None and response.status == 403, path
        expect(page.locator("section.error")).to_contain_text("尚未公示")
        assert page.get_by_test_id("notice").count() == 0
    screenshot(page, "notice/14-refused-before-publication.png")


# --- over HTTP ----------------------------------------------------------------------------------------

@pytest.fixture
def w(db_url: str) -> Iterator[World]:
    with world(db_url, projection="inline") as made:
        yield made


@pytest.fixture
def client(w: World) -> Iterator[TestClient]:
    with TestClient(w.app, headers={"Origin": ORIGIN}) as made:
        yield made


def test_the_notice_pdf_is_a_pdf_with_the_title(w: World, client: TestClient) -> None:
    from pypdf import PdfReader

    w.ledger.submit([{"type": "year.publish", "id": "n-publish", "actor": "admin-2", "year": 2025}])
    sign_in(client, w.tokens["staff"])
    response = client.get("/years/2025/notice.pdf", headers=HTML)
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"] == "application/pdf"
    assert "attachment" in response.headers["content-disposition"]
    assert response.content[:5] == b"%PDF-"
    reader = PdfReader(io.BytesIO(response.content))
    text = "".join(page.extract_text() for page in reader.pages)
    assert TITLE in text.replace(" ", "").replace("\n", "")
    assert "绩效考核工作领导小组办公室" in text.replace("\n", "")  # the default issuing body
    box = reader.pages[0].mediabox
    assert (round(float(box.width) * 25.4 / 72), round(float(box.height) * 25.4 / 72)) == (210, 297)  # A4


def test_a_pdf_is_made_once_for_everyone_who_asks_and_again_for_a_revision(
        w: World, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """WeasyPrint takes seconds a page, and at publication everyone asks for the same pages: a PDF
    is kept by the digest of the page it prints, the same for every reader; a revision prints a
    page of its own."""
    notice.PDFS.clear()  # what another test's identical world left
    made: list[str] = []
    real = notice.pdf_of

    def counted(html: str) -> bytes:
        made.append(html)
        return real(html)

    monkeypatch.setattr(notice, "pdf_of", counted)
    w.ledger.submit([{"type": "year.publish", "id": "n-publish", "actor": "admin-2", "year": 2025}])
    pdfs = []
    for role in ("staff", "inspector", "admin"):
        sign_in(client, w.tokens[role])
        response = client.get("/years/2025/notice.pdf", headers=HTML)
        assert response.status_code == 200 and response.content[:5] == b"%PDF-"
        pdfs.append(response.content)
    assert len(made) == 1 and pdfs[0] == pdfs[1] == pdfs[2]
    recent = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0).isoformat()
    w.ledger.submit([{"type": "occurrence.record", "id": "n-absence", "actor": "hr-office", "at": recent,
                      "appraisal": A, "item": "absence", "count": 1, "evidence": "考勤记录：未打卡"}])
    revised = client.get("/years/2025/notice.pdf", headers=HTML)
    assert revised.status_code == 200 and len(made) == 2 and revised.content != pdfs[0]
    assert 'filename="notice-2025-2.pdf"' in revised.headers["content-disposition"]
    assert client.get("/years/2025/notice.pdf", headers=HTML).content == revised.content and len(made) == 2


def test_the_pdf_fetches_nothing_but_its_own_stylesheets() -> None:
    assert notice.local_only(notice.PDF_BASE + "assets/notice.css").startswith(b"/* The")
    for url in ("http://127.0.0.1:8000/assets/pages.css", "https://fonts.example.com/font.woff2",
                "file:///etc/passwd", "data:text/css,body{}", notice.PDF_BASE + "assets/../../settings.py",
                notice.PDF_BASE + "favicon.ico"):
        with pytest.raises(ValueError, match="refused"):
            notice.local_only(url)


def names_in(html: str, table: str) -> set[str]:
    """The row headings (names) of one table of a page."""
    start = html.find(f'data-testid="{table}"')
    if start < 0:
        return set()
    part = html[start:html.index("</table>", start)]
    return {name.strip() for name in re.findall(r'<th scope="row" data-label="[^"]+">([^<]+)', part)}


def test_the_notice_is_paged_with_the_items_of_its_page(w: World, client: TestClient,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    w.ledger.submit([{"type": "year.publish", "id": "n-publish", "actor": "admin-2", "year": 2025}])
    monkeypatch.setattr(notice, "PAGE_SIZE", 1)
    sign_in(client, w.tokens["staff"])
    people = w.app.state.queries.publication(2025, 1)["document"]["people"]
    ranked = sorted(people, key=lambda p: p["rank"])
    pages = len(ranked)
    assert pages >= 2
    seen = []
    for number in range(1, pages + 1):
        html = client.get(f"/years/2025/notice?page={number}", headers=HTML).text
        shown = re.findall(r'<tr data-person="([^"]+)"', html)
        assert len(shown) == 1
        seen += shown
        assert ('data-testid="notice-departments"' in html) == (number == 1)  # departments on the first page
        assert 'aria-label="公示分页 pages of the notice"' in html
        items = names_in(html, "notice-items")
        assert items & names_in(html, "notice-people")  # this page's person's bonuses and deductions
        assert items <= names_in(html, "notice-people") | names_in(html, "notice-departments")  # and no one else's
    assert seen == [p["id"] for p in ranked]
    last = client.get(f"/years/2025/notice?page={pages + 5}", headers=HTML).text  # past the end: the last page
    assert re.findall(r'<tr data-person="([^"]+)"', last) == seen[-1:]


def test_before_publication_the_notice_is_refused(w: World, client: TestClient) -> None:
    sign_in(client, w.tokens["staff"])
    for path in ("/years/2025/notice", "/years/2025/notice.pdf"):
        response = client.get(path, headers=HTML)
        assert response.status_code == 403
        assert "该年度尚未公示" in response.text and TITLE not in response.text
    client.cookies.clear()
    sign_in(client, w.tokens["admin"])
    response = client.get("/years/2025/notice", headers=HTML)
    assert response.status_code == 404 and "该年度还没有这一次公示" in response.text
    assert client.get("/years/2031/notice", headers=HTML).status_code == 404  # no such year


def test_the_issuing_body_and_objection_contact_are_settings() -> None:
    from api.settings import Settings

    defaults = Settings()
    assert defaults.issuing_body and defaults.objection_contact
    assert Settings.variable("issuing_body") == "APPRAISAL_ISSUING_BODY"
    assert Settings.variable("objection_contact") == "APPRAISAL_OBJECTION_CONTACT"


def test_a_page_of_the_notice_as_a_pdf_holds_that_page_only(w: World, client: TestClient,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from pypdf import PdfReader

    w.ledger.submit([{"type": "year.publish", "id": "n-publish", "actor": "admin-2", "year": 2025}])
    monkeypatch.setattr(notice, "PAGE_SIZE", 1)
    sign_in(client, w.tokens["staff"])
    html = client.get("/years/2025/notice?page=2", headers=HTML).text
    assert 'data-testid="notice-page-pdf"' in html and "notice.pdf?version=1&amp;page=2" in html
    (second,) = names_in(html, "notice-people")
    (first,) = names_in(client.get("/years/2025/notice?page=1", headers=HTML).text, "notice-people")
    response = client.get("/years/2025/notice.pdf?page=2", headers=HTML)
    assert response.status_code == 200 and response.content[:5] == b"%PDF-"
    assert 'filename="notice-2025-1-p2.pdf"' in response.headers["content-disposition"]
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages).replace("\n", "")
    assert second.split(" ")[0] in text and first.split(" ")[0] not in text
    # a notice of several pages: its PDF a page at a time, the whole of it refused with the reason
    assert 'data-testid="notice-pdf"' not in html and 'data-testid="notice-pdf-per-page"' in html
    whole = client.get("/years/2025/notice.pdf", headers=HTML)
    assert whole.status_code == 422 and "PDF 按页提供" in whole.text
