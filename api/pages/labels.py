"""Words on the pages, Chinese first with English beside it, and the names of people, departments
and a scheme's inputs and items (labels only: every figure on a page comes from the queries)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from api.documents.text import POSITIONS, ROLES, STATUS
from domain.aggregates import Organisation, SchemeCatalogue
from domain.errors import DomainError

__all__ = ["POSITIONS", "ROLES", "STATUS", "Labels"]

CONSEQUENCES = {
    "promotion_priority": "优先提拔 promotion priority",
    "innovation_award_nomination": "创新奖提名 innovation award nomination",
    "admonishment_talk": "诫勉谈话 admonishment talk",
    "off_post_training": "离岗培训 off-post training",
    "staffing_allocation_preference": "编制分配倾斜 staffing allocation preference",
    "staffing_cut": "核减编制 staffing cut",
}
KINDS = {
    "rating": "评分 rating", "measurement": "测量值 measurement", "occurrence": "计数事项 counted item",
    "survey": "满意度测评轮次 survey round",
    "adjustment": "直接加减分 direct adjustment", "veto": "一票否决 veto", "appeal": "申诉 appeal",
    "decision": "裁决 decision",
}
OUTCOMES = {"upheld": "维持 upheld", "overturned": "撤销 overturned", "amended": "变更 amended"}
APPEAL_STATUS = {"open": "待裁决 open", "decided": "已裁决 decided", "overdue": "逾期未裁决 overdue"}
GRANTS = {"admin": "管理员 admin", "recorder": "记录员 recorder", "inspector": "纪检 inspector",
          "rater": "评分人 rater", "staff": "工作人员 staff"}
RULE_TYPES = {
    "shortfall": "未达标扣分 shortfall", "per_occurrence": "按次计分 per occurrence",
    "excess_over_allowance": "超出容错扣分 excess over allowance", "minimum_count": "最低数量 minimum count",
    "adjustment": "直接加减分 adjustment", "veto": "一票否决 veto",
    "survey": "满意度测评 survey", "survey.round": "满意度测评轮次 survey round",
}
# What a refusal means, in Chinese (the detail beside it is the service's English message).
RULES_ZH = {
    "breakdown-before-publication": "这是他人的考核，且该年度尚未公示：公示前只有本人、管理员和纪检人员可以查看。",
    "explanation-access": "得分说明仅供本人、管理员和纪检人员查看。",
    "history-access": "个人历年考核和申诉仅供本人、管理员和纪检人员查看。",
    "role-required": "此页面需要管理员或纪检权限。",
    "appeal-by-subject": "只有被考核人本人（部门考核由科室负责人）可以申诉。",
    "appeal-window": "已超过申诉期限（自事项记录或公示起算的申诉期已过）。",
    "appeal-target": "该事项不可申诉：只能对计数事项、测量值、满意度测评轮次、直接扣分和一票否决提出申诉。",
    "one-appeal-per-item": "该事项已经申诉过，每个事项只能申诉一次。",
    "command-fields": "请填写申诉理由。",
    "inspector-read-only": "纪检人员只读，不能提交命令。",
    "cross-site-form": "表单来自其他网站，已拒绝。",
    "appraisal-open": "没有这项考核。",
    "year-open": "该年度尚未开启考核。",
    "token-unknown": "令牌无效（从未创建，或属于其他数据库）。",
    "token-revoked": "令牌已被吊销。",
    "token-malformed": "这不是本系统的令牌（以 al_ 开头，用 appraisal token create 创建）。",
    "token-missing": "请输入令牌。",
    "session-required": "请重新登录。",
    "too-many-failures": "登录失败次数过多，请稍后再试。",
}
# Refusals of the admin's jobs (api/pages/admin.py), in Chinese.
RULES_ZH.update({
    "independent-decision": "职责分离：申诉须由未记录该事项、也不是申诉人的另一位管理员裁决。",
    "one-decision": "该申诉已经裁决过，每个申诉只裁决一次。",
    "appeal-known": "没有这项申诉。",
    "decision-time": "裁决时间不能早于申诉时间。",
    "amend-deductions": "只有直接扣分可以变更分值；变更须填写分值，且正负号与原分值一致。",
    "never-harsher": "申诉裁决不能加重原处理：变更后的分值不能比原分值更重。",
    "decision-reason": "请填写裁决理由。",
    "decision-outcome": "请选择裁决结果：维持、撤销或变更。",
    "tie-break": "并列排序有误：每人只能出现一次，且须是本年度的被考核人。",
    "year-final": "该年度已定稿，不能再更改。",
    "publish-once": "该年度已经公示过；之后的更改会自动生成修订版公示。",
    "publish-ready": "尚不能公示：还有未打破的并列，或有考核尚未完成。",
    "finalize-after-publicity": "尚不能定稿：年度尚未公示，或公示期尚未结束。",
    "finalize-after-appeals": "尚不能定稿：还有待裁决的申诉。",
    "confirm": "请勾选确认框，确认已了解此操作的后果。",
    "admin-required": "此页面和操作只供管理员使用。",
    "token-create": "无法创建令牌。",
    "business-time": "业务时间有误。",
})
# The appeal form's grounds refused by the command's field rules (pydantic's words are not for people):
# (Chinese, English) for grounds left blank and grounds too long.
APPEAL_GROUNDS = {
    "blank": ("请填写申诉理由。", "please give the grounds of the appeal"),
    "long": ("申诉理由过长，最多 4000 字。", "the grounds of the appeal are too long: at most 4000 characters"),
}
STATUS_ZH = {400: "请求有误", 401: "未登录", 403: "无权查看", 404: "未找到", 409: "冲突", 413: "内容过大",
             415: "格式不支持", 422: "未被接受", 429: "尝试过多", 500: "内部错误", 503: "暂不可用"}
STATUS_EN = {400: "Bad request", 401: "Not signed in", 403: "Forbidden", 404: "Not found", 409: "Conflict",
             413: "Too large", 415: "Unsupported form", 422: "Refused", 429: "Too many attempts", 500: "Internal error",
             503: "Unavailable"}


def bilingual(names: dict[str, str] | str | None, fallback: str = "") -> str:
    """`{zh, en}` as "中文 English" (once when both are the same)."""
    if not names:
        return fallback
    if isinstance(names, str):
        return names
    zh, en = names.get("zh", ""), names.get("en", "")
    return zh if not en or en == zh else f"{zh} {en}".strip()


@dataclass
class Labels:
    """Names for one page: people, departments and the scheme's inputs, adjustments and vetoes."""

    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    departments: dict[str, dict[str, Any]] = field(default_factory=dict)
    inputs: dict[str, dict[str, str]] = field(default_factory=dict)
    adjustments: dict[str, dict[str, str]] = field(default_factory=dict)
    vetoes: dict[str, dict[str, str]] = field(default_factory=dict)
    nodes: dict[str, dict[str, str]] = field(default_factory=dict)  # indicator tree nodes, in tree order
    options: dict[str, dict[str, str]] = field(default_factory=dict)  # survey options by id (SCORING.md §12)
    appeal_window_days: int | None = None
    scheme_name: dict[str, str] = field(default_factory=dict)

    def person(self, person: str | None) -> str:
        if not person:
            return ""
        found = self.people.get(person)
        return bilingual(found.get("name"), person) if found else person

    def department_zh(self, department: str | None) -> str:
        name = (self.departments.get(department or "") or {}).get("name")
        if isinstance(name, dict) and name.get("zh"):
            return str(name["zh"])
        return self.department(department)

    def department(self, department: str | None) -> str:
        if not department:
            return ""
        found = self.departments.get(department)
        return bilingual(found.get("name"), department) if found else department

    def tree_order(self, ids: Iterable[str]) -> list[str]:
        """Node ids once each, in the scheme's tree order (unknown ones last, as given)."""
        order = {node: index for index, node in enumerate(self.nodes)}
        unique = list(dict.fromkeys(ids))
        return sorted(unique, key=lambda node: (order.get(node, len(order)), unique.index(node)))

    def node(self, node: str) -> str:
        found = self.nodes.get(node)
        return found.get("zh", node) if found else node

    def node_names(self, node: str) -> dict[str, str]:
        """An indicator's name as {zh, en} (a node the scheme does not name: a neutral word, not its id)."""
        found = self.nodes.get(node) or {}
        return {"zh": found.get("zh") or "指标", "en": found.get("en") or "indicator"}

    def scheme(self, scheme: Any) -> str:
        """A scheme version by name: "编办绩效考核量化方案 第1版 version 1" (`scheme`: "id@version" or {id, version})."""
        version = scheme.get("version") if isinstance(scheme, dict) else str(scheme or "").partition("@")[2]
        name = bilingual(self.scheme_name) if self.scheme_name else "考核方案 scheme"
        return f"{name} 第{version}版 version {version}" if version else name

    def parameter(self, key: str, value: Any = None, rule_type: str = "") -> tuple[str, Any]:
        """A rule's parameter or input as (name, value) by name: the scheme's inputs, rater groups,
        grade and tier shares, a survey's options, weights, counts and parts (SCORING.md §12), the
        parameters of the rule types (PARAMETERS); an input named as a value (`input`, `total`, the
        survey figure a reading names) and the recorder by name too."""
        if key in self.inputs:
            return self.input(key), value
        if key.endswith(".figure") and key.removesuffix(".figure") in self.inputs:
            return "满意度测评 survey", self.input(key.removesuffix(".figure"))
        if key.startswith(("weight.", "count.")) and key.split(".", 1)[1] in self.options:
            kind, option = key.split(".", 1)
            return ("权重 weight" if kind == "weight" else "份数 count") + f" · {self.option(option)}", value
        if rule_type in ("survey", "survey.round") and key in SURVEY_PARTS:
            return SURVEY_PARTS[key], value
        if key == "recorder" and isinstance(value, str):
            return PARAMETERS[key], self.person(value)
        if key.startswith("others."):
            return "他评权重 others: " + label(ROLES, key.split(".", 1)[1]), value
        role, dot, what = key.partition(".")
        if dot and what in ("mean", "raters") and role in ROLES:
            return label(ROLES, role) + (" 平均分 mean" if what == "mean" else " 人数 raters"), value
        if key.startswith(("grade.", "tier.")) and key.endswith(".share"):
            kind, middle, _ = key.split(".", 2)
            return ("等次" if kind == "grade" else "档次") + f" {middle} 比例 share", value
        if key in ("input", "total") and isinstance(value, str) and value in self.inputs:
            value = self.input(value)
        return PARAMETERS.get(key, key), value

    def input(self, name: str) -> str:
        return bilingual(self.inputs.get(name), name)

    def option(self, option: str) -> str:
        """A survey's option by name ("基本满意 basically satisfied")."""
        return bilingual(self.options.get(option), option)

    def in_option_order(self, counts: dict[str, Any]) -> list[tuple[str, Any]]:
        """A survey round's counts in the scheme's order of its options (a round is stored with its
        options in alphabetical order); an option the scheme does not name comes last."""
        order = {option: place for place, option in enumerate(self.options)}
        return sorted(counts.items(), key=lambda pair: (order.get(pair[0], len(order)), pair[0]))

    def adjustment(self, item: str) -> str:
        return bilingual(self.adjustments.get(item), item)

    def veto(self, reason: str) -> str:
        return bilingual(self.vetoes.get(reason), reason)

    def item(self, event: dict[str, Any]) -> str:
        """What a recorded fact is about, by name."""
        kind = event.get("kind")
        if kind in ("measurement", "occurrence", "survey"):
            return self.input(event.get("input") or event.get("item") or "")
        if kind == "adjustment":
            return self.adjustment(event.get("item", ""))
        if kind == "veto":
            return self.veto(event.get("reason", ""))
        return KINDS.get(kind or "", kind or "")


# Parameters and inputs of the rules and figures (names of a scheme's inputs come from the scheme).
PARAMETERS = {
    "minimum": "最低数量 minimum", "points_per_unit": "每单位分值 points per unit", "vetoed": "否决 vetoed",
    "individual": "个人得分 individual", "allowance_rate": "容错率 allowance rate", "points": "分值 points",
    "target": "目标 target", "input": "输入 input", "self": "自评权重 self share", "department": "科室 department",
    "cohort": "同组 cohort", "total": "总分 total", "points_each": "每次分值 points each", "penalty": "扣分 penalty",
    "score": "得分 score", "coefficient": "系数 coefficient", "tier": "档次 tier", "rank": "名次 rank",
    "others": "他评 others", "allowance": "容错数 allowance", "R": "比率 R",
    "approved_posts": "核定编制 approved posts", "posts": "编制数 posts", "rate": "比率 rate",
    "people": "人数 people", "weight": "权重 weight",
    # a survey's figures (SCORING.md §12)
    "min_responses": "最少答卷数 minimum responses", "responses": "答卷数 responses",
    "weighted": "加权和 weighted sum", "rounds": "轮次数 rounds", "recorder": "记录人 recorder",
    "at": "业务时间 business time", "recorded_at": "记录时间 recorded at", "evidence": "依据 evidence",
}
# The parts of a survey's figure named otherwise than elsewhere.
SURVEY_PARTS = {"rate": "满意率 satisfaction rate"}


def zh(text: str) -> str:
    """The Chinese part of a "中文 English" label."""
    return text.split(" ", 1)[0]


def label(mapping: dict[str, str], key: Any) -> str:
    return mapping.get(str(key), str(key)) if key is not None else ""


# How each figure of a trace is made (the rule types of the explanation), in Chinese and English.
TRACE_RULES = {
    **RULE_TYPES,
    "rating.composite": "评分期间综合分 rating composite of a period",
    "base.rating": "评分基础分 base from ratings", "base.full": "满分基础分 full base",
    "base.proportional": "按比例基础分 proportional base", "leaf": "指标小计 indicator subtotal",
    "sum": "合计 sum", "department_score": "科室得分 department score", "composition": "总分构成 composition",
    "grading.order": "排序 ordering", "grading.tier": "档次 tier", "grading.grade": "等次 grade",
    "grading.department_rank": "科室排名 department rank", "grading.staffing_cut": "核减编制 staffing cut",
    "grading.grades": "等次比例 grade shares", "grading.tiers": "档次比例 tier shares",
    "grading.share_rounding": "比例取整 share rounding", "grading.unresolved_tie": "并列待定 unresolved tie",
}


# Why a recorded fact does not count (domain/scoring.py's reasons), in Chinese with English beside;
# names of inputs, items and schemes are left out (they are ids), an appeal's decision reason kept.
STRUCK_REASONS = (
    (re.compile(r"^overturned on appeal (?P<appeal>.+?): (?P<reason>.*)$", re.S),
     "经申诉撤销 overturned on appeal（{appeal}）：{reason}"),
    (re.compile(r"^replaced by a later measurement$"), "已被后来的测量值取代 replaced by a later measurement"),
    (re.compile(r"^replaced by a later rating of the same rater and period$"),
     "已被同一评分人同一期间的后续评分取代 replaced by a later rating of the same rater and period"),
    (re.compile(r"^rater role (?P<role>\S+) has no weight in .*$"),
     "该评分身份（{role_label}）在本方案中没有权重 this rater role has no weight in the scheme"),
    (re.compile(r"^no rating leaf .* in .*$"), "本方案没有该评分指标 the scheme has no such rated indicator"),
    (re.compile(r"^(input|item|survey) .* is not read in .*$"), "本方案不计此项 the scheme does not count this"),
    (re.compile(r"^option\(s\) .* of .* are not in .*$"),
     "有本方案没有的选项 it has options the scheme has not"),
    (re.compile(r"^(item|reason) .* is not in .*'s catalogue$"),
     "不在本方案的目录中 not in the scheme's catalogue"),
)


def struck_reason(why: str | None) -> str:
    """A struck item's reason as shown (a reason not known here: as the service gives it)."""
    for pattern, text in STRUCK_REASONS:
        found = pattern.match(why or "")
        if found:
            values = found.groupdict()
            return text.format(**values, role_label=label(ROLES, values.get("role")))
    return why or ""


# The notes of the trace's figures and the reasons an appraisal is incomplete (domain/scoring.py,
# domain/grading.py), in Chinese with English beside; ids in them by name (`note`).
NOTES = (
    (r"position (?P<p>\d+) of (?P<n>\d+)", "第 {p} 位，共 {n} 人 position {p} of {n}"),
    (r"tie broken by (?P<by>.+)", "并列已裁定 tie broken（{by}）"),
    (r"vetoed: tier and grade are the bottom ones regardless of score",
     "一票否决：无论得分，档次和等次均为最低 vetoed: the bottom tier and grade regardless of score"),
    (r"published tiers of the two previous years: (?P<past>.*)", "前两年公示档次 published tiers of the two previous years: {past}"),
    (r"no consequences", "无 no consequences"),
    (r"tied with (?P<people>.*)", "与 {people_names} 并列 tied"),
    (r"ranked last \((?P<r>\d+) of (?P<n>\d+)\): .*",
     "排名最后（第 {r} 名，共 {n} 个）：核减核定编制的 10%（四舍五入，有编制时至少 1 名） "
     "ranked last: 10% of the approved posts, rounded half up, at least 1"),
    (r"of (?P<n>\d+) departments", "共 {n} 个科室 of {n} departments"),
    (r"clamped to (?P<to>\S+) \(base \+ adjustments = (?P<raw>\S+)\)",
     "限定为 {to}（基础分加增减 = {raw}） clamped to {to} (base + adjustments = {raw})"),
    (r"no period with ratings by others: the leaf scores 0", "没有他评的期间：该指标得 0 分 no period rated by others: scores 0"),
    (r"missing rater group\(s\): (?P<roles>.*)", "缺少评分组 missing rater groups: {role_names}"),
    (r"only a self rating: the period is skipped", "只有自评：该期间不计 only a self rating: the period is skipped"),
    (r"no self rating: the composite is the others' score", "没有自评：综合分即他评分 no self rating: the others' score counts"),
    (r"a required measurement is missing: the rule adjusts nothing",
     "缺少必需的测量值：该规则不增减分 a required measurement is missing: the rule adjusts nothing"),
    (r"no appraisal of department (?P<d>\S+) this year: counts as 0",
     "{d_name} 本年度没有考核：按 0 分计 no department appraisal this year: counts as 0"),
    (r"the department's appraisal is incomplete", "所在科室的考核不完整 the department's appraisal is incomplete"),
    (r"floored at 0 \(the sum is (?P<raw>\S+)\)", "不低于 0（合计为 {raw}） floored at 0 (the sum is {raw})"),
    (r"amended on appeal (?P<appeal>\S+) from (?P<a>\S+) to (?P<b>\S+): (?P<reason>.*)",
     "经申诉变更（{appeal}）：{a} → {b}：{reason} amended on appeal"),
    (r"appeal (?P<appeal>\S+) (?P<outcome>upheld|overturned|amended): (?P<reason>.*)",
     "申诉（{appeal}）{outcome_label}：{reason}"),
    (r"lifted on appeal", "经申诉撤销 lifted on appeal"),
    (r"required measurement (?P<input>\S+) not recorded", "缺少必需的测量值 required measurement not recorded：{input_name}"),
    (r"no usable ratings for (?P<node>\S+)", "{node_name} 没有可用的评分 no usable ratings"),
    (r"department (?P<d>\S+) has no appraisal this year", "{d_name} 本年度没有考核 the department has no appraisal this year"),
    (r"department (?P<d>\S+) is incomplete", "{d_name} 的考核不完整 the department's appraisal is incomplete"),
    (r"(?P<n>\d+) responses, fewer than min_responses (?P<m>\d+): .*",
     "答卷 {n} 份，少于最少答卷数 {m}：该输入缺失，考核不完整，读取它的规则不增减分 "
     "{n} responses, fewer than the minimum {m}: missing, the appraisal incomplete"),
    (r"survey (?P<input>\S+): (?P<n>\d+) responses, fewer than (?P<m>\d+)",
     "{input_name}：答卷 {n} 份，少于最少答卷数 {m} {n} responses, fewer than the minimum {m}"),
)
_NOTES = [(re.compile(f"^{pattern}$", re.S), text) for pattern, text in NOTES]


def note(text: str, labels: Labels | None = None) -> str:
    """A figure's note or an incomplete appraisal's reason as shown: in Chinese with English beside,
    people, departments, inputs, indicators, rater groups and consequences by name (a note not
    known here: as the service gives it)."""
    labels = labels or Labels()
    if "," not in text or not all(part.strip() in CONSEQUENCES for part in text.split(",")):
        for pattern, shown in _NOTES:
            found = pattern.match(text)
            if found:
                values = found.groupdict()
                names = {
                    "people_names": "、".join(labels.person(p.strip()) for p in values.get("people", "").split(",")),
                    "role_names": "、".join(label(ROLES, r.strip()) for r in values.get("roles", "").split(",")),
                    "d_name": labels.department(values.get("d")), "input_name": labels.input(values.get("input", "")),
                    "node_name": bilingual(labels.node_names(values.get("node", ""))),
                    "outcome_label": label(OUTCOMES, values.get("outcome")),
                }
                return shown.format(**values, **names)
        return text
    return "；".join(label(CONSEQUENCES, part.strip()) for part in text.split(","))


def labels_for(ledger: Any, scheme: str | None = None, *, every_scheme: bool = False) -> Labels:
    """Names for a page: people and departments of the organisation, and the scheme's inputs,
    adjustments and vetoes (`every_scheme`: of every version of every scheme, later names first,
    for a page across years such as the audit trail). Reference data only, from private copies;
    no figure comes from here."""
    labels = Labels()
    organisation = ledger.get(Organisation.create_id(), private=True)
    if organisation is not None:
        labels.people = dict(organisation.people)
        labels.departments = dict(organisation.departments)
    if every_scheme:
        catalogue = ledger.get(SchemeCatalogue.create_id(), private=True)
        for scheme_id, versions in sorted((catalogue.versions if catalogue else {}).items()):
            for version in sorted(versions):
                named = labels_for(ledger, f"{scheme_id}@{version}")
                labels.inputs.update(named.inputs)
                labels.adjustments.update(named.adjustments)
                labels.vetoes.update(named.vetoes)
                labels.nodes.update(named.nodes)
                labels.options.update(named.options)
        return labels
    if scheme and "@" in scheme:
        scheme_id, _, version = scheme.partition("@")
        try:
            document = ledger.scheme(scheme_id, int(version))
        except (DomainError, ValueError):
            return labels
        labels.inputs = {k: v.name.model_dump() for k, v in document.inputs.items()}
        labels.adjustments = {k: v.name.model_dump() for k, v in document.adjustments.items()}
        labels.vetoes = {k: v.name.model_dump() for k, v in document.vetoes.items()}
        labels.options = {option.id: option.name.model_dump()
                          for declared in document.inputs.values() for option in declared.options or ()}
        labels.appeal_window_days = document.appeal_window_days
        labels.scheme_name = document.name.model_dump()
        stack = [*document.department, *document.individual][::-1]
        while stack:  # depth first, in the document's order
            node = stack.pop()
            labels.nodes[node.id] = node.name.model_dump()
            stack += (node.children or [])[::-1]
    return labels
