"""The admin's pages: the jobs an admin does in the browser, through the same command path as the
JSON API (`authorize`, `business_time`, `submit` of api/http/writes.py) and the same reads
(`Queries`). Every page here needs the admin grant; anyone else gets the 403 page.

| page | job |
|---|---|
| `/admin` | the admin's start: the years and what waits in each |
| `/admin/appeals`, `POST /admin/appeals/{appeal}` | the queue of appeals (due first) and the decision (appeal.decide) |
| `/admin/years/{year}`, `POST …/tie-break`, `…/publish`, `…/finalize` | the year's life |
| `/admin/tokens`, `POST /admin/tokens`, `POST /admin/tokens/{id}/revoke` | people's access |

A refused command is shown on the page it came from, with its status, in Chinese with the
service's English beside it (never the rule code as words); what was typed is kept.
"""

from __future__ import annotations

import json
import secrets
from hashlib import sha256
from pathlib import Path as FilePath
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.documents.ledger_workbook import WorkbookError, import_workbook, template
from api.documents.results_workbook import office_workbook
from api.http.auth import GRANTS as TOKEN_GRANTS
from api.http.auth import Principal, TokenError
from api.http.deps import CredentialsDep, LedgerDep, PositionDep, QueriesDep, log_entry
from api.http.problems import Problem, from_domain
from api.http.read_side import Queries
from api.http.writes import authorize, business_time, check_text, submit
from api.ledger import AppraisalLedger, Refused
from api.pages.labels import (
    APPEAL_STATUS,
    CONSEQUENCES,
    GRANTS,
    KINDS,
    OUTCOMES,
    POSITIONS,
    RULES_ZH,
    STATUS,
    Labels,
    label,
    labels_for,
)
from api.pages.layout import page, templates
from api.pages.routes import known_years
from api.pages.session import FormDep, PageRoute, ViewerDep, same_origin
from api.pages.views import kept
from domain.errors import DomainError, NotFound

router = APIRouter(route_class=PageRoute, include_in_schema=False)

YearNumber = Annotated[int, Path(ge=1900, le=2999)]
CommandId = Annotated[str, Path(pattern=r"^[^\x00/]+$", max_length=200)]
TokenId = Annotated[str, Path(pattern=r"^tk-[0-9a-f]{1,40}$")]

# What happens, said before the admin confirms.
CONSEQUENCE = {
    "publish": ("公示后，全体人员可以查看本年度结果和每个人的得分明细；此后的更改（如申诉裁决）将生成修订版公示，"
                "原版本保留可查。公示只能发布一次。",
                "Publishing lets everyone read the year's results and everyone's breakdown; later changes "
                "(an appeal decided, say) produce a revised publication, the earlier ones stay readable. "
                "A year is published once."),
    "finalize": ("定稿后，本年度的结果不可再更改：不能再记录事项、裁决申诉或打破并列。须在公示期满且没有待裁决的申诉之后进行。",
                 "Finalizing fixes the year's results for good: no more items, decisions or tie-breaks. "
                 "It needs the publicity period over and no appeal open."),
}
DECIDE_HELP = {
    "upheld": "维持原记录 upheld: the item stands",
    "overturned": "撤销该事项 overturned: the item no longer counts",
    "amended": "变更分值 amended: a direct deduction with other points (never harsher)",
}


def when(moment: Any) -> str:
    """A recorded time as people read it: "2026-01-25 09:00 (+08:00)"; nothing: "—"."""
    text = str(moment or "")
    if len(text) < 16 or text[10] != "T":
        return text or "—"
    offset = text[19:].lstrip(".0123456789")
    return f"{text[:10]} {text[11:16]}" + (f" ({'UTC' if offset in ('Z', '+00:00') else offset})" if offset else "")


templates.env.filters["when"] = when


def require_admin(viewer: Principal, job: str) -> None:
    if "admin" not in viewer.grants:
        raise Problem(403, "admin-required", f"{job} needs the admin grant; the token of {viewer.person} has "
                      f"{', '.join(sorted(viewer.grants)) or 'no grants'}", "authorization")


def refusal_of(error: Problem | DomainError) -> dict[str, Any]:
    problem = error if isinstance(error, Problem) else from_domain(error)
    return {"status": problem.status, "zh": RULES_ZH.get(problem.rule, "未被接受。"), "detail": problem.detail,
            "rule": problem.rule, "field": problem.field}


def run_command(request: Request, viewer: Principal, ledger: AppraisalLedger,
                body: dict[str, Any]) -> int:
    """One command from a page, as the viewer, at the server's clock: its log position (or a
    `Problem`/`DomainError` for the page to show)."""
    entry = log_entry(request)
    entry["command"] = body["type"]
    try:
        check_text(body)
        authorize(viewer, body)
        body = business_time(viewer, body, ledger.clock())
        outcome = submit(ledger, body, viewer.person)
    except (Problem, DomainError) as error:
        problem = error if isinstance(error, Problem) else from_domain(error)
        entry.update(outcome="refused", rule=problem.rule, field=problem.field)
        raise
    position = int(outcome.answer.get("position") or ledger.event_count())
    entry.update(outcome="duplicate" if outcome.duplicate else "accepted", position=position)
    return position


# --- the admin's start -----------------------------------------------------------------------------

@router.get("/admin")
def admin_home(request: Request, viewer: ViewerDep, queries: QueriesDep) -> Response:
    require_admin(viewer, "the admin's pages")
    years = []
    for year in sorted(known_years(queries, viewer), reverse=True):
        info = queries.year(year)
        waiting = [a for a in queries.appeals(year) if a["status"] != "decided"]
        ties = queries.results(year).get("unresolved_ties") or []
        years.append({"year": year, "status": info.status, "status_label": label(STATUS, info.status),
                      "open": len(waiting), "overdue": sum(a["status"] == "overdue" for a in waiting),
                      "ties": len(ties)})
    return page(request, "admin_home.html", {"years": years}, viewer=viewer)


# --- job 2: the appeals queue ------------------------------------------------------------------------

def catalogue_points(ledger: AppraisalLedger, scheme: str, item: str) -> str | None:
    """A direct adjustment's points in the scheme's catalogue (what an amended decision may soften)."""
    scheme_id, _, version = scheme.partition("@")
    try:
        return str(ledger.scheme(scheme_id, int(version)).adjustments[item].points)
    except (DomainError, ValueError, KeyError):
        return None


def appeal_queue(queries: Queries, ledger: AppraisalLedger, viewer: Principal,
                 year: int | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[int]]:
    """Open appeals, due first (the overdue ones are the earliest due), and the decided ones."""
    years = known_years(queries, viewer)
    chosen = [year] if year is not None else years
    labels_by_scheme: dict[str, Labels] = {}
    documents: dict[str, dict[str, Any]] = {}
    rows = []
    for number in chosen:
        try:
            found = queries.appeals(number)
        except NotFound:
            continue
        for appeal in found:
            key = appeal["appraisal"]
            if key not in documents:
                documents[key] = queries.explanation(key)
            document = documents[key]
            scheme = str(document.get("scheme") or "")
            if scheme not in labels_by_scheme:
                labels_by_scheme[scheme] = labels_for(ledger, scheme or None)
            labels = labels_by_scheme[scheme]
            target = appeal.get("target") or {}
            item = next((e for e in document.get("events", []) if e.get("command") == target.get("command")), {})
            decision = appeal.get("decision")
            if item.get("kind") == "adjustment" and item.get("points") is None:
                item = {**item, "points": catalogue_points(ledger, scheme, item.get("item", ""))}
            rows.append({
                **appeal, "year": number, "status_label": label(APPEAL_STATUS, appeal["status"]),
                "subject_name": labels.person(appeal["subject"]) if appeal["subject"] in labels.people
                else labels.department(appeal["subject"]),
                "appellant_name": labels.person(appeal["appellant"]),
                "kind_label": label(KINDS, target.get("kind")), "item_label": labels.item(item) if item else "",
                "item_evidence": item.get("evidence") or "", "item_at": item.get("at") or "",
                "item_recorder": labels.person(item.get("actor")), "item_points": item.get("points"),
                "item_count": item.get("count"), "item_value": item.get("value"),
                "amendable": target.get("kind") == "adjustment",
                "decision_label": label(OUTCOMES, decision.get("outcome")) if decision else "",
                "decider_name": labels.person(decision.get("actor")) if decision else "",
            })
    waiting = sorted((r for r in rows if r["status"] != "decided"), key=lambda r: (r["due"] or "", r["appeal"]))
    decided = sorted((r for r in rows if r["status"] == "decided"), key=lambda r: r["appeal"])
    return waiting, decided, years


def appeals_page(request: Request, viewer: Principal, queries: Queries, ledger: AppraisalLedger, year: int | None,
                 *, refusal: dict[str, Any] | None = None, decided: str | None = None, status: int = 200) -> Response:
    waiting, done, years = appeal_queue(queries, ledger, viewer, year)
    return page(request, "admin_appeals.html", {
        "waiting": waiting, "done": done, "years": years, "year": year, "refusal": refusal,
        "just_decided": decided if decided and any(r["appeal"] == decided for r in done) else None,
        "outcomes": DECIDE_HELP, "form_id": "page-decision-" + secrets.token_hex(8),
    }, viewer=viewer, status=status)


@router.get("/admin/appeals")
def appeals_queue(request: Request, viewer: ViewerDep, queries: QueriesDep, ledger: LedgerDep,
                  position: PositionDep,
                  year: Annotated[int | None, Query(ge=1900, le=2999)] = None,
                  decided: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    require_admin(viewer, "the appeals queue")
    return appeals_page(request, viewer, queries, ledger, year, decided=decided)


@router.post("/admin/appeals/{appeal}")
def decide_appeal(request: Request, appeal: CommandId, viewer: ViewerDep, form: FormDep, queries: QueriesDep,
                  ledger: LedgerDep,
                  year: Annotated[int | None, Query(ge=1900, le=2999)] = None) -> Response:
    """The decision form: the command `appeal.decide`, as the viewer."""
    require_admin(viewer, "appeal.decide")
    outcome = form.get("outcome", "")
    points = form.get("points", "").strip()
    body: dict[str, Any] = {"type": "appeal.decide", "id": form.get("id") or "page-decision-" + secrets.token_hex(8),
                            "appeal": appeal, "outcome": outcome, "reason": form.get("reason", "").strip()}
    if outcome == "amended" or points:
        body["points"] = points
    try:
        if not body["reason"]:
            raise Problem(422, "decision-reason", "give the reason for the decision", "reason")
        if outcome not in OUTCOMES:
            raise Problem(422, "decision-outcome", "choose upheld, overturned or amended", "outcome")
        position = run_command(request, viewer, ledger, body)
    except (Problem, DomainError) as error:
        refusal = {**refusal_of(error), "appeal": appeal, "outcome": outcome, "points": points,
                   "reason": body["reason"]}
        return appeals_page(request, viewer, queries, ledger, year, refusal=refusal, status=refusal["status"])
    where = f"year={year}&" if year else ""
    return RedirectResponse(f"/admin/appeals?{where}decided={appeal}&position={position}#decided", status_code=303)


# --- job 3: the year's life ----------------------------------------------------------------------------

def year_context(queries: Queries, ledger: AppraisalLedger, year: int) -> dict[str, Any]:
    info = queries.year(year)
    results = queries.results(year)
    scheme = results.get("scheme") or {}
    labels = labels_for(ledger, f"{scheme.get('id')}@{scheme.get('version')}" if scheme else None)
    people = {p["id"]: p for p in results.get("people", [])}
    ties = []
    for index, tie in enumerate(results.get("unresolved_ties") or []):
        ties.append({"index": index, "total": tie.get("total"),
                     "people": [{"id": p, "name": labels.person(p),
                                 "department": labels.department((people.get(p) or {}).get("department"))}
                                for p in tie["people"]]})
    incomplete = [labels.department(d["id"]) for d in results.get("departments", []) if d.get("incomplete")]
    incomplete += [labels.person(p["id"]) for p in results.get("people", []) if p.get("incomplete")]
    waiting = [a for a in queries.appeals(year) if a["status"] != "decided"]
    return {"year": year, "status": info.status, "status_label": label(STATUS, info.status), "ties": ties,
            "incomplete": incomplete, "open_appeals": len(waiting),
            "publications": queries.publications(year), "consequence": CONSEQUENCE,
            "form_id": "page-year-" + secrets.token_hex(8)}


def year_life_page(request: Request, viewer: Principal, queries: Queries, ledger: AppraisalLedger, year: int,
                   *, refusal: dict[str, Any] | None = None, done: str | None = None, status: int = 200) -> Response:
    context = year_context(queries, ledger, year)
    return page(request, "admin_year.html", {**context, "refusal": refusal, "done": done}, viewer=viewer,
                status=status)


@router.get("/admin/years/{year}")
def year_life(request: Request, year: YearNumber, viewer: ViewerDep, queries: QueriesDep, ledger: LedgerDep,
              position: PositionDep, done: Annotated[str | None, Query(pattern=r"^[a-z_]{1,20}$")] = None) -> Response:
    require_admin(viewer, "the year's life")
    return year_life_page(request, viewer, queries, ledger, year, done=done)


def year_command(request: Request, viewer: Principal, ledger: AppraisalLedger, queries: Queries,
                 year: int, body: dict[str, Any], done: str, typed: dict[str, Any] | None = None) -> Response:
    require_admin(viewer, body["type"])
    try:
        position = run_command(request, viewer, ledger, body)
    except (Problem, DomainError) as error:
        refusal = {**refusal_of(error), "action": done, **(typed or {})}
        return year_life_page(request, viewer, queries, ledger, year, refusal=refusal, status=refusal["status"])
    return RedirectResponse(f"/admin/years/{year}?done={done}&position={position}", status_code=303)


@router.post("/admin/years/{year}/tie-break")
def tie_break(request: Request, year: YearNumber, viewer: ViewerDep, form: FormDep, queries: QueriesDep,
              ledger: LedgerDep) -> Response:
    """The tie-break form: places 1, 2, … chosen among the tied people (`order-0`, `order-1`, …)."""
    order = [form[f"order-{i}"] for i in range(50) if form.get(f"order-{i}")]
    body = {"type": "year.tie_break", "id": form.get("id") or "page-tie-" + secrets.token_hex(8), "year": year,
            "order": order, "reason": form.get("reason", "").strip()}
    return year_command(request, viewer, ledger, queries, year, body, "tie_break",
                        {"tie": form.get("tie", ""), "reason": body["reason"], "order": order})


@router.post("/admin/years/{year}/publish")
def publish(request: Request, year: YearNumber, viewer: ViewerDep, form: FormDep, queries: QueriesDep,
            ledger: LedgerDep) -> Response:
    body = {"type": "year.publish", "id": form.get("id") or "page-publish-" + secrets.token_hex(8), "year": year}
    if form.get("confirm") != "yes":
        require_admin(viewer, "year.publish")
        refusal = {**refusal_of(Problem(422, "confirm", "tick the box to confirm what publishing does", "confirm")),
                   "action": "publish"}
        return year_life_page(request, viewer, queries, ledger, year, refusal=refusal, status=422)
    return year_command(request, viewer, ledger, queries, year, body, "publish")


@router.post("/admin/years/{year}/finalize")
def finalize(request: Request, year: YearNumber, viewer: ViewerDep, form: FormDep, queries: QueriesDep,
             ledger: LedgerDep) -> Response:
    body = {"type": "year.finalize", "id": form.get("id") or "page-finalize-" + secrets.token_hex(8), "year": year}
    if form.get("confirm") != "yes":
        require_admin(viewer, "year.finalize")
        refusal = {**refusal_of(Problem(422, "confirm", "tick the box to confirm what finalizing does", "confirm")),
                   "action": "finalize"}
        return year_life_page(request, viewer, queries, ledger, year, refusal=refusal, status=422)
    return year_command(request, viewer, ledger, queries, year, body, "finalize")


# --- job 5: people's access ------------------------------------------------------------------------------

def tokens_page(request: Request, viewer: Principal, credentials: Any, ledger: AppraisalLedger, *,
                created: dict[str, Any] | None = None, refusal: dict[str, Any] | None = None,
                revoked: str | None = None, status: int = 200) -> Response:
    labels = labels_for(ledger)
    rows = []
    for record in credentials.list():
        if record.session:
            continue  # a page session: ended by signing out, not handed out here
        rows.append({"id": record.token_id, "prefix": record.prefix, "person": labels.person(record.person),
                     "grants": [label(GRANTS, g) for g in record.grants] or [label(GRANTS, "staff")],
                     "created_at": record.created_at, "created_by": labels.person(record.created_by),
                     "note": record.note or "", "active": record.active, "revoked_at": record.revoked_at or "",
                     "revoked_by": labels.person(record.revoked_by)})
    rows.sort(key=lambda r: (not r["active"], r["created_at"]), reverse=False)
    people = sorted(((pid, labels.person(pid)) for pid in labels.people), key=lambda p: p[0])
    return page(request, "admin_tokens.html", {
        "rows": rows, "people": people, "grants": [(g, label(GRANTS, g)) for g in TOKEN_GRANTS],
        "created": created, "refusal": refusal, "revoked": revoked,
    }, viewer=viewer, status=status)


@router.get("/admin/tokens")
def tokens(request: Request, viewer: ViewerDep, credentials: CredentialsDep, ledger: LedgerDep,
           revoked: Annotated[str | None, Query(pattern=r"^tk-[0-9a-f]{1,40}$")] = None) -> Response:
    require_admin(viewer, "people's access")
    return tokens_page(request, viewer, credentials, ledger, revoked=revoked)


@router.post("/admin/tokens")
def create_token(request: Request, viewer: ViewerDep, form: FormDep, credentials: CredentialsDep,
                 ledger: LedgerDep) -> Response:
    """A new token, shown once on the answer (never stored, never in a URL)."""
    require_admin(viewer, "creating a token")
    person = form.get("person", "").strip()
    grants = [g for g in TOKEN_GRANTS if form.get(f"grant-{g}") == "yes"]
    note = form.get("note", "").strip()[:200] or None
    entry = log_entry(request)
    entry["command"] = "token.create"
    try:
        check_text({"person": person, "note": note})
        token, record = credentials.create(person, grants, created_by=viewer.person, note=note)
    except (TokenError, Problem) as error:
        problem = error if isinstance(error, Problem) else Problem(422, "token-create", str(error), "person")
        entry.update(outcome="refused", rule=problem.rule)
        refusal = {**refusal_of(problem), "person": person, "grants": grants, "note": note or ""}
        return tokens_page(request, viewer, credentials, ledger, refusal=refusal, status=problem.status)
    entry.update(outcome="accepted")
    labels = labels_for(ledger)
    created = {"token": token, "id": record.token_id, "person": labels.person(record.person),
               "grants": [label(GRANTS, g) for g in record.grants] or [label(GRANTS, "staff")]}
    return tokens_page(request, viewer, credentials, ledger, created=created, status=201)


@router.post("/admin/tokens/{token_id}/revoke")
def revoke_token(request: Request, token_id: TokenId, viewer: ViewerDep, form: FormDep,
                 credentials: CredentialsDep, ledger: LedgerDep) -> Response:
    require_admin(viewer, "revoking a token")
    entry = log_entry(request)
    entry["command"] = "token.revoke"
    try:
        credentials.revoke(token_id, by=viewer.person)
    except TokenError as error:
        entry.update(outcome="refused", rule="token-unknown")
        raise Problem(404, "token-unknown", str(error), "token") from None
    entry.update(outcome="accepted")
    return RedirectResponse(f"/admin/tokens?revoked={token_id}#tokens", status_code=303)


# --- job 1: loading ledgers ------------------------------------------------------------------------------

IMPORT_CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; connect-src 'self'; "
              "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
UPLOAD_KINDS = {".jsonl": "jsonl", ".xlsx": "xlsx"}


def import_page(request: Request, viewer: Principal, queries: Queries, *, result: dict[str, Any] | None = None,
                status: int = 200) -> Response:
    return page(request, "admin_import.html", {"years": known_years(queries, viewer), "result": result},
                viewer=viewer, status=status, headers={"Content-Security-Policy": IMPORT_CSP})


@router.get("/admin/import")
def import_form(request: Request, viewer: ViewerDep, queries: QueriesDep) -> Response:
    require_admin(viewer, "loading ledgers")
    return import_page(request, viewer, queries)


@router.get("/admin/import/template")
def import_template(request: Request, viewer: ViewerDep, ledger: LedgerDep,
                    year: Annotated[int, Query(ge=1900, le=2999)]) -> Response:
    """The ledger workbook for a year (api/documents/ledger_workbook.py `template`)."""
    require_admin(viewer, "the ledger template")

    data = template(ledger, year)
    return Response(data, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="ledger-{year}.xlsx"',
                             "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


def jsonl_import(ledger: AppraisalLedger, data: bytes, actor: str) -> dict[str, Any]:
    """A JSON Lines file as `appraisal import` takes it: in order, stopping at the first refused line;
    every line before it is kept. Lines naming no actor are the uploader's."""


    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return {"accepted": 0, "skipped": 0, "refused": {"where": "文件 file", "field": "(file)", "rule": "jsonl",
                                                         "message": "not UTF-8 text"}}
    numbers, bodies, bad = [], [], None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            body = json.loads(line)
        except ValueError as error:
            bad = {"where": f"第{number}行 line {number}", "field": "(line)", "rule": "jsonl",
                   "message": f"not valid JSON: {error}"}
            break
        if not isinstance(body, dict):
            bad = {"where": f"第{number}行 line {number}", "field": "(line)", "rule": "jsonl",
                   "message": "each line is one JSON object"}
            break
        numbers.append(number)
        bodies.append({"actor": actor, **body})  # as `appraisal import`: the line's actor, else the uploader
    try:
        outcomes = ledger.submit(bodies) if bodies else []
    except Refused as refused:
        error = refused.outcome.error
        assert error is not None
        line = numbers[refused.outcome.index]
        return {"accepted": refused.outcome.index, "skipped": 0,
                "refused": {"where": f"第{line}行 line {line}", "field": error.field, "rule": error.rule,
                            "message": error.message}}
    return {"accepted": len(outcomes), "skipped": sum(1 for o in outcomes if o.duplicate), "refused": bad}


@router.post("/admin/import")
async def upload(request: Request, viewer: ViewerDep, queries: QueriesDep, ledger: LedgerDep,
                 name: Annotated[str, Query(max_length=200)]) -> Response:
    """The file's bytes as the body (the page's script sends them, with the upload's progress)."""


    same_origin(request)
    require_admin(viewer, "loading ledgers")
    kind = UPLOAD_KINDS.get(FilePath(name).suffix.lower())
    if kind is None:
        raise Problem(415, "upload-kind", "upload a JSON Lines file (.jsonl) or an Excel workbook (.xlsx)", "file")
    data = await request.body()
    entry = log_entry(request)
    entry["command"] = f"import.{kind}"

    def run() -> dict[str, Any]:
        if kind == "jsonl":
            return jsonl_import(ledger, data, viewer.person)

        try:
            done = import_workbook(ledger, data, actor=viewer.person)
        except WorkbookError as error:
            return {"accepted": 0, "skipped": 0, "refused": {
                "where": error.place.describe(error.field) if error.place else "文件 file", "field": error.field,
                "rule": error.rule, "message": error.message}}
        refusal = done.refusal
        return {"accepted": done.accepted, "skipped": done.skipped, "refused": None if refusal is None else {
            "where": refusal.place.describe(refusal.field) if refusal.place else "", "field": refusal.field,
            "rule": refusal.rule, "message": refusal.message}}

    result = await run_in_threadpool(run)
    result["name"] = name
    if result["refused"]:
        result["refused"]["zh"] = RULES_ZH.get(result["refused"]["rule"], "此行未被接受。")
    entry.update(outcome="refused" if result["refused"] else "accepted")
    return await run_in_threadpool(lambda: import_page(request, viewer, queries, result=result,
                                                       status=422 if result["refused"] else 200))


# --- job 6: downloads ------------------------------------------------------------------------------------

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def office_download(ledger: AppraisalLedger, document: dict[str, Any], title: str, filename: str) -> Response:

    """The workbook of `document` under `title`, with the people's and departments' names: made once
    for the same inputs (a 3,000-person year's takes seconds) and kept by the digest of exactly
    those inputs, so a kept file is the file these inputs make, never another's."""
    labels = labels_for(ledger)
    people = {p: labels.person(p) for p in labels.people}
    departments = {d: labels.department(d) for d in labels.departments}
    inputs = orjson.dumps([title, document, people, departments], option=orjson.OPT_SORT_KEYS)
    data = kept(("workbook", sha256(inputs).hexdigest()), lambda: office_workbook(
        document, title=title, people=people, departments=departments, positions=POSITIONS,
        consequences=CONSEQUENCES))
    return Response(data, media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{filename}"',
                                                    "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


@router.get("/admin/years/{year}/results.xlsx")
def results_workbook(year: YearNumber, viewer: ViewerDep, queries: QueriesDep, ledger: LedgerDep) -> Response:
    """The year's current results (what `appraisal results --format xlsx` reads), in an office's layout."""
    require_admin(viewer, "the results workbook")
    document = queries.results(year)
    status = label(STATUS, document.get("status")).split(" ")[0]
    return office_download(ledger, document, f"{year}年度绩效考核结果（{status}）", f"results-{year}.xlsx")


@router.get("/admin/years/{year}/publication.xlsx")
def publication_workbook(year: YearNumber, viewer: ViewerDep, queries: QueriesDep, ledger: LedgerDep,
                         version: Annotated[int | None, Query(ge=1, le=10_000)] = None) -> Response:
    """A publication (公示) as published (the latest by default), in an office's layout."""
    require_admin(viewer, "the publication workbook")
    published = queries.publications(year)
    if not published:
        raise Problem(404, "publication-known", f"year {year} is not published yet", "year")
    chosen = version or published[-1]["version"]
    document = queries.publication(year, chosen)["document"]
    revised = f"（第{chosen}版 修订）" if chosen > 1 else ""
    return office_download(ledger, document, f"{year}年度绩效考核结果公示{revised}",
                           f"publicity-{year}-v{chosen}.xlsx")
