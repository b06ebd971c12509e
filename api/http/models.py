"""Request and response models of the HTTP API (separate from the domain's command models and
events): they document the bodies of COMMANDS.md in OpenAPI, in Chinese and English, with
examples. The domain (`domain.commands.parse_command` and the handlers) still decides what is
accepted: these models check shapes and types only, so both paths refuse the same way.

Every command body may carry `type` (it must then be the route's), `id` (the client command id:
re-sending it is a no-op answering the same result), `actor` (ignored over HTTP: the actor is the
token's person) and `at` (business time, ISO 8601 with an offset; default now).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    create_model,
    field_validator,
)

from domain.commands import business_time_text
from domain.numbers import NUMBER_PATTERN, NUMBER_SCHEMA, Count, parse_decimal


def d(zh: str, en: str) -> str:
    return f"{zh} — {en}"


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, min_length=1, max_length=200, description=d(
        "命令编号(客户端指定,唯一;重复提交同一编号不会重复记录)",
        "client command id, unique: re-sending it records nothing and answers the same result"),
        examples=["cmd-000123"])
    actor: str | None = Field(None, max_length=200, description=d(
        "经 HTTP 提交时忽略:操作人即令牌所属人员", "ignored over HTTP: the actor is the token's person"))
    at: datetime | None = Field(None, description=d(
        "业务时间(ISO 8601,须带时区;缺省为当前时间)",
        "business time, ISO 8601 with an offset; default now"), examples=["2025-06-30T10:00:00+08:00"])

    @field_validator("at", mode="before")
    @classmethod
    def _text_required(cls, value: Any) -> Any:
        return business_time_text(value)


def _number(value: Any) -> Any:
    """Checked by the domain's one grammar (refused as `number-format`), passed on as sent: the
    domain reads it again from the same text."""
    parse_decimal(value)
    return value


Decimalish = Annotated[Any, BeforeValidator(_number), WithJsonSchema(NUMBER_SCHEMA), Field(description=d(
    f"十进制数,建议以字符串传递,格式 {NUMBER_PATTERN}",
    f"a decimal number, best sent as a string, written {NUMBER_PATTERN}"))]
Evidence = Annotated[str | None, Field(None, max_length=4000, description=d("依据、证明材料", "evidence"))]


class NamesBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    zh: str = Field(min_length=1, description=d("中文名称", "Chinese name"), examples=["机构编制科"])
    en: str = Field(min_length=1, description=d("英文名称", "English name"), examples=["Staffing Section"])


class SchemeRefBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, description=d("考核方案编号", "scheme id"), examples=["bianban"])
    version: Count = Field(ge=1, description=d("方案版本", "scheme version"), examples=[1])


class PublishSchemeBody(Body):
    """scheme.publish 发布考核方案"""

    model_config = ConfigDict(json_schema_extra={"examples": [{"builtin": "bianban"}]})
    type: Literal["scheme.publish"] | None = None
    builtin: Literal["bianban"] | None = Field(None, description=d(
        "内置方案(与 document 二选一)", "a builtin scheme (either this or document)"))
    document: dict[str, Any] | None = Field(None, description=d(
        "方案文档(SCORING.md §4 的结构)", "a scheme document, structured as SCORING.md §4"))


class DepartmentBody(Body):
    """org.department 登记科室"""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"name": {"zh": "机构编制科", "en": "Staffing Section"}, "approved_posts": 8, "in_charge": "p-L1"}]})
    type: Literal["org.department"] | None = None
    department: str | None = Field(None, min_length=1, max_length=100, description=d(
        "科室编号(路径中已给出,可省略)", "department id (given by the path; may be left out)"))
    name: NamesBody | str = Field(description=d("科室名称(中英文或单一字符串)",
                                                "name: {zh, en} or one string"))
    approved_posts: Count = Field(ge=0, description=d("编制数", "approved posts"), examples=[8])
    in_charge: str | None = Field(None, description=d("分管领导(人员编号)", "the leader in charge (a person id)"),
                                  examples=["p-L1"])


class PersonBody(Body):
    """org.person 登记人员"""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"name": "安员", "position": "staff", "department": "d-01"}]})
    type: Literal["org.person"] | None = None
    person: str | None = Field(None, min_length=1, max_length=100, description=d(
        "人员编号(路径中已给出,可省略)", "person id (given by the path; may be left out)"))
    name: NamesBody | str = Field(description=d("姓名", "name"))
    position: Literal["staff", "department_head", "leader", "superior"] = Field(description=d(
        "职务:一般工作人员、科室负责人、班子成员、上级领导",
        "position: staff, department head, leader, superior leader"))
    department: str | None = Field(None, description=d("所属科室(工作人员和科室负责人)",
                                                       "department (staff and department heads)"))


class OpenAppraisalBody(Body):
    """appraisal.open 开启考核"""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"year": 2025, "subject": "p-002", "scheme": {"id": "bianban", "version": 1}}]})
    type: Literal["appraisal.open"] | None = None
    year: Count = Field(ge=1900, le=2999, description=d("考核年度", "appraisal year"), examples=[2025])
    subject: str = Field(min_length=1, description=d("被考核对象(科室或人员编号)",
                                                     "subject: a department or person id"))
    scheme: SchemeRefBody = Field(description=d("考核方案及版本", "the scheme and version"))


class OnAppraisal(Body):
    appraisal: str | None = Field(None, description=d(
        "考核编号“年度:对象”(路径中已给出,可省略)", 'appraisal "<year>:<subject>" (given by the path)'),
        examples=["2025:p-002"])


class RatingBody(OnAppraisal):
    """rating.record 记录评分"""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"id": "rate-2025-p-002-business-06-p-L1", "leaf": "business", "period": "2025-06",
         "rater_role": "in_charge", "score": "85", "at": "2025-06-30T10:00:00+08:00"}]})
    type: Literal["rating.record"] | None = None
    leaf: str = Field(description=d("评分指标(叶节点)", "the rated leaf of the indicator tree"),
                      examples=["business"])
    period: str = Field(description=d("评分期间:年、月、季、半年或周", "period: year, month, quarter, half or ISO week"),
                        examples=["2025-06"])
    rater: str | None = Field(None, description=d("评分人:缺省或须为令牌所属人员",
                                                  "the rater: absent, or the token's person"))
    rater_role: Literal["self", "superior", "in_charge", "leadership_team", "department_head"] = Field(
        description=d("评分身份:自评、上级领导、分管领导、班子成员、科室负责人",
                      "rater role: self, superior, in charge, leadership team, department head"))
    score: Decimalish = Field(description=d("分数 0–100", "score from 0 to 100"), examples=["85"])
    comment: str | None = Field(None, max_length=2000, description=d("评语", "comment"))


class MeasurementBody(OnAppraisal):
    """measurement.record 记录测量值"""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"input": "review_total", "value": "400", "evidence": "年度台账"}]})
    type: Literal["measurement.record"] | None = None
    input: str = Field(description=d("输入项(方案 inputs 中 kind 为 measurement)", "a measurement input of the scheme"),
                       examples=["review_total"])
    value: Decimalish = Field(description=d("数值(不得为负;百分比不超过 100)",
                                            "value (never negative; a percentage at most 100)"))
    evidence: Evidence


class OccurrenceBody(OnAppraisal):
    """occurrence.record 记录计数事项"""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"item": "absence", "count": 1, "evidence": "考勤记录"}]})
    type: Literal["occurrence.record"] | None = None
    item: str = Field(description=d("计数事项(方案 inputs 中 kind 为 count)", "a counted input of the scheme"),
                      examples=["absence"])
    count: Count = Field(1, ge=1, le=10000, description=d("次数(1–10000)", "how many, 1 to 10000"))
    evidence: Evidence


class SurveyBody(OnAppraisal):
    """survey.record 记录满意度测评轮次"""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"input": "public_satisfaction", "counts": {"satisfied": 40, "basically_satisfied": 8, "dissatisfied": 2},
         "evidence": "2025 年度群众满意度测评第一轮"}]})
    type: Literal["survey.record"] | None = None
    input: str = Field(description=d("满意度测评输入项(方案 inputs 中 kind 为 survey)", "a survey input of the scheme"),
                       examples=["public_satisfaction"])
    counts: dict[str, Count] = Field(description=d(
        "各选项的答卷数(整数 ≥ 0;每个选项都须给出,合计至少 1)",
        "responses per option: integers ≥ 0, every option of the survey present, at least 1 in all"))
    evidence: Evidence


class AdjustmentBody(OnAppraisal):
    """adjustment.apply 直接加减分"""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"item": "over_quota_hiring", "evidence": "超编进人 1 名"}]})
    type: Literal["adjustment.apply"] | None = None
    item: str = Field(description=d("加减分事项(方案 adjustments 目录)", "an item of the adjustment catalogue"),
                      examples=["over_quota_hiring"])
    evidence: Evidence


class VetoBody(OnAppraisal):
    """veto.impose 一票否决"""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"reason": "data_falsification", "evidence": "专项审计报告"}]})
    type: Literal["veto.impose"] | None = None
    reason: str = Field(description=d("否决事由(方案 vetoes 目录)", "a reason of the veto catalogue"),
                        examples=["data_falsification"])
    evidence: Evidence


class AppealBody(OnAppraisal):
    """appeal.file 提出申诉"""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"id": "appeal-001", "target": "cmd-000123", "grounds": "该人员系按调剂计划接收"}]})
    type: Literal["appeal.file"] | None = None
    target: str = Field(min_length=1, description=d("被申诉事项的命令编号", "command id of the appealed item"))
    grounds: str = Field(min_length=1, max_length=4000, description=d("申诉理由", "grounds"))


class DecisionBody(Body):
    """appeal.decide 申诉裁决"""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"outcome": "overturned", "reason": "核实为计划内调剂"}]})
    type: Literal["appeal.decide"] | None = None
    appeal: str | None = Field(None, min_length=1, description=d(
        "申诉的命令编号(路径中已给出,可省略)", "command id of the appeal (given by the path)"))
    outcome: Literal["upheld", "overturned", "amended"] = Field(description=d(
        "结果:维持、撤销、变更", "outcome: upheld, overturned, amended"))
    points: Decimalish | None = Field(None, description=d(
        "变更后的分值(仅 amended,带符号,如 \"-10\")", 'new points for amended, signed: "-10"'))
    reason: str = Field(min_length=1, max_length=4000, description=d("裁决理由", "reason"))


class TieBreakBody(Body):
    """year.tie_break 并列排序"""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"order": ["p-031", "p-044"], "reason": "按民主测评得票排序"}]})
    type: Literal["year.tie_break"] | None = None
    year: Count | None = Field(None, description=d("年度(路径中已给出)", "year (given by the path)"))
    order: list[str] = Field(min_length=2, description=d("人员编号,名次由高到低", "person ids, best first"))
    reason: str = Field(min_length=1, max_length=4000, description=d("理由", "reason"))


class YearBody(Body):
    """year.publish 公示 / year.finalize 定稿"""

    type: Literal["year.publish", "year.finalize"] | None = None
    year: Count | None = Field(None, description=d("年度(路径中已给出)", "year (given by the path)"))


class AdoptBody(Body):
    """year.adopt 改用方案版本"""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"scheme": {"id": "bianban", "version": 2}, "reason": "更正指标权重"}]})
    type: Literal["year.adopt"] | None = None
    year: Count | None = Field(None, description=d("年度(路径中已给出)", "year (given by the path)"))
    scheme: SchemeRefBody = Field(description=d("改用的方案版本", "the scheme version to adopt"))
    reason: str = Field(min_length=1, max_length=4000, description=d("理由", "reason"))


# --- POST /commands: any command of COMMANDS.md, `type` required ---------------------------------

def _typed(model: type[Body], kind: str, name: str) -> type[Body]:
    """`model` with `type` required and fixed to `kind`, and every field given in the body."""
    fields: dict[str, Any] = {"type": (Literal[kind], Field(description=d("命令类型", "command type")))}  # type: ignore[valid-type]
    return create_model(name, __base__=model, __doc__=model.__doc__, **fields)


AnyCommandBody = Annotated[  # type: ignore[valid-type]
    _typed(PublishSchemeBody, "scheme.publish", "SchemePublishCommand")
    | _typed(DepartmentBody, "org.department", "OrgDepartmentCommand")
    | _typed(PersonBody, "org.person", "OrgPersonCommand")
    | _typed(OpenAppraisalBody, "appraisal.open", "AppraisalOpenCommand")
    | _typed(RatingBody, "rating.record", "RatingRecordCommand")
    | _typed(MeasurementBody, "measurement.record", "MeasurementRecordCommand")
    | _typed(OccurrenceBody, "occurrence.record", "OccurrenceRecordCommand")
    | _typed(SurveyBody, "survey.record", "SurveyRecordCommand")
    | _typed(AdjustmentBody, "adjustment.apply", "AdjustmentApplyCommand")
    | _typed(VetoBody, "veto.impose", "VetoImposeCommand")
    | _typed(AppealBody, "appeal.file", "AppealFileCommand")
    | _typed(DecisionBody, "appeal.decide", "AppealDecideCommand")
    | _typed(TieBreakBody, "year.tie_break", "YearTieBreakCommand")
    | _typed(YearBody, "year.publish", "YearPublishCommand")
    | _typed(YearBody, "year.finalize", "YearFinalizeCommand")
    | _typed(AdoptBody, "year.adopt", "YearAdoptCommand"),
    Field(discriminator="type"),
]


# --- answers -------------------------------------------------------------------------------------

class Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class CommandAnswer(BaseModel):
    """命令受理结果 — the answer to an accepted command"""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"status": "accepted", "command": "cmd-000123", "type": "rating.record", "target": "2025:p-002",
         "events": 1, "position": 1042, "duplicate": False}]})
    status: Literal["accepted"] = Field(description=d("已受理", "accepted"))
    command: str = Field(description=d("命令编号(未给出时由服务生成)", "command id (generated when not given)"))
    type: str = Field(description=d("命令类型", "command type"))
    target: str = Field(description=d("记录所在的对象", "where it was recorded"))
    events: int = Field(description=d("记录的事件数", "events recorded"))
    position: int = Field(description=d(
        "日志位置:查询时以 position 参数等待读模型追上", "log position: pass it as `position` to a query to read your write"))
    note: str | None = Field(None, description=d("说明", "note"))
    duplicate: bool = Field(False, description=d("重复提交(未再次记录)", "a re-sent command: nothing recorded again"))


class ProblemBody(BaseModel):
    """问题详情 (RFC 9457) — a refusal or failure"""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"type": "https://appraisal-ledger/problems/rater-roles", "title": "Forbidden 无权操作", "status": 403,
         "detail": "p-009 may not rate 2025:p-002 as in_charge: ...", "field": "rater_role", "rule": "rater-roles"}]})
    type: str = Field(description=d("问题类型(以规则命名)", "problem type, named after the rule"))
    title: str = Field(description=d("标题", "title"))
    status: int = Field(description=d("HTTP 状态码", "HTTP status"))
    detail: str = Field(description=d("说明", "what happened"))
    field: str = Field(description=d("出错的字段", "the offending field"))
    rule: str = Field(description=d("违反的规则", "the rule"))


class SchemeRefOut(Loose):
    id: str
    version: int


class DepartmentResult(Loose):
    id: str = Field(description=d("科室", "department"))
    score: str = Field(description=d("部门得分", "department score"))
    rank: int | None = Field(description=d("名次", "rank"))
    incomplete: bool = Field(description=d("不完整", "incomplete"))
    leaves: dict[str, str] = Field(description=d("各指标得分", "leaf scores"))
    consequences: list[dict[str, Any]] = Field(description=d("后果", "consequences"))


class PersonResult(Loose):
    id: str = Field(description=d("人员", "person"))
    department: str | None
    position: str | None
    department_score: str = Field(description=d("部门得分", "department score D"))
    individual_score: str = Field(description=d("个人得分", "individual score I"))
    adjustments: str = Field(description=d("直接加减分", "direct adjustments"))
    total: str = Field(description=d("总分", "total"))
    vetoed: bool = Field(description=d("一票否决", "vetoed"))
    incomplete: bool
    rank: int | None
    tier: int | None = Field(description=d("档次", "tier"))
    coefficient: str | None = Field(description=d("系数", "coefficient"))
    grade: str | None = Field(description=d("等次", "grade"))
    leaves: dict[str, str]
    consequences: list[dict[str, Any]]


class Tie(Loose):
    people: list[str]
    total: str


class ResultsDocument(Loose):
    """年度考核结果 — the results export of COMMANDS.md (filtered to what the caller may see)"""

    year: int = Field(description=d("年度", "year"))
    scheme: SchemeRefOut
    status: str = Field(description=d("状态:暂定、已公示、已定稿、重算", "provisional, published, final or replay"))
    departments: list[DepartmentResult]
    people: list[PersonResult]
    unresolved_ties: list[Tie] = Field(description=d("待定并列", "unresolved ties"))
    view: str | None = Field(None, description=d("all 全部;published 公示结果;own 仅本人",
                                                 "all; published (the publication); own (own entry only)"))


class Explanation(Loose):
    """得分说明 — every figure with its rule, parameters and events"""

    appraisal: str
    year: int
    subject: dict[str, Any]
    scheme: str
    status: str
    summary: dict[str, Any] = Field(description=d("得分摘要", "summary"))
    figures: list[dict[str, Any]] = Field(description=d("计算轨迹", "the trace: every figure"))
    struck: list[dict[str, Any]] = Field(description=d("不计入的事项及原因", "items that do not count, and why"))
    not_applicable: list[dict[str, Any]]
    events: list[dict[str, Any]] = Field(description=d("相关事件", "the recorded facts"))
    view: str | None = Field(None, description=d("full 完整;breakdown 去除他人评分",
                                                 "full, or breakdown (other raters' ratings removed)"))


class Breakdown(Loose):
    """公示得分明细 — the public breakdown (projections.documents.public_breakdown) as a caller sees it."""

    appraisal: str
    year: int
    subject: dict[str, Any]
    scheme: str
    status: str
    summary: dict[str, Any] = Field(description=d("得分摘要", "summary"))
    figures: list[dict[str, Any]] = Field(description=d(
        "计算轨迹;少于 3 名评分人的评分组均分不公开(null,见 withheld)",
        "the trace; means of rater groups under 3 raters are withheld (null, listed in `withheld`)"))
    items: list[dict[str, Any]] = Field(description=d("加分/扣分明细", "the itemised bonus and deduction list"))
    appeals: list[dict[str, Any]] = Field(description=d("申诉及裁决", "appeals and decisions"))
    struck: list[dict[str, Any]] = Field(description=d("不计入的事项及原因", "items that do not count, and why"))
    events: list[dict[str, Any]] = Field(description=d("调用者本人给出的评分", "the caller's own ratings of the subject"))
    hidden: dict[str, int] = Field(description=d("未显示的他人评分数", "how many ratings by others are left out"))
    view: Literal["breakdown"]
    version: int | None = Field(None, description=d("0 当前;k 第 k 次公示", "0: current figures; k: the k-th publication"))


class EventOut(Loose):
    type: str = Field(description=d("事件类型", "event type"))
    aggregate: str
    version: int
    recorded_at: str = Field(description=d("记录时间", "recording time"))
    backdated: bool = Field(description=d("补录:业务时间早于记录时间 7 天以上",
                                          "back-dated: the business time is more than 7 days before the recording time"))
    data: dict[str, Any]


class History(Loose):
    appraisal: str
    events: list[EventOut]


class AuditEntry(EventOut):
    position: int = Field(description=d("日志位置", "log position"))
    target: str | None = Field(None, description=d("命令记录的对象", "where the command recorded it"))
    actor: str | None = Field(None, description=d("操作人", "who did it"))
    at: str | None = Field(None, description=d("业务时间", "business time"))
    aggregate_name: str | None = Field(None, description=d(
        "对象名称(读模型)", "the aggregate's name, e.g. 2025:p-002 or year:2025 (read models)"))
    figures: list[str] | None = Field(None, description=d(
        "受影响的计算项(读模型)", "the trace figures the event feeds (read models)"))


class AuditTrail(Loose):
    after: int
    next: int | None = Field(description=d("下一页从此位置之后开始", "the next page starts after this"))
    events: list[AuditEntry]


class AppealOut(Loose):
    appeal: str = Field(description=d("申诉命令编号", "the appeal's command id"))
    appraisal: str
    appellant: str
    grounds: str
    filed_at: str
    due: str = Field(description=d("裁决期限", "decision due"))
    status: Literal["open", "decided", "overdue"]
    target: dict[str, Any]
    decision: dict[str, Any] | None


class AppealList(Loose):
    year: int
    appeals: list[AppealOut]


class PersonYear(Loose):
    year: int
    scheme: str
    status: str = Field(description=d("暂定、已公示、已定稿", "provisional, published or final"))
    department: str | None
    position: str | None
    total: str
    individual_score: str
    rank: int | None
    tier: int | None
    grade: str | None
    coefficient: str | None
    vetoed: bool
    incomplete: bool


class PersonHistory(Loose):
    person: str
    years: list[PersonYear]
    view: Literal["all", "published"] = Field(description=d(
        "all 全部年度;published 仅已公示年度", "all years, or published years only"))


class DepartmentYear(Loose):
    year: int
    scheme: str
    status: str
    department: str
    score: str = Field(description=d("部门得分", "department score"))
    rank: int | None = Field(description=d("名次", "rank"))
    staffing_cut: int | None = Field(description=d("核减编制数", "posts cut (last-ranked department)"))
    incomplete: bool


class DepartmentHistory(Loose):
    department: str
    years: list[DepartmentYear]
    view: Literal["all", "published"]


class DepartmentRanking(Loose):
    year: int
    departments: list[DepartmentYear]
    view: Literal["all", "published", "own"] = Field(description=d(
        "all 全部;published 公示后;own 公示前仅本科室", "all; published; before publication: own department only"))


class PublicationOut(Loose):
    year: int
    version: int = Field(description=d("第几次公示", "publication number (1, then revisions)"))
    at: str = Field(description=d("公示业务时间", "business time of the publication"))
    recorded_at: str = Field(description=d("记录时间", "recording time"))
    digest: str = Field(description=d("公示文件摘要 SHA-256", "SHA-256 digest of the published document"))


class PublicationList(Loose):
    year: int
    publications: list[PublicationOut]


class PublicationDocument(PublicationOut):
    document: dict[str, Any] = Field(description=d("公示的结果文件", "the results document as published"))


class Me(Loose):
    person: str = Field(description=d("令牌所属人员", "the token's person"))
    grants: list[str] = Field(description=d("授权", "grants"))
    roles: list[str] = Field(description=d("角色", "roles"))
    token_id: str
