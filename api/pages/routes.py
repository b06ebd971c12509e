"""The server-rendered pages (Chinese first, English beside it). They read through the same
`Queries` as the JSON API and apply the same rules of who sees what (api/http/reads.py); an appeal
filed on a page goes through the same command path as `POST /appraisals/{key}/appeals`.

| page | who |
|---|---|
| `/` sign in, `POST /logout` | anyone |
| `/home` | anyone signed in: their appraisals, years and appeals |
| `/years/{year}` | admin, inspector: everything; others: the publication, before it their own entry |
| `/appraisals/{key}` | admin, inspector: full trace and events; the subject: their breakdown; others: the breakdown once published |
| `/people/{person}` | the person, admin, inspector: their years as charts and a table, the appeals they filed |
| `/audit`, `/audit.csv` (api/pages/inspector.py) | admin, inspector |
"""

from __future__ import annotations

import secrets
from datetime import date
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from api.http.auth import Principal, require_reader
from api.http.deps import (
    CredentialsDep,
    LedgerDep,
    PositionDep,
    QueriesDep,
    SettingsDep,
    client_address,
    log_entry,
    throttled,
)
from api.http.problems import Problem, from_domain
from api.http.read_side import Queries, SubjectInfo
from api.http.reads import before_publication, visible_subject
from api.http.visibility import own_results, own_view, public_history, staff_view
from api.http.writes import authorize, business_time, check_text, submit
from api.ledger import AppraisalLedger
from api.pages.charts import history_series, line_chart
from api.pages.inspector import LookBack, trace_rows
from api.pages.labels import APPEAL_GROUNDS, POSITIONS, RULES_ZH, STATUS, label, labels_for
from api.pages.layout import page, sign_in_page
from api.pages.session import (
    COOKIE,
    FormDep,
    PageRoute,
    ViewerDep,
    clear_session,
    safe_next,
    same_origin,
    set_session,
)
from api.pages.views import Explained, Rows, appeal_rows, appeal_windows, year_view
from domain.errors import DomainError, NotFound

router = APIRouter(route_class=PageRoute, include_in_schema=False)

STATIC = FilePath(__file__).parent / "static"

AppraisalKey = Annotated[str, Path(pattern=r"^\d{4}:[^\x00/]+$", max_length=200)]
YearNumber = Annotated[int, Path(ge=1900, le=2999)]


# --- reading, with the rules of api/http/reads.py ---------------------------------------------------

def speaks_for(viewer: Principal, subject: SubjectInfo) -> bool:
    return subject.speaker is not None and subject.speaker == viewer.person


def is_published(queries: Queries, year: int) -> bool:
    return queries.year(year).status in ("published", "final")


def year_document(queries: Queries, viewer: Principal, year: int) -> dict[str, Any]:
    """What `GET /years/{year}/results` answers this viewer."""
    if viewer.sees_everything:
        return {**queries.results(year), "view": "all"}
    info = queries.year(year)
    if info.published is not None:
        return {**info.published, "status": info.status, "view": "published"}
    person = queries.person(viewer.person) or {}
    return own_results(queries.results(year), viewer.person, person.get("department"))


def appraisal_document(queries: Queries, viewer: Principal, key: str,
                       back: LookBack | None = None) -> tuple[dict[str, Any], SubjectInfo]:
    """What the API answers this viewer for an appraisal: the explanation (admin, inspector; as of
    `back`'s times when given), the current breakdown with their own ratings (the subject), the
    latest publication's breakdown (anyone, once the year is published)."""
    subject = visible_subject(queries, viewer, key)
    if back is not None and back.active:
        require_reader(viewer, "looking back")
        return {**back.explanation(queries, key), "view": "full"}, subject
    if viewer.sees_everything:
        return {**queries.explanation(key), "view": "full"}, subject
    if speaks_for(viewer, subject):
        return own_view(queries.explanation(key), viewer.person), subject
    if not is_published(queries, subject.year):
        raise before_publication(key, subject.year)
    version = len(queries.publications(subject.year))
    shown = staff_view(queries.breakdown(key, version), queries.explanation(key), viewer.person)
    return {**shown, "version": version}, subject


def item_records(queries: Queries, viewer: Principal, key: str) -> dict[str, dict[str, Any]]:
    """Each recorded event's command id (a breakdown names items by reference; an appeal names the
    command), who recorded it, its business and recording time, by reference: from the
    appraisal's events as `GET /appraisals/{key}/history` shows them to `viewer` (others' ratings
    left out: raters stay anonymous; recorders do not). One read of the appraisal's events."""
    events = public_history(queries.history(key), viewer.person)
    return {f"{key}#{e['version']}": {"command": e.get("command_id"), "actor": e["data"].get("actor"),
                                      "at": e["data"].get("at"), "recorded_at": e.get("recorded_at"),
                                      "backdated": e.get("backdated")} for e in events}


def visible_appeals(queries: Queries, viewer: Principal, year: int, key: str | None = None) -> list[dict[str, Any]]:
    """The appeals of a year (of one appraisal: `key`) the viewer may read: all (admin, inspector),
    else their own. Read by appraisal or by appellant, never the whole year's for one person."""
    if key is not None:
        found = queries.appeals_of(appraisal=key)
    elif viewer.sees_everything:
        found = queries.appeals(year)
    else:
        found = [a for a in queries.appeals_of(appellant=viewer.person) if a["appraisal"].startswith(f"{year}:")]
    return [a for a in found if viewer.sees_everything or a["appellant"] == viewer.person]


def known_years(queries: Queries, viewer: Principal) -> list[int]:
    """The years to offer: the viewer's own (their history), and the years around this one that
    have appraisals (the queries do not list years)."""
    found = {int(row["year"]) for row in queries.person_history(viewer.person)}
    this = date.today().year
    for year in range(this - 5, this + 2):
        if year in found:
            continue
        try:
            queries.year(year)
        except NotFound:
            continue
        found.add(year)
    return sorted(found)


def department_ranking(queries: Queries, viewer: Principal, year: int) -> list[dict[str, Any]]:
    """What `GET /years/{year}/departments` answers this viewer."""
    ranking = queries.department_ranking(year)
    if viewer.sees_everything or is_published(queries, year):
        return ranking
    own = (queries.person(viewer.person) or {}).get("department")
    return [row for row in ranking if row["department"] == own]


# --- sign in, sign out -------------------------------------------------------------------------------

@router.get("/")
def sign_in_form(request: Request, credentials: CredentialsDep,
                 next: Annotated[str | None, Query(max_length=500)] = None) -> Response:
    token = request.cookies.get(COOKIE)
    if token:
        try:
            credentials.verify(token)
        except Problem:
            response = sign_in_page(request, next_path=safe_next(next, ""))
            clear_session(response)
            return response
        return RedirectResponse(safe_next(next), status_code=303)
    return sign_in_page(request, next_path=safe_next(next, ""))


@router.post("/")
def sign_in(request: Request, credentials: CredentialsDep, form: FormDep) -> Response:
    """The token entered opens a session: a token of its own in the cookie (api/http/auth.py)."""
    token = form.get("token", "").strip()
    next_path = safe_next(form.get("next"), "")
    throttle = throttled(request)
    try:
        if not token:
            raise Problem(401, "token-missing", "enter a token (from `appraisal token create`)")
        principal = credentials.verify(token)
    except Problem as problem:
        if token:
            throttle.failed(client_address(request))
        log_entry(request).update(outcome="refused", rule=problem.rule)
        return sign_in_page(request, status=401, reason=problem.detail, rule=problem.rule, next_path=next_path)
    log_entry(request)["actor"] = principal.person
    response = RedirectResponse(next_path or "/home", status_code=303)
    set_session(response, request, credentials.open_session(principal))
    return response


@router.post("/logout")
def sign_out(request: Request, credentials: CredentialsDep) -> Response:
    """The session's token is revoked (the old cookie no longer works anywhere), the cookie cleared."""
    same_origin(request)
    token = request.cookies.get(COOKIE)
    if token:
        credentials.end_session(token, by="sign-out")
    response = RedirectResponse("/", status_code=303)
    clear_session(response)
    return response


# The pages' own stylesheets and script (api/pages/static), by name: nothing else is served from there.
ASSETS = {"pages.css": "text/css", "admin.css": "text/css", "admin-rules.css": "text/css",
          "notice.css": "text/css", "admin-import.js": "text/javascript"}


@router.get("/assets/{name}")
def asset(name: str) -> Response:
    """A file of api/pages/static, cached for five minutes; any other name is 404."""
    if name not in ASSETS:
        raise NotFound("asset", f"no asset {name!r}")
    return FileResponse(STATIC / name, media_type=ASSETS[name],
                        headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"})


@router.get("/favicon.ico")
def favicon() -> Response:
    return Response(status_code=204, headers={"Cache-Control": "max-age=86400"})


# --- home ----------------------------------------------------------------------------------------------

@router.get("/home")
def home(request: Request, viewer: ViewerDep, queries: QueriesDep, ledger: LedgerDep) -> Response:
    labels = labels_for(ledger)
    person = queries.person(viewer.person) or {}
    years = []
    mine = [] if viewer.is_inspector else appeal_rows(queries.appeals_of(appellant=viewer.person), labels)
    for year in sorted(known_years(queries, viewer), reverse=True):
        info = queries.year(year)
        own = []
        for subject in (viewer.person, person.get("department") if person.get("position") == "department_head" else None):
            if not subject:
                continue
            key = f"{year}:{subject}"
            try:
                queries.subject(key)
            except NotFound:
                continue
            own.append({"key": key, "name": labels.department(subject) if subject != viewer.person
                        else labels.person(subject)})
        years.append({"year": year, "status": info.status, "status_label": label(STATUS, info.status), "own": own,
                      "appeals": [a for a in mine if a["appraisal"].startswith(f"{year}:")]})
    return page(request, "home.html", {"person": person, "name": labels.person(viewer.person),
                                       "position_label": label(POSITIONS, person.get("position")),
                                       "department": labels.department(person.get("department")),
                                       "years": years}, viewer=viewer)


# --- a person's years ----------------------------------------------------------------------------------

PersonId = Annotated[str, Path(pattern=r"^[^\x00/]+$", max_length=100)]


@router.get("/people/{person}")
def person_page(request: Request, person: PersonId, viewer: ViewerDep, queries: QueriesDep,
                ledger: LedgerDep) -> Response:
    """A person's years as charts drawn on the server (total, rank, tier, grade; api/pages/charts.py)
    with the same figures in a table, and the appeals they filed with their outcome. The person,
    admins and inspectors; anyone else is refused, whether the person exists or not (no existence
    oracle). Two reads: the person's history and their appeals (one explanation per appraisal
    appealed)."""
    if not (viewer.sees_everything or viewer.person == person):
        raise Problem(403, "history-access", f"{person}'s years and appeals are for them, admins and "
                      "inspectors only", field="person")
    labels = labels_for(ledger)
    years = queries.person_history(person)
    if viewer.sees_everything and not years and queries.person(person) is None:
        raise NotFound("person", f"no person {person}", rule="person-known")
    charts = [{"title": series.title, "svg": line_chart(series)} for series in history_series(years)] if years else []
    rows = [{**row, "position_label": label(POSITIONS, row.get("position")), "status_label": label(STATUS, row["status"]),
             "department_name": labels.department(row.get("department")),
             "key": f"{row['year']}:{person}"} for row in years]
    return page(request, "person.html", {"person": person, "name": labels.person(person), "years": rows,
                                         "charts": charts,
                                         "appeals": appeal_rows(queries.appeals_of(appellant=person), labels)},
                viewer=viewer)


# --- a year's results ----------------------------------------------------------------------------------

PageNumber = Annotated[int, Query(alias="page", ge=1, le=100_000)]
DepartmentFilter = Annotated[str, Query(max_length=100)]
NameFilter = Annotated[str, Query(max_length=100)]


@router.get("/years/{year}")
def year_page(request: Request, year: YearNumber, viewer: ViewerDep, queries: QueriesDep,
              ledger: LedgerDep, page_number: PageNumber = 1, department: DepartmentFilter = "",
              q: NameFilter = "") -> Response:
    """The year's results, a page of `PAGE_ROWS` people at a time in the order of the ranking
    (`page`), of one department (`department`) and/or by name (`q`)."""
    document = year_document(queries, viewer, year)
    scheme = document.get("scheme") or {}
    labels = labels_for(ledger, f"{scheme.get('id')}@{scheme.get('version')}" if scheme else None)
    ranking = department_ranking(queries, viewer, year)
    rows = Rows(page_number, department.strip(), q.strip(), f"/years/{year}")
    return page(request, "year.html", {"y": year_view(document, labels, ranking, rows), "own_id": viewer.person},
                viewer=viewer)


# --- an appraisal --------------------------------------------------------------------------------------

def appraisal_context(queries: Queries, ledger: AppraisalLedger, viewer: Principal, key: str,
                      back: LookBack | None = None) -> dict[str, Any]:
    document, subject = appraisal_document(queries, viewer, key, back)
    labels = labels_for(ledger, document.get("scheme"))
    own = speaks_for(viewer, subject) and not viewer.sees_everything
    may_appeal = speaks_for(viewer, subject) and not viewer.is_inspector and not (back and back.active)
    explained = Explained(document, labels, item_records(queries, viewer, key) if own or may_appeal else None)
    itemised = explained.itemised()
    if may_appeal:
        publications = queries.publications(subject.year)
        appeal_windows(itemised, first_publication=publications[0]["at"] if publications else None,
                       window_days=labels.appeal_window_days, now=ledger.clock(),
                       final=document.get("status") == "final")
    return {
        "key": key, "doc": document, "x": explained, "subject": explained.subject(),
        "summary": explained.summary(), "formula": explained.formula(), "tree": explained.tree(),
        "itemised": itemised, "struck": explained.struck_items(),
        "not_applicable": explained.not_applicable(), "events": explained.event_rows(),
        "trace": trace_rows(document, labels) if viewer.sees_everything else None,
        "appeals": appeal_rows(visible_appeals(queries, viewer, subject.year, key), labels),
        "may_appeal": may_appeal, "full": viewer.sees_everything,
        "hidden": (document.get("hidden") or {}).get("ratings_by_others", 0),
        "form_id": "page-appeal-" + secrets.token_hex(8), "appeal_window_days": labels.appeal_window_days,
        "back": back or LookBack(), "may_look_back": viewer.sees_everything,
    }


@router.get("/appraisals/{key}")
def appraisal_page(request: Request, key: AppraisalKey, viewer: ViewerDep, queries: QueriesDep,
                   ledger: LedgerDep, position: PositionDep,
                   filed: Annotated[str | None, Query(max_length=200)] = None,
                   as_of: Annotated[str | None, Query(max_length=40)] = None,
                   known_at: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    """`position`: right after the viewer's own appeal (the form's redirect names its position),
    the page waits for the read side to hold it. `as_of`, `known_at`: looking back (admin,
    inspector; api/pages/inspector.py)."""
    context = appraisal_context(queries, ledger, viewer, key, LookBack(as_of, known_at))
    context["filed"] = filed if filed and any(a["appeal"] == filed for a in context["appeals"]) else None
    return page(request, "appraisal.html", context, viewer=viewer)


@router.post("/appraisals/{key}")
def file_appeal(request: Request, key: AppraisalKey, viewer: ViewerDep, form: FormDep, queries: QueriesDep,
                ledger: LedgerDep, settings: SettingsDep) -> Response:
    """The page's appeal form: the command `POST /appraisals/{key}/appeals` takes, as the viewer."""
    body = {"type": "appeal.file", "appraisal": key, "id": form.get("id") or "page-appeal-" + secrets.token_hex(8),
            "target": form.get("target", ""), "grounds": form.get("grounds", "").strip()}
    entry = log_entry(request)
    entry["command"] = "appeal.file"
    try:
        check_text(body)
        authorize(viewer, body)
        body = business_time(viewer, body, ledger.clock())  # no `at` from a page: the server's clock
        outcome = submit(ledger, body, viewer.person)
    except (Problem, DomainError) as error:
        problem = error if isinstance(error, Problem) else from_domain(error)
        entry.update(outcome="refused", rule=problem.rule, field=problem.field)
        context = appraisal_context(queries, ledger, viewer, key)
        zh, detail = RULES_ZH.get(problem.rule, "申诉未被接受。"), problem.detail
        if problem.rule == "command-fields" and problem.field == "grounds":
            zh, detail = APPEAL_GROUNDS["long" if body["grounds"] else "blank"]
        context["refusal"] = {"target": body["target"], "grounds": body["grounds"], "status": problem.status,
                              "zh": zh, "detail": detail,
                              "rule": problem.rule, "field": problem.field,
                              "inline": any(body["target"] in row["commands"] for row in context["itemised"])}
        return page(request, "appraisal.html", context, status=problem.status, viewer=viewer)
    position = int(outcome.answer.get("position") or ledger.event_count())
    entry.update(outcome="duplicate" if outcome.duplicate else "accepted", position=position)
    # Read your write: the page it goes to waits (on the event loop) for the read side to reach it.
    return RedirectResponse(f"/appraisals/{key}?filed={body['id']}&position={position}#appeals", status_code=303)
