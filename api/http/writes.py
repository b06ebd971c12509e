"""Command routes: every command of COMMANDS.md at a resource-style path, with the same bodies, and
all of them at `POST /commands`. Who may send what:

| command | who |
|---|---|
| scheme.publish, org.department, org.person, appraisal.open, appeal.decide, year.* | admin grant |
| measurement.record, occurrence.record, survey.record, adjustment.apply, veto.impose | recorder grant |
| rating.record | anyone, as themself (`rater` absent or theirs); the domain checks the role (§5) |
| appeal.file | anyone; the domain checks that they are the subject (§8) |

An inspector's token writes nothing. The actor of every command is the token's person. Only a
caller with the admin or recorder grant names a business time (`at`); anyone else's is the
server's clock (`business_time`, COMMANDS.md § Envelope).
An accepted command answers 201 with its log position; a re-sent one (same id and content) 200
with the first answer; a refusal problem+json (see api/http/problems.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.http import models as m
from api.http.auth import Principal, forbidden, require_grant, require_writer
from api.http.deps import BearerDep, caller, log_entry
from api.http.problems import WRITE_CONFLICTS, Problem, conflict_problem, from_domain
from api.ledger import AppraisalLedger, Outcome, Refused
from api.settings import Settings
from domain.commands import check_text
from domain.errors import DomainError
from domain.times import caller_time

router = APIRouter(tags=["commands 命令"])

GRANT_NEEDED = {
    "scheme.publish": "admin", "org.department": "admin", "org.person": "admin",
    "appraisal.open": "admin", "appeal.decide": "admin", "year.tie_break": "admin",
    "year.publish": "admin", "year.finalize": "admin", "year.adopt": "admin",
    "measurement.record": "recorder", "occurrence.record": "recorder", "survey.record": "recorder",
    "adjustment.apply": "recorder", "veto.impose": "recorder",
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": m.CommandAnswer, "description": "重复提交:未再次记录 — re-sent: the first answer, nothing recorded"},
    401: {"model": m.ProblemBody, "description": "未认证 — no valid token"},
    403: {"model": m.ProblemBody, "description": "无权操作 — the caller may not do this"},
    404: {"model": m.ProblemBody, "description": "对象不存在 — something named does not exist"},
    409: {"model": m.ProblemBody, "description": "冲突 — clashes with the record, or a write conflict survived the retries"},
    422: {"model": m.ProblemBody, "description": "拒绝 — invalid input: names the field and the rule"},
    503: {"model": m.ProblemBody, "description": "暂不可用 — the store is unavailable"},
}
for _answer in RESPONSES.values():
    if _answer["model"] is m.ProblemBody:
        _answer["content"] = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemBody"}}}

IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=200,
    description="命令编号的另一种写法(正文无 id 时使用) — the command id, when the body has none")]
AppraisalKey = Annotated[str, Path(
    pattern=r"^\d{4}:[^\x00]+$", max_length=200,
    description="考核编号“年度:对象” — an appraisal, \"<year>:<subject id>\"", examples=["2025:p-002"])]
YearNumber = Annotated[int, Path(ge=1900, le=2999, description="考核年度 — the year", examples=[2025])]
Ident = Annotated[str, Path(pattern=r"^[^\x00]+$", max_length=100, description="编号 — an id")]


def authorize(principal: Principal, body: dict[str, Any]) -> None:
    """The route layer's part of the roles; the domain checks raters and appellants."""
    kind = body["type"]
    require_writer(principal, kind)
    grant = GRANT_NEEDED.get(kind)
    if grant is not None:
        require_grant(principal, grant, kind)
    if kind == "rating.record" and body.get("rater") not in (None, principal.person):
        raise forbidden("rater-is-caller", f"{principal.person} may record only their own ratings "
                        f"(rater {body['rater']!r})", field="rater")


def business_time(principal: Principal, body: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The command as the caller may send it at `now` (COMMANDS.md § Envelope): the business time
    given by a caller with the admin or recorder grant is kept; anyone else's is the server's
    clock, so their `at` is dropped, and refused (422 `business-time`) when more than 5 minutes
    away from `now`. Every command sent over HTTP or from a page goes through here."""
    at = body.get("at")
    if isinstance(at, str):
        try:
            at = datetime.fromisoformat(at)
        except ValueError:
            return body  # not a time: the command's own validation refuses it
    if not isinstance(at, datetime) or at.utcoffset() is None:
        return body  # none given; or without an offset, which the command's validation refuses
    try:
        kept = caller_time(at, now, principal.grants)
    except DomainError as error:
        raise from_domain(error) from None
    return body if kept is not None else {k: v for k, v in body.items() if k != "at"}


def hidden_existence(body: dict[str, Any], problem: Problem) -> Problem:
    """No existence oracle: an appeal on an appraisal that does not exist is refused as one on
    another's is, with the same words (the domain's would name the other's appellant)."""
    if body["type"] == "appeal.file" and problem.rule in ("appeal-by-subject", "appraisal-open"):
        return forbidden("appeal-by-subject", f"only the subject may appeal an item of {body.get('appraisal')}",
                         field="actor")
    return problem


def submit(ledger: AppraisalLedger, body: dict[str, Any], actor: str) -> Outcome:
    """One command through the ledger, which retries a conflicting write (api/ledger/application.py: the one
    retry layer); a conflict that outlasted its attempts is a 409, a store that stayed unavailable a
    503 (api/http/problems.py)."""
    try:
        return ledger.submit_one(body, actor=actor)
    except Refused as refused:
        assert refused.outcome.error is not None
        raise from_domain(refused.outcome.error) from None
    except WRITE_CONFLICTS:
        raise conflict_problem() from None


class CommandRunner:
    """What every command route does: merge the path into the body, check who may send it, submit
    it as the caller, answer with its log position."""

    def __init__(self, request: Request, ledger: AppraisalLedger, settings: Settings, principal: Principal,
                 idempotency_key: str | None = None) -> None:
        self.request, self.ledger, self.settings = request, ledger, settings
        self.principal, self.idempotency_key = principal, idempotency_key

    def run(self, kind: str, body: BaseModel | dict[str, Any], **path: Any) -> JSONResponse:
        """On the route's worker thread (plain `def` routes): checked, submitted, answered."""
        data = self.command(kind, body, path)
        entry = log_entry(self.request)
        entry["command"] = kind
        authorize(self.principal, data)
        data = business_time(self.principal, data, self.ledger.clock())
        return self.submit(data)

    def command(self, kind: str, body: BaseModel | dict[str, Any], path: dict[str, Any]) -> dict[str, Any]:
        """The command's body: the path merged in, the Idempotency-Key as its id, text checked."""
        data = body if isinstance(body, dict) else body.model_dump(exclude_unset=True)
        data = {**data, "type": data.get("type") or kind}
        if data["type"] != kind:
            raise Problem(422, "path-mismatch", f"this path takes {kind} commands", "type")
        for field, value in path.items():
            if field in data and data[field] is not None and data[field] != value:
                raise Problem(422, "path-mismatch", f"{data[field]!r} differs from the path's {value!r}", field)
            data[field] = value
        if self.idempotency_key is not None:
            if data.get("id") not in (None, self.idempotency_key):
                raise Problem(422, "idempotency-key", "the body's id and the Idempotency-Key header differ", "id")
            data["id"] = self.idempotency_key
        check_text(data)
        return data

    def submit(self, data: dict[str, Any]) -> JSONResponse:
        """Through the ledger, and answered."""
        try:
            return self.answer(submit(self.ledger, data, self.principal.person))
        except Problem as problem:
            raise hidden_existence(data, problem) from None

    def answer(self, outcome: Outcome) -> JSONResponse:
        answer = dict(outcome.answer)
        if "position" not in answer:  # a command that recorded nothing: the log's end
            answer["position"] = self.ledger.event_count()
        answer["duplicate"] = outcome.duplicate
        recorded = not outcome.duplicate and answer.get("events", 0) > 0
        log_entry(self.request).update(outcome="accepted" if recorded else "duplicate", position=answer["position"])
        return JSONResponse(answer, status_code=201 if recorded else 200,
                            headers={"X-Log-Position": str(answer["position"])})


async def command_runner(request: Request, sent: BearerDep,
                         idempotency_key: IdempotencyKey = None) -> CommandRunner:
    # The caller is authenticated here, and the ledger and the settings come straight from the
    # application's state: every dependency FastAPI resolves costs each request its turn.
    principal = await caller(request, sent)
    state = request.app.state
    return CommandRunner(request, state.ledger, state.settings, principal, idempotency_key)


Runner = Annotated[CommandRunner, Depends(command_runner)]


def _doc(kind: str, zh: str, who: str) -> dict[str, Any]:
    return {"summary": f"{kind} {zh}", "description": f"{zh} — `{kind}` (COMMANDS.md). Who: {who}.",
            "status_code": 201, "response_model": m.CommandAnswer, "responses": RESPONSES}


ADMIN, RECORDER = "admin grant", "recorder grant"


@router.post("/schemes", **_doc("scheme.publish", "发布考核方案", ADMIN))
def publish_scheme(body: m.PublishSchemeBody, run: Runner) -> JSONResponse:
    return run.run("scheme.publish", body)


@router.put("/departments/{department}", **_doc("org.department", "登记科室", ADMIN))
def record_department(department: Ident, body: m.DepartmentBody, run: Runner) -> JSONResponse:
    return run.run("org.department", body, department=department)


@router.put("/people/{person}", **_doc("org.person", "登记人员", ADMIN))
def record_person(person: Ident, body: m.PersonBody, run: Runner) -> JSONResponse:
    return run.run("org.person", body, person=person)


@router.post("/appraisals", **_doc("appraisal.open", "开启考核", ADMIN))
def open_appraisal(body: m.OpenAppraisalBody, run: Runner) -> JSONResponse:
    return run.run("appraisal.open", body)


@router.post("/appraisals/{appraisal}/ratings", **_doc(
    "rating.record", "记录评分", "anyone, as themself, in a role SCORING.md §5 allows them"))
def record_rating(appraisal: AppraisalKey, body: m.RatingBody, run: Runner) -> JSONResponse:
    return run.run("rating.record", body, appraisal=appraisal)


@router.post("/appraisals/{appraisal}/measurements", **_doc("measurement.record", "记录测量值", RECORDER))
def record_measurement(appraisal: AppraisalKey, body: m.MeasurementBody, run: Runner) -> JSONResponse:
    return run.run("measurement.record", body, appraisal=appraisal)


@router.post("/appraisals/{appraisal}/occurrences", **_doc("occurrence.record", "记录计数事项", RECORDER))
def record_occurrence(appraisal: AppraisalKey, body: m.OccurrenceBody, run: Runner) -> JSONResponse:
    return run.run("occurrence.record", body, appraisal=appraisal)


@router.post("/appraisals/{appraisal}/surveys", **_doc("survey.record", "记录满意度测评轮次", RECORDER))
def record_survey(appraisal: AppraisalKey, body: m.SurveyBody, run: Runner) -> JSONResponse:
    return run.run("survey.record", body, appraisal=appraisal)


@router.post("/appraisals/{appraisal}/adjustments", **_doc("adjustment.apply", "直接加减分", RECORDER))
def apply_adjustment(appraisal: AppraisalKey, body: m.AdjustmentBody, run: Runner) -> JSONResponse:
    return run.run("adjustment.apply", body, appraisal=appraisal)


@router.post("/appraisals/{appraisal}/vetoes", **_doc("veto.impose", "一票否决", RECORDER))
def impose_veto(appraisal: AppraisalKey, body: m.VetoBody, run: Runner) -> JSONResponse:
    return run.run("veto.impose", body, appraisal=appraisal)


@router.post("/appraisals/{appraisal}/appeals", **_doc(
    "appeal.file", "提出申诉", "the subject (a department's head for a department), within the window"))
def file_appeal(appraisal: AppraisalKey, body: m.AppealBody, run: Runner) -> JSONResponse:
    return run.run("appeal.file", body, appraisal=appraisal)


@router.post("/appeals/{appeal}/decision", **_doc(
    "appeal.decide", "申诉裁决", "admin grant, not the item's recorder nor the appellant"))
def decide_appeal(appeal: Annotated[str, Path(pattern=r"^[^\x00]+$", max_length=200)],
                  body: m.DecisionBody, run: Runner) -> JSONResponse:
    return run.run("appeal.decide", body, appeal=appeal)


@router.post("/years/{year}/tie-breaks", **_doc("year.tie_break", "并列排序", ADMIN))
def break_tie(year: YearNumber, body: m.TieBreakBody, run: Runner) -> JSONResponse:
    return run.run("year.tie_break", body, year=year)


@router.post("/years/{year}/publication", **_doc("year.publish", "公示年度结果", ADMIN))
def publish_year(year: YearNumber, run: Runner, body: m.YearBody | None = None) -> JSONResponse:
    return run.run("year.publish", body or {}, year=year)


@router.post("/years/{year}/finalization", **_doc("year.finalize", "年度结果定稿", ADMIN))
def finalize_year(year: YearNumber, run: Runner, body: m.YearBody | None = None) -> JSONResponse:
    return run.run("year.finalize", body or {}, year=year)


@router.post("/years/{year}/adoption", **_doc("year.adopt", "改用方案版本", ADMIN))
def adopt_scheme(year: YearNumber, body: m.AdoptBody, run: Runner) -> JSONResponse:
    return run.run("year.adopt", body, year=year)


@router.post("/commands", **_doc("any command", "任一命令", "as for the command's own path"))
def any_command(body: m.AnyCommandBody, run: Runner) -> JSONResponse:  # type: ignore[valid-type]
    return run.run(body.type, body)  # type: ignore[attr-defined]
