"""The 公示 as an office posts it (issue 17, job 14): 关于2025年度考核结果的公示, with the issuing
body, the publication date, the end of the publicity period and where to raise an objection (the
settings `issuing_body` and `objection_contact`; the period is the scheme's `publicity_working_days`
counted as `year.finalize` counts it); the ranked list with tier, grade and consequences; the
office-wide itemised list of bonuses and deductions with their dates (加分/扣分明细); a revision
(a publication after the first) marked as revised, with its reason in words and who it moved.

| page | who |
|---|---|
| `/years/{year}/notice?version=&page=` | anyone signed in, once the year is published (a publication is public); before it: 403 (admin, inspector: 404) |
| `/years/{year}/notice.pdf?version=&page=` | the same, a page of the notice as a PDF on A4 (WeasyPrint, Debian's fonts); the whole notice where it is one page |

A 3,000-person year is shown `PAGE_SIZE` people a page, with the 明细 of those people (and the
departments' on the first page): a page reads its publication's document and the breakdowns of
its own people only. The PDF is made a page at a time (a whole 3,000-person notice takes
WeasyPrint minutes: not on a request). Nothing here computes a figure: the figures are the
publication's, the 明细 the published breakdowns' (api/pages/views.py `Explained.itemised`).
"""

from __future__ import annotations

import re
import sys
from datetime import datetime
from hashlib import sha256
from pathlib import Path as FilePath
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from api.http.auth import Principal, forbidden
from api.http.deps import LedgerDep, QueriesDep, SettingsDep
from api.http.problems import Problem
from api.http.read_side import Queries
from api.pages.inspector import EVENT_TYPES, results_table
from api.pages.labels import CONSEQUENCES, OUTCOMES, RULES_ZH, Labels, bilingual, label, labels_for
from api.pages.layout import HEADERS, page, templates
from api.pages.session import PageRoute, ViewerDep
from api.pages.views import Explained, Kept, Rows, kept
from api.pages.views import _order as ranking_order
from api.store.gcpause import freeze_kept, paused_gc
from domain.errors import DomainError, NotFound
from domain.handlers import working_days_after

router = APIRouter(route_class=PageRoute, include_in_schema=False)

STATIC = FilePath(__file__).parent / "static"
YearNumber = Annotated[int, Path(ge=1900, le=2999)]
Version = Annotated[int | None, Query(ge=1, le=100_000)]
PAGE_SIZE = 100  # people a page (and their 明细)
CHANGED_SHOWN = 100  # people moved by a revision listed in its note (the rest counted)

RULES_ZH.update({
    "notice-before-publication": "该年度尚未公示：公示发布后，本单位人员均可在此查看公示。",
    "publication-known": "该年度还没有这一次公示。",
    "notice-pdf-page": "该公示分多页：PDF 按页提供，请在公示页面逐页下载（每页一个 PDF）。",
})
NUMERALS = "〇一二三四五六七八九十"


# --- words ---------------------------------------------------------------------------------------------

def chinese_date(moment: datetime | str) -> str:
    """2026-01-05 as 2026年1月5日 (the date of an office's documents)."""
    day = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return f"{day.year}年{day.month}月{day.day}日"


def ordinal(number: int) -> str:
    """1 → 一, 12 → 十二 (the publication's number in its heading); beyond 99 as digits."""
    if number < 11:
        return NUMERALS[number]
    if number < 20:
        return "十" + (NUMERALS[number - 10] if number > 10 else "")
    if number < 100:
        return NUMERALS[number // 10] + "十" + (NUMERALS[number % 10] if number % 10 else "")
    return str(number)


REVISION = re.compile(r"^changed by command (?P<command>.+)$")
APPEAL_ID = re.compile(r"(?<=overturned on appeal)（[^）]*）：")


def revision_words(queries: Queries, ledger: Any, labels: Labels, reason: str | None) -> str:
    """Why a publication was revised, in words: what the change that moved the figures was, whom
    it was about, when, and a decision's reason (from the events of the command the revision names;
    never a rater's identity, never an id)."""
    found = REVISION.match(reason or "")
    if not found:
        return reason or ""
    command = found["command"]
    row = ledger.commands([command]).get(command)
    events = []
    if row is not None and row.get("position"):
        events = [e for e in queries.audit(int(row["position"]) - 1, 50) if e.get("command_id") == command]
    described = [text for text in (event_words(event, labels) for event in events) if text]
    if not described:
        return "公示后记录的更改改变了考核结果 a change recorded after the publication moved the results"
    return "；".join(dict.fromkeys(described))


def event_words(event: dict[str, Any], labels: Labels) -> str:
    """One event of a change after publication, as a sentence."""
    data = event.get("data") or {}
    kind = str(event.get("type", "")).rpartition(".")[2]
    name = str(event.get("aggregate_name") or "")
    subject = name.split(":", 1)[1] if ":" in name else ""
    who = labels.person(subject) if subject in labels.people else labels.department(subject)
    at = data.get("at") or event.get("at")
    day = chinese_date(str(at)) if at else ""
    evidence = f"（{data['evidence']}）" if data.get("evidence") else ""
    if kind == "OccurrenceRecorded":
        return f"{day}记录{who}：{labels.input(data.get('item', ''))} {data.get('count', 1)} 次{evidence}"
    if kind == "MeasurementRecorded":
        return f"{day}记录{who}的测量值：{labels.input(data.get('input', ''))} {data.get('value', '')}{evidence}"
    if kind == "AdjustmentApplied":
        return f"{day}对{who}直接加减分：{labels.adjustment(data.get('item', ''))} {data.get('points', '')}{evidence}"
    if kind == "VetoImposed":
        return f"{day}对{who}一票否决：{labels.veto(data.get('reason', ''))}{evidence}"
    if kind == "AppealDecided":
        points = f"，变更为 {data['points']} 分" if data.get("points") else ""
        return (f"{day}裁决{who}的申诉：{label(OUTCOMES, data.get('outcome'))}{points}。"
                f"理由 reason：{data.get('reason', '')}")
    if kind == "RatingRecorded":
        return f"{day}补录或更正{who}的评分 a rating recorded"
    if kind == "TieBroken":
        return f"{day}裁定并列排序 tie broken：{data.get('reason', '')}"
    if kind == "SchemeAdopted":
        return f"{day}采用考核方案新版本 a new scheme version adopted：{data.get('reason', '')}"
    if kind in ("Published", "AppealFiled"):
        return ""
    return f"{day}{EVENT_TYPES.get(str(event.get('type')), '')} {who}".strip()


# --- the notice -------------------------------------------------------------------------------------

def notice_refused(year: int) -> Problem:
    return forbidden("notice-before-publication", f"year {year} is not published yet: its notice (公示) "
                     "is readable by everyone once it is", field="year")


def publication_of(queries: Queries, viewer: Principal, year: int,
                   version: int | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The publication shown (the latest, or `version`) and every publication of the year; before
    the first, a refusal (403 to staff; 404 to admins and inspectors, who read the year itself)."""
    publications = queries.publications(year)  # an unknown year: 404
    if not publications:
        if viewer.sees_everything:
            raise NotFound("publication", f"year {year} has no publication yet", rule="publication-known")
        raise notice_refused(year)
    wanted = version or publications[-1]["version"]
    listed = next((p for p in publications if p["version"] == wanted), None)
    if listed is None:
        raise NotFound("version", f"year {year} has no publication {wanted}", rule="publication-known")
    return {**listed, "document": published_document(queries, listed)}, publications


def published_document(queries: Queries, listed: dict[str, Any]) -> dict[str, Any]:
    """A publication's document (read once, kept by its digest: treat as read-only)."""
    return kept(("document", listed["digest"]),  # type: ignore[no-any-return]
                lambda: queries.publication(listed["year"], listed["version"])["document"])


def _placed(person: dict[str, Any]) -> tuple[Any, ...]:
    return (person.get("total"), person.get("rank"), person.get("tier"), person.get("grade"),
            [c.get("type") for c in person.get("consequences", [])])


def changes(previous: dict[str, Any] | None, document: dict[str, Any], labels: Labels) -> list[dict[str, Any]]:
    """Who a revision moved: people whose total, rank, tier, grade or consequences differ from the
    publication before it (in the order of the new ranking)."""
    if previous is None:
        return []
    before = {p["id"]: p for p in previous.get("people", [])}
    moved = []
    for person in document.get("people", []):
        old = before.get(person["id"])
        if old is None or _placed(old) != _placed(person):
            moved.append({"id": person["id"], "name": labels.person(person["id"]),
                          "old": old or {}, "new": person})
    return sorted(moved, key=lambda m: (m["new"].get("rank") is None, m["new"].get("rank") or 0, m["id"]))


def itemised(breakdown: dict[str, Any], labels: Labels, name: str, department: str) -> list[dict[str, Any]]:
    """A published breakdown's bonuses and deductions (and what was struck from them), each with
    whom it concerns: the rows of the office-wide 明细."""
    rows = []
    for row in Explained(breakdown, labels).itemised():
        if row["sign"] == "zero" and not row["struck"] and row["points"] != "否决 veto":
            continue
        if row["struck"]:  # the appeal's reason stays, its command id goes (no ids on a notice)
            row["struck"] = {**row["struck"], "why": APPEAL_ID.sub("：", row["struck"]["why"])}
        rows.append({**row, "name": name, "department": department})
    return rows


def notice_context(queries: Queries, ledger: Any, settings: Any, found: dict[str, Any],
                   publications: list[dict[str, Any]], page_number: int | None) -> dict[str, Any]:
    """Everything the notice shows: one page of it (`page_number`), or the whole of it (None: the PDF)."""
    document = found["document"]
    year, version = found["year"], found["version"]
    scheme = document.get("scheme") or {}
    labels = labels_for(ledger, f"{scheme.get('id')}@{scheme.get('version')}" if scheme else None)
    people = kept(("ranked", found["digest"]), lambda: sorted(document.get("people", []), key=ranking_order))
    pages = max(1, -(-len(people) // PAGE_SIZE))
    if page_number is not None:  # only this page's people are shaped (a year may have thousands)
        page_number = min(max(page_number, 1), pages)
        people_shown = people[(page_number - 1) * PAGE_SIZE:page_number * PAGE_SIZE]
    else:
        people_shown = people
    table = results_table({**document, "people": people_shown}, labels, Rows(everyone=True))
    shown = table["people"]
    first_page = page_number in (None, 1)
    subjects = [(f"{year}:{p['id']}", p["name"], p["department_zh"]) for p in shown]
    if first_page:
        subjects += [(f"{year}:{d['id']}", d["name"], "科室整体") for d in table["departments"]]
    breakdowns = queries.published_breakdowns([key for key, _, _ in subjects], version)
    items = [row for key, name, department in subjects if key in breakdowns
             for row in itemised(breakdowns[key], labels, name, department)]
    before = publications[version - 2] if version > 1 else None
    moved = kept(("moved", found["digest"], before["digest"] if before else ""),
                 lambda: changes(published_document(queries, before) if before else None, document, labels))
    moved_ids = {m["id"] for m in moved}
    for person in shown:
        person["revised"] = person["id"] in moved_ids
    first = publications[0]
    try:
        days = ledger.scheme(scheme["id"], int(scheme["version"])).publicity_working_days
    except (DomainError, KeyError, ValueError):
        days = None
    ends = working_days_after(datetime.fromisoformat(first["at"]), days) if days else None
    return {
        "year": year, "version": version, "p": found, "y": {**table, "people": shown},
        "title": f"关于{year}年度考核结果的公示",
        "revised": version > 1,
        "revision": {"reason": kept(("reason", found["digest"]), lambda: revision_words(
                         queries, ledger, labels, document.get("revision_reason"))),
                     "previous": {**publications[version - 2], "on": chinese_date(publications[version - 2]["at"])},
                     "moved": moved[:CHANGED_SHOWN], "more": max(0, len(moved) - CHANGED_SHOWN),
                     "count": len(moved)} if version > 1 else None,
        "issuing_body": settings.issuing_body, "objection_contact": settings.objection_contact,
        "published_on": chinese_date(found["at"]), "first_published_on": chinese_date(first["at"]),
        "publicity_days": days, "publicity_ends": chinese_date(ends) if ends else None,
        "publicity_ends_iso": ends.date().isoformat() if ends else None,
        "scheme_name": bilingual(_scheme_name(ledger, scheme)),
        "items": items, "page": page_number, "pages": pages, "page_size": PAGE_SIZE,
        "total_people": len(people), "first_page": first_page,
        "page_links": [{"number": n, "from": (n - 1) * PAGE_SIZE + 1, "to": min(n * PAGE_SIZE, len(people)),
                        "href": f"/years/{year}/notice?version={version}&page={n}"} for n in range(1, pages + 1)],
        "publications": [{**p, "href": f"/years/{year}/notice?version={p['version']}",
                          "on": chinese_date(p["at"])} for p in publications],
        "pdf_href": f"/years/{year}/notice.pdf?version={version}",
        "ordinal": ordinal(version), "consequence_names": CONSEQUENCES,
    }


def _scheme_name(ledger: Any, scheme: dict[str, Any]) -> Any:
    try:
        return ledger.scheme(scheme["id"], int(scheme["version"])).name.model_dump()
    except (DomainError, KeyError, ValueError):
        return scheme.get("id", "")


@router.get("/years/{year}/notice")
def notice_page(request: Request, year: YearNumber, viewer: ViewerDep, queries: QueriesDep, ledger: LedgerDep,
                settings: SettingsDep, version: Version = None,
                page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1) -> Response:
    """The 公示, a page of its list at a time."""
    with paused_gc():  # a hundred breakdowns read and shaped: many small objects, no cycles
        found, publications = publication_of(queries, viewer, year, version)
        context = notice_context(queries, ledger, settings, found, publications, page_number)
        return page(request, "notice.html", {**context, "layout": "base.html"}, viewer=viewer)


# --- the PDF -------------------------------------------------------------------------------------------

PDF_BASE = "https://notice.invalid/"  # the base of the notice's links in the PDF: nothing is fetched from it
PDF_ASSETS = {"assets/pages.css": "pages.css", "assets/notice.css": "notice.css"}


def local_only(url: str) -> bytes:
    """What the PDF may fetch: the pages' own stylesheets from the package, and nothing else (no
    network, no file, no data: URL: a ValueError, which WeasyPrint reports and renders without);
    fonts come from fontconfig (Debian's fonts-wqy-microhei)."""
    name = PDF_ASSETS.get(url.removeprefix(PDF_BASE)) if url.startswith(PDF_BASE) else None
    if name is None:
        raise ValueError(f"the notice's PDF fetches nothing but its own stylesheets: {url[:80]} refused")
    return (STATIC / name).read_bytes()


# The PDFs made, by the digest of the page they print: that page holds every figure, name and word
# on the PDF (the same for every reader; the stylesheets are the package's), so the same digest is
# the same PDF. WeasyPrint takes seconds a page, and at publication everyone asks for the first
# pages: each is made once, one at a time. 64 of 100-person pages are about 10 MB.
PDFS = Kept(64, serial=True)


def notice_pdf_bytes(context: dict[str, Any]) -> bytes:
    html = templates.env.get_template("notice.html").render({**context, "layout": "_print_base.html", "pdf": True})
    return PDFS(("pdf", sha256(html.encode()).hexdigest()), lambda: _made_once(html))  # type: ignore[no-any-return]


def _made_once(html: str) -> bytes:
    first = "weasyprint" not in sys.modules
    pdf = pdf_of(html)
    if first:  # the library's modules and caches live as long as the process
        freeze_kept()
    return pdf


def pdf_of(html: str) -> bytes:
    """The page printed on A4 by WeasyPrint, fetching nothing but the pages' stylesheets."""
    from weasyprint import HTML  # imported here: pango is loaded only when a PDF is asked for
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class LocalOnly(URLFetcher):  # type: ignore[misc]
        def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
            return URLFetcherResponse(url, local_only(url), {"Content-Type": "text/css; charset=utf-8"})

    return bytes(HTML(string=html, base_url=PDF_BASE, url_fetcher=LocalOnly()).write_pdf())


@router.get("/years/{year}/notice.pdf")
def notice_pdf(year: YearNumber, viewer: ViewerDep, queries: QueriesDep, ledger: LedgerDep,
               settings: SettingsDep, version: Version = None,
               page_number: Annotated[int | None, Query(alias="page", ge=1, le=100_000)] = None) -> Response:
    """The 公示 as a PDF on A4, rendered here with the same template: one page of its list with that
    page's 明细 (`page`), the way the notice is read on the screen and printed page by page; the
    whole of it in one file only where its list is one page. A whole notice of a big year is not
    made on a request: 3,000 people's list and 明细 take WeasyPrint minutes (scripts/BENCHMARKS.md,
    notice), and an office prints the pages it posts; refused (422) with the number of pages. Each
    PDF is made once for everyone (`PDFS`)."""
    found, publications = publication_of(queries, viewer, year, version)
    pages = max(1, -(-len(found["document"].get("people", [])) // PAGE_SIZE))
    if page_number is None and pages > 1:
        raise Problem(422, "notice-pdf-page", f"the notice of {year} has {pages} pages of {PAGE_SIZE} people: "
                      f"its PDF is made a page at a time (?page=1 … ?page={pages})", field="page")
    with paused_gc():
        context = notice_context(queries, ledger, settings, found, publications, page_number)
    part = f"-p{context['page']}" if page_number is not None else ""
    which = f"第{found['version']}次" + (f"，第{context['page']}页" if part else "")
    name = f"{context['title']}（{which}）.pdf"
    headers = {**HEADERS, "Content-Disposition": f"attachment; filename=\"notice-{year}-{found['version']}{part}.pdf\"; "
                                                 f"filename*=UTF-8''{quote(name)}"}
    return Response(notice_pdf_bytes(context), media_type="application/pdf", headers=headers)
