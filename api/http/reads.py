"""Query routes. Who sees what:

| query | admin, inspector | the subject (a department's head) | anyone else |
|---|---|---|---|
| results of a year | everything (and replays) | before publication: own entry only | the publication |
| explanation (full trace) | full | their breakdown (current) | 403 |
| breakdown | current, or any publication | current, or any publication | a publication, once published |
| appraisal's events | all | without others' ratings | the same, once published |
| person's history | all years | their own: all years | published years |
| department's history | all years | members and head: all years | published years |
| department ranking | all | before publication: own department | once published |
| publications (公示) | all versions | all versions | all versions |
| appeals | all | their own | their own |
| audit trail | yes | — | — |

A breakdown is `projections.documents.public_breakdown` (the one anonymity policy: no rater,
no individual score, group means of 3 raters or more) plus the caller's own ratings.

Every query takes `position` (read-your-writes) and answers with `X-Log-Position`.

No existence oracle: to a caller who sees not everything, what does not exist is answered as what
exists but is not theirs to see. An unknown appeal is 403 `appeal-access` like another's; an unknown
appraisal of a year not yet published is the 403 of another's appraisal (explanation, breakdown,
history); an unknown person or department has no published year, like one they may not see.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

from api.http import models as m
from api.http.auth import Principal, forbidden, require_reader
from api.http.deps import LedgerDep, PositionDep, PrincipalDep, QueriesDep
from api.http.problems import Problem
from api.http.read_side import Queries, SubjectInfo
from api.http.visibility import own_results, own_view, public_breakdown, public_history, staff_view
from domain.errors import NotFound

# Paths that are both a query and a page (api/pages): a browser asking for HTML without a bearer
# token gets the page, every other client the query's answer.
SHARED_WITH_PAGES = frozenset({"/audit"})


def wants_page(scope: Scope) -> bool:
    """A browser's request for a page: HTML accepted, no bearer token."""
    headers = dict(scope.get("headers") or [])
    if b"authorization" in headers:
        return False
    return b"text/html" in headers.get(b"accept", b"")


class QueryRoute(APIRoute):
    """A query's route. The queries are tried before the pages (api/server/app.py: a request walks
    past no page route); on a path shared with a page, this route leaves a browser's request to
    the page."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE and self.path in SHARED_WITH_PAGES and wants_page(scope):
            return Match.NONE, {}
        return match, child


router = APIRouter(tags=["queries 查询"], route_class=QueryRoute)

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemBody"}}}
RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": m.ProblemBody, "description": text, "content": PROBLEM} for code, text in {
        401: "未认证 — no valid token", 403: "无权查看 — the caller may not see this",
        404: "不存在 — unknown year, appraisal or appeal", 422: "参数无效 — invalid parameters",
        503: "暂不可用 — the store is unavailable, or `position` was not reached in time",
    }.items()
}

AppraisalKey = Annotated[str, Path(pattern=r"^\d{4}:[^\x00]+$", max_length=200,
                                   description="考核编号“年度:对象” — an appraisal", examples=["2025:p-002"])]
YearNumber = Annotated[int, Path(ge=1900, le=2999, description="考核年度 — the year", examples=[2025])]
PersonId = Annotated[str, Path(pattern=r"^[^\x00]+$", max_length=100, description="人员编号 — a person",
                               examples=["p-002"])]
DepartmentId = Annotated[str, Path(pattern=r"^[^\x00]+$", max_length=100, description="科室编号 — a department",
                                   examples=["d-01"])]
PUBLISHED = ("published", "final")


def answer(document: Any, position: int) -> JSONResponse:
    return JSONResponse(document, headers={"X-Log-Position": str(position)})


def answer_stored(text: str, fields: dict[str, str], position: int) -> Response:
    """A stored document (`projections.documents.json_text`: compact, keys sorted, UTF-8 as is, no
    floats) with `fields` added after its own keys, as bytes: what `answer({**document, **fields})`
    writes, byte for byte, without reading the document and writing it again (a year's results are
    about 100 KB). `fields` are not keys of the document, which is not empty."""
    added = "".join(f",{json.dumps(key)}:{json.dumps(value, ensure_ascii=False)}" for key, value in fields.items())
    body = text[:-1] + added + "}"  # a document is an object with keys of its own
    return Response(body.encode(), media_type="application/json", headers={"X-Log-Position": str(position)})


def _speaks_for(principal: Principal, subject: SubjectInfo) -> bool:
    return subject.speaker is not None and subject.speaker == principal.person


def _published(queries: Queries, year: int) -> bool:
    return queries.year(year).status in PUBLISHED


def explanation_refused() -> Problem:
    return forbidden("explanation-access", "an explanation is for admins, inspectors and the subject; "
                     "others read the breakdown once the year is published")


def before_publication(appraisal: str, year: int) -> Problem:
    return forbidden("breakdown-before-publication", f"{appraisal} is not the caller's and year {year} "
                     "is not published yet")


def visible_subject(queries: Queries, principal: Principal, appraisal: str, refusal: Problem | None = None) -> SubjectInfo:
    """The appraisal's subject. To a caller who sees not everything, an unknown appraisal is refused
    as another's is (`refusal`, or that of a year not yet published); once its year is published,
    every appraisal of it is public, and an unknown one is 404."""
    try:
        return queries.subject(appraisal)
    except NotFound:
        if principal.sees_everything:
            raise
        year = int(appraisal.partition(":")[0])
        if refusal is None and _published(queries, year):
            raise
        raise (refusal or before_publication(appraisal, year)) from None


@router.get("/me", response_model=m.Me, responses=RESPONSES, summary="当前调用者 — who am I")
def me(principal: PrincipalDep) -> JSONResponse:
    return JSONResponse({"person": principal.person, "grants": sorted(principal.grants),
                         "roles": principal.roles, "token_id": principal.token_id})


@router.get("/years/{year}/results", response_model=m.ResultsDocument, responses=RESPONSES,
            summary="年度考核结果 — the year's results",
            description="Admins and inspectors: the whole export of COMMANDS.md (with `scheme=ID@VERSION`, "
                        "a replay recording nothing). Others: the publication once the year is "
                        "published; before that, their own entry only.")
def year_results(year: YearNumber, principal: PrincipalDep, queries: QueriesDep, position: PositionDep,
                 scheme: Annotated[str | None, Query(
                     pattern=r"^[^@\x00]+@[1-9]\d{0,5}$", description="按此方案版本重算(不记录) — replay "
                     "under ID@VERSION, recording nothing (admin, inspector)")] = None) -> JSONResponse:
    if principal.sees_everything:
        if scheme is None:
            return answer_stored(queries.results_text(year), {"view": "all"}, position)
        scheme_id, _, version = scheme.partition("@")
        return answer({**queries.results(year, (scheme_id, int(version))), "view": "all"}, position)
    if scheme is not None:
        raise forbidden("role-required", "a replay under another scheme version needs the admin or "
                        "inspector grant", field="scheme")
    info = queries.year(year)
    if info.published is not None:
        return answer({**info.published, "status": info.status, "view": "published"}, position)
    person = queries.person(principal.person) or {}
    return answer(own_results(queries.results(year), principal.person, person.get("department")), position)


@router.get("/appraisals/{appraisal}/explanation", response_model=m.Explanation | m.Breakdown, responses=RESPONSES,
            summary="得分说明 — how a score arose (full trace)",
            description="Admins and inspectors: the full trace with every event. The subject: the "
                        "breakdown (no rater, no individual score, group means of 3 raters or more) "
                        "with their own ratings. With `as_of` "
                        "and/or `known_at`: as of those times, computed from the log.")
def explanation(appraisal: AppraisalKey, principal: PrincipalDep, queries: QueriesDep, position: PositionDep,
                as_of: Annotated[datetime | None, Query(description="记录时间截至:系统当时所示 — as the "
                                                        "system showed it at this recording time (ISO 8601 "
                                                        "with an offset)")] = None,
                known_at: Annotated[datetime | None, Query(description="业务时间截至:当时已发生的事实 — "
                                                           "with the facts that had happened by this business "
                                                           "time (ISO 8601 with an offset)")] = None,
                ) -> JSONResponse:
    for name, value in (("as_of", as_of), ("known_at", known_at)):
        if value is not None and value.utcoffset() is None:
            raise Problem(422, "request-parameters", "a time needs an offset (e.g. 2025-06-30T10:00:00+08:00)",
                          field=name)
    subject = visible_subject(queries, principal, appraisal, explanation_refused())
    if not (principal.sees_everything or _speaks_for(principal, subject)):
        raise explanation_refused()
    if as_of is None and known_at is None:
        document = queries.explanation(appraisal)
    else:
        document = queries.explanation_at(appraisal, as_of, known_at)
    if principal.sees_everything:
        return answer({**document, "view": "full"}, position)
    return answer(own_view(document, principal.person), position)


@router.get("/appraisals/{appraisal}/breakdown", response_model=m.Breakdown, responses=RESPONSES,
            summary="公开得分明细 — public breakdown",
            description="Every figure, the itemised bonus and deduction list, rater groups as means "
                        "(of groups of 3 raters or more), no rater and no individual score; with the "
                        "caller's own ratings. The subject, admins and inspectors: the current figures "
                        "at any time; anyone: as published (the latest publication, or `version`) "
                        "once the year is published.")
def breakdown(appraisal: AppraisalKey, principal: PrincipalDep, queries: QueriesDep, position: PositionDep,
              version: Annotated[int | None, Query(ge=0, le=100_000, description=(
                  "第几次公示(0 当前) — as in the k-th publication (0: the current figures, for the "
                  "subject, admins and inspectors); default: current for them, the latest "
                  "publication for others"))] = None) -> JSONResponse:
    subject = visible_subject(queries, principal, appraisal)
    current = principal.sees_everything or _speaks_for(principal, subject)
    if not current:
        if not _published(queries, subject.year):
            raise before_publication(appraisal, subject.year)
        if version == 0:
            raise forbidden("breakdown-published-only", f"{appraisal} is someone else's: its breakdown "
                            "is seen as published (leave `version` out, or give a publication)",
                            field="version")
        if version is None:
            version = len(queries.publications(subject.year))
    explained = queries.explanation(appraisal)
    version = version or 0
    shown = public_breakdown(explained) if version == 0 else queries.breakdown(appraisal, version)
    return answer({**staff_view(shown, explained, principal.person), "version": version}, position)


@router.get("/appraisals/{appraisal}/history", response_model=m.History, responses=RESPONSES,
            summary="考核事件记录 — an appraisal's events",
            description="Every event recorded on the appraisal, in order. Admins and inspectors: all; "
                        "others (the subject, anyone once published): without other raters' ratings.")
def history(appraisal: AppraisalKey, principal: PrincipalDep, queries: QueriesDep,
            position: PositionDep) -> JSONResponse:
    subject = visible_subject(queries, principal, appraisal)
    events = queries.history(appraisal)
    if principal.sees_everything:
        return answer({"appraisal": appraisal, "events": events, "view": "full"}, position)
    if not (_speaks_for(principal, subject) or _published(queries, subject.year)):
        raise before_publication(appraisal, subject.year)
    return answer({"appraisal": appraisal, "events": public_history(events, principal.person),
                   "view": "breakdown"}, position)


@router.get("/appeals", response_model=m.AppealList, responses=RESPONSES, summary="申诉 — appeals of a year",
            description="Admins and inspectors: every appeal; others: their own.")
def appeals(principal: PrincipalDep, queries: QueriesDep, position: PositionDep,
            year: Annotated[int, Query(ge=1900, le=2999, description="考核年度 — the year")],
            status: Annotated[Literal["open", "decided", "overdue"] | None, Query(
                description="按状态筛选 — only those with this status")] = None) -> JSONResponse:
    found = queries.appeals(year)
    if not principal.sees_everything:
        found = [a for a in found if a["appellant"] == principal.person]
    if status is not None:
        found = [a for a in found if a["status"] == status]
    return answer({"year": year, "appeals": found}, position)


@router.get("/appeals/{appeal}", response_model=m.AppealOut, responses=RESPONSES,
            summary="一项申诉 — one appeal")
def appeal(appeal: Annotated[str, Path(pattern=r"^[^\x00]+$", max_length=200)], principal: PrincipalDep,
           queries: QueriesDep, position: PositionDep) -> JSONResponse:
    try:
        found = queries.appeal(appeal)
    except NotFound:
        if principal.sees_everything:
            raise
        found = None  # refused as another's is: no existence oracle
    if found is None or not (principal.sees_everything or found["appellant"] == principal.person):
        raise forbidden("appeal-access", "an appeal is seen by its appellant, admins and inspectors")
    return answer(found, position)


@router.get("/audit", response_model=m.AuditTrail, responses=RESPONSES, summary="审计日志 — the audit trail",
            description="The event log in order, every event with its actor, business and recording "
                        "times (`backdated`: the business time is more than 7 days before the "
                        "recording time) and fields; only an appraisal's (`appraisal`), an actor's "
                        "(`actor`) and/or the back-dated ones (`backdated=true`). Admins and inspectors.")
def audit(principal: PrincipalDep, queries: QueriesDep, position: PositionDep,
          after: Annotated[int, Query(ge=0, le=2**62, description="从此日志位置之后 — events after this position")] = 0,
          limit: Annotated[int, Query(ge=1, le=1000, description="最多条数 — at most this many")] = 100,
          appraisal: Annotated[str | None, Query(pattern=r"^\d{4}:[^\x00]+$", max_length=200, description=(
              "仅此考核 — only this appraisal's events (年度:对象)"), examples=["2025:p-002"])] = None,
          actor: Annotated[str | None, Query(pattern=r"^[^\x00]+$", max_length=200, description=(
              "仅此操作人 — only this actor's events"))] = None,
          backdated: Annotated[bool | None, Query(description=(
              "true 仅补录(业务时间早于记录时间 7 天以上)的事件;false 仅其余 — true: only back-dated "
              "events (business time more than 7 days before the recording time); false: only the others"))] = None,
          ) -> JSONResponse:
    require_reader(principal, "the audit trail")
    events = queries.audit(after, limit, appraisal=appraisal, actor=actor, backdated=backdated)
    following = events[-1]["position"] if len(events) == limit else None
    return answer({"after": after, "next": following, "events": events}, position)


@router.get("/people/{person}/history", response_model=m.PersonHistory, responses=RESPONSES,
            summary="个人历年考核 — a person's years",
            description="Score, rank, tier, grade and status of every year. The person, admins and "
                        "inspectors: every year; others: published years only.")
def person_history(person: PersonId, principal: PrincipalDep, queries: QueriesDep,
                   position: PositionDep) -> JSONResponse:
    if queries.person(person) is None:
        if not principal.sees_everything:  # as one with no published year: no existence oracle
            return answer({"person": person, "years": [], "view": "published"}, position)
        raise NotFound("person", f"no person {person}", rule="person-known")
    years = queries.person_history(person)
    if principal.sees_everything or principal.person == person:
        return answer({"person": person, "years": years, "view": "all"}, position)
    return answer({"person": person, "years": [y for y in years if y["status"] in PUBLISHED],
                   "view": "published"}, position)


@router.get("/departments/{department}/history", response_model=m.DepartmentHistory, responses=RESPONSES,
            summary="科室历年考核 — a department's years",
            description="Score, rank, staffing cut and status of every year. Admins, inspectors and the "
                        "department's own people (its head included): every year; others: published "
                        "years only.")
def department_history(department: DepartmentId, principal: PrincipalDep, queries: QueriesDep,
                       position: PositionDep) -> JSONResponse:
    if queries.department(department) is None:
        if not principal.sees_everything:  # as one with no published year: no existence oracle
            return answer({"department": department, "years": [], "view": "published"}, position)
        raise NotFound("department", f"no department {department}", rule="department-known")
    years = queries.department_history(department)
    if principal.sees_everything or _member_of(queries, principal, department):
        return answer({"department": department, "years": years, "view": "all"}, position)
    return answer({"department": department, "years": [y for y in years if y["status"] in PUBLISHED],
                   "view": "published"}, position)


def _member_of(queries: Queries, principal: Principal, department: str) -> bool:
    person = queries.person(principal.person) or {}
    return person.get("department") == department


@router.get("/years/{year}/departments", response_model=m.DepartmentRanking, responses=RESPONSES,
            summary="科室排名 — the departments' ranking",
            description="The departments by rank, with the staffing cut. Admins and inspectors: always; "
                        "others: once the year is published; before that, their own department only.")
def department_ranking(year: YearNumber, principal: PrincipalDep, queries: QueriesDep,
                       position: PositionDep) -> JSONResponse:
    ranking = queries.department_ranking(year)
    if principal.sees_everything:
        view = "all"
    elif _published(queries, year):
        view = "published"
    else:
        own = (queries.person(principal.person) or {}).get("department")
        ranking, view = [row for row in ranking if row["department"] == own], "own"
    return answer({"year": year, "departments": ranking, "view": view}, position)


@router.get("/years/{year}/publications", response_model=m.PublicationList, responses=RESPONSES,
            summary="公示版本 — the year's publications",
            description="Every publication of the year (the first, then a revision per change after "
                        "it), oldest first; the documents at `/years/{year}/publications/{version}`. "
                        "Anyone: a publication is public.")
def publications(year: YearNumber, principal: PrincipalDep, queries: QueriesDep,
                 position: PositionDep) -> JSONResponse:
    return answer({"year": year, "publications": queries.publications(year)}, position)


@router.get("/years/{year}/publications/{version}", response_model=m.PublicationDocument, responses=RESPONSES,
            summary="一次公示 — one publication, as published",
            description="The results document exactly as published in that version; every version "
                        "stays readable. Anyone.")
def publication(year: YearNumber, version: Annotated[int, Path(ge=1, le=100_000, description=(
                    "第几次公示 — the publication's number"))],
                principal: PrincipalDep, queries: QueriesDep, position: PositionDep) -> JSONResponse:
    return answer(queries.publication(year, version), position)


@router.get("/health", tags=["service 服务"], summary="健康检查 — is the service up",
            responses={503: RESPONSES[503]})
def health(queries: QueriesDep, ledger: LedgerDep) -> dict[str, Any]:
    """`position`: where the read side is; `log`: where the log ends. `status` is `degraded` (still
    200: the service answers, and everything else is current) while the read side has set events
    aside that it cannot process (`set_aside`: each one's log position, stage and error type; the
    appraisal or year it holds back and the error's message are on the admin and inspector pages,
    since a message may quote what a command carried)."""
    held = [{"position": row["position"], "stage": row["stage"], "error": row["error"].partition(":")[0],
             "first_seen": row["first_seen"]} for row in queries.set_aside()]
    answer: dict[str, Any] = {"status": "degraded" if held else "ok", "position": queries.position(),
                              "log": ledger.event_count()}
    if held:
        answer["set_aside"] = held
    return answer
