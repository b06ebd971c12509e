"""Rule changes in the pages (the admin's job 4, SCORING.md §9): what `appraisal scheme list|show|
diff` and `appraisal replay` print, for people who do not use a terminal, and the two commands of a
rule change, `scheme.publish` and `year.adopt`, through the one command path of the pages
(api/pages/admin.py `run_command`). Every page here needs the admin grant; anyone else gets the 403
page.

| page | job |
|---|---|
| `/admin/schemes`, `POST /admin/schemes` | the versions, each year's binding, publishing version k+1 |
| `/admin/schemes/{id}/{version}` (`…/document.json`) | a version's document, readable (and as published) |
| `/admin/schemes/diff?old=&new=` | what changed between two versions (domain/scheme_diff.py) |
| `/admin/years/{year}/replay?scheme=`, `POST /admin/years/{year}/adopt` | the replay, and adoption with a reason |

A replay folds the whole log (projections/replays.py); for a year of thousands of people that takes
seconds, so the page computes it once per (year, version, log position), keeps the last few reports
in memory and shows a summary (counts of rank, tier and grade changes, the largest moves) and the
people a page at a time. A report is exact for the position it names: any new event makes a new one.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from api.http.auth import Principal
from api.http.deps import LedgerDep, PositionDep, QueriesDep
from api.http.problems import Problem
from api.http.read_side import Queries
from api.ledger import AppraisalLedger
from api.pages.admin import refusal_of, require_admin, run_command
from api.pages.labels import (
    KINDS,
    PARAMETERS,
    ROLES,
    RULE_TYPES,
    RULES_ZH,
    STATUS,
    Labels,
    bilingual,
    label,
    labels_for,
    struck_reason,
)
from api.pages.layout import page
from api.pages.routes import known_years
from api.pages.session import FormDep, PageRoute, ViewerDep
from domain.aggregates import SchemeCatalogue, SchemeVersion, Year
from domain.errors import DomainError, NotFound
from domain.numbers import decimal_text, shown_value
from domain.replay import parse_scheme_ref
from domain.results import adoption_lines
from domain.scheme import Scheme
from domain.scheme_diff import BASE_PARAMETERS, CATEGORIES, RULE_PARAMETERS, TREES, diff_schemes
from projections.replays import replay

router = APIRouter(route_class=PageRoute, include_in_schema=False)

YearNumber = Annotated[int, Path(ge=1900, le=2999)]
SchemeId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,100}$")]
Version = Annotated[int, Path(ge=1, le=999_999)]
SchemeRefText = Annotated[str, Query(pattern=r"^[A-Za-z0-9_.-]{1,100}@[1-9]\d{0,5}$")]
PAGE_SIZE = 50
KEPT_REPORTS = 4  # replay reports kept in memory (each a few MB for 3,000 people)
REPLAY_WAIT = 0.25  # seconds a page waits for a replay before saying it is replaying

# The refusals of a rule change, in Chinese (the service's English is shown beside).
RULES_ZH.update({
    "adopt-change": "本年度已经采用该方案版本，无需再次采用。",
    "scheme-published": "该方案版本尚未发布。",
    "scheme-immutable": "该版本号已发布且内容不同：已发布的版本不可修改，请使用新的版本号。",
    "scheme-supersedes": "所取代的版本尚未发布。",
    "scheme-invariants": "方案文件不符合要求（权重之和、分值或规则参数有误）。",
    "scheme-fields": "方案文件的字段有误。",
    "scheme-json": "方案文件不是有效的 JSON 对象。",
    "scheme.publish": "方案文件有误。",
    "adopt-reason": "请填写采用理由。",
    "scheme-reason": "请填写修订理由：取代旧版本的新版本须说明为何修订。",
    "year-known": "没有这个年度。",
    "command-fields": "请填写必填项。",
})
CATEGORY_LABELS = {
    "identity": "版本信息 identity", "composition": "总分构成 composition", "raters": "评分权重 raters",
    "inputs": "输入项 inputs", "department": "部门指标 department indicators",
    "individual": "个人指标 individual indicators", "adjustments": "直接加减分目录 adjustments",
    "vetoes": "一票否决目录 vetoes", "grading": "档次与等次 grading", "deadlines": "期限 deadlines",
}
ADOPT_CONSEQUENCE = (
    "采用后，本年度改按 {new} 计分：每个人的总分、名次、档次、等次和后果按上表“新”值变化；若已公示，将生成修订版公示。"
    "采用记录在案（谁、何时、理由），此前的结果按时间回看仍可查；以后如需改回，须再次采用。",
    "Adopting rebinds the year to {new}: everyone's total, rank, tier, grade and consequences become the "
    "new values above; a published year gets a revised publication. The adoption is on the record (who, "
    "when, why); the results before it stay readable by looking back; going back means adopting again.",
)
PUBLISH_CONSEQUENCE = (
    "发布新版本本身不改变任何年度的结果：年度须经重算对比后“采用”才改用新版本。已发布的版本永不修改。",
    "Publishing a version changes no year's results by itself: a year uses it only once adopted, after its "
    "replay. A published version never changes.",
)


# --- the versions ----------------------------------------------------------------------------------

def scheme_or_404(ledger: AppraisalLedger, scheme_id: str, version: int) -> Scheme:
    return ledger.scheme(scheme_id, version)  # NotFound (404, scheme-published) when not published


def versions(ledger: AppraisalLedger) -> list[dict[str, Any]]:
    """Every published version, newest first within a scheme: name, supersedes, reason, when."""
    catalogue = ledger.get(SchemeCatalogue.create_id(), private=True)
    found = catalogue.versions if catalogue is not None else {}
    rows = []
    for scheme_id in sorted(found):
        for version in sorted(found[scheme_id], reverse=True):
            scheme = ledger.scheme(scheme_id, version)
            record = ledger.get(SchemeVersion.create_id(scheme_id, version), private=True)
            rows.append({"id": scheme_id, "version": version, "ref": scheme.ref, "name": scheme.name.label(),
                         "supersedes": None if scheme.supersedes is None else f"{scheme_id}@{scheme.supersedes}",
                         "reason": scheme.reason or "",
                         "published_at": record.published_at.isoformat() if record is not None else ""})
    return rows


def bindings(queries: Queries, ledger: AppraisalLedger, viewer: Principal) -> list[dict[str, Any]]:
    """Each year's scheme version now, and every switch (adoption) with who, when and why (from the
    year's own record: small, where the results of a large year are not)."""
    labels = labels_for(ledger)
    rows = []
    for number in sorted(known_years(queries, viewer), reverse=True):
        year = ledger.get(Year.create_id(number), private=True)
        if year is None:
            continue
        rows.append({"year": number, "status": year.status, "status_label": label(STATUS, year.status),
                     "scheme": f"{year.scheme_id}@{year.scheme_version}",
                     "adoptions": [{**a, "actor_name": labels.person(a.get("actor"))}
                                   for a in adoption_lines(year.adoptions)]})
    return rows


def draft_of(scheme: Scheme) -> str:
    """Version k+1 of a scheme as a starting point to edit: its document, renumbered, superseding k."""
    document = dict(scheme.document())
    document.update({"version": scheme.version + 1, "supersedes": scheme.version, "reason": ""})
    return json.dumps(document, ensure_ascii=False, indent=1)


def schemes_page(request: Request, viewer: Principal, queries: Queries, ledger: AppraisalLedger, *,
                 start: str | None = None, typed: dict[str, str] | None = None,
                 refusal: dict[str, Any] | None = None, status: int = 200) -> Response:
    rows = versions(ledger)
    years = bindings(queries, ledger, viewer)
    refs = [r["ref"] for r in rows]
    draft = typed.get("document", "") if typed else ""
    base = start if start in refs else (refs[0] if refs else None)
    if not draft and base:
        draft = draft_of(ledger.scheme(*parse_scheme_ref(base)))
    current = {y["scheme"] for y in years}
    return page(request, "admin_rules.html", {
        "versions": rows, "years": years, "refs": refs, "current": current, "draft": draft, "base": base,
        "reason": (typed or {}).get("reason", ""), "refusal": refusal, "consequence": PUBLISH_CONSEQUENCE,
        "form_id": "page-scheme-" + secrets.token_hex(8),
        "newest": {r["id"]: r["ref"] for r in reversed(rows)},  # the latest version of each scheme
    }, viewer=viewer, status=status)


@router.get("/admin/schemes")
def schemes(request: Request, viewer: ViewerDep, queries: QueriesDep, ledger: LedgerDep, position: PositionDep,
            start: Annotated[str | None, Query(alias="from", pattern=r"^[A-Za-z0-9_.-]{1,100}@[1-9]\d{0,5}$")]
            = None) -> Response:
    require_admin(viewer, "rule changes")
    return schemes_page(request, viewer, queries, ledger, start=start)


@router.post("/admin/schemes")
def publish_scheme(request: Request, viewer: ViewerDep, form: FormDep, queries: QueriesDep,
                   ledger: LedgerDep) -> Response:
    """Version k+1: the document typed or pasted in the form, its reason beside it (written into the
    document's `reason`), confirmed; the command `scheme.publish`, as the viewer."""
    require_admin(viewer, "scheme.publish")
    typed = {"document": form.get("document", ""), "reason": form.get("reason", "").strip()}
    try:
        if form.get("confirm") != "yes":
            raise Problem(422, "confirm", "tick the box to confirm what publishing a version does", "confirm")
        try:
            document = json.loads(typed["document"])
        except ValueError as error:
            raise Problem(422, "scheme-json", f"the document is not JSON: {error}", "document") from None
        if not isinstance(document, dict):
            raise Problem(422, "scheme-json", "the document is one JSON object", "document")
        if typed["reason"]:
            document["reason"] = typed["reason"]
        if document.get("supersedes") is not None and not str(document.get("reason") or "").strip():
            raise Problem(422, "scheme-reason", "a version that supersedes another must say why: give the reason",
                          "reason")
        body = {"type": "scheme.publish", "id": form.get("id") or "page-scheme-" + secrets.token_hex(8),
                "document": document}
        run_command(request, viewer, ledger, body)
        ref = f"{document.get('id')}@{document.get('version')}"
    except (Problem, DomainError) as error:
        refusal = refusal_of(error)
        if refusal["field"] and refusal["field"].startswith("document."):  # where in the document
            refusal["detail"] = f"{refusal['field']}: {refusal['detail']}"
        return schemes_page(request, viewer, queries, ledger, typed=typed, refusal=refusal,
                            status=refusal["status"])
    supersedes = document.get("supersedes")
    if supersedes:
        return RedirectResponse(f"/admin/schemes/diff?old={document['id']}@{supersedes}&new={ref}&published=1",
                                status_code=303)
    return RedirectResponse(f"/admin/schemes/{document['id']}/{document['version']}?published=1", status_code=303)


# --- a version's document ----------------------------------------------------------------------------

def rule_line(rule: dict[str, Any], labels: Labels) -> dict[str, Any]:
    """A rule of the document as people read it: its type and parameters by name, inputs by name."""
    params = []
    for key, value in rule.items():
        if key in ("id", "type"):
            continue
        shown = labels.input(str(value)) if key in ("input", "total") else value
        params.append({"label": RULE_PARAMETERS.get(key, key), "value": shown})
    return {"id": rule.get("id"), "type": label(RULE_TYPES, rule.get("type")), "params": params}


def tree_rows(nodes: list[dict[str, Any]], labels: Labels, depth: int = 0) -> list[dict[str, Any]]:
    """An indicator tree, depth first: each node with its points, base and rules, by name."""
    rows = []
    for node in nodes:
        base = node.get("base") or {}
        base_params = [{"label": BASE_PARAMETERS.get(k, k), "value": labels.input(str(v)) if k == "input" else v}
                       for k, v in base.items() if k != "type"]
        rows.append({"id": node["id"], "name": bilingual(node.get("name"), node["id"]), "depth": depth,
                     "points": node.get("points"), "base": BASE_TYPES.get(base.get("type"), base.get("type") or ""),
                     "base_params": base_params, "rules": [rule_line(r, labels) for r in node.get("rules") or []]})
        rows += tree_rows(node.get("children") or [], labels, depth + 1)
    return rows


BASE_TYPES = {"rating": "评分基础分 from ratings", "full": "满分基础分 full points",
              "proportional": "按比例基础分 proportional"}
INPUT_KINDS = {"measurement": "测量值 measurement", "count": "计次 count", "survey": "问卷 survey"}


@router.get("/admin/schemes/{scheme_id}/{version}")
def scheme_document(request: Request, scheme_id: SchemeId, version: Version, viewer: ViewerDep,
                    ledger: LedgerDep, published: Annotated[int | None, Query(ge=1, le=1)] = None) -> Response:
    require_admin(viewer, "a scheme version's document")
    scheme = scheme_or_404(ledger, scheme_id, version)
    document = scheme.document()
    labels = labels_for(ledger, scheme.ref)
    record = ledger.get(SchemeVersion.create_id(scheme_id, version), private=True)
    inputs = [{"id": key, "name": bilingual(value.get("name"), key), "kind": INPUT_KINDS.get(value.get("kind"),
                                                                                            value.get("kind")),
               "unit": value.get("unit") or "", "required": bool(value.get("required"))}
              for key, value in (document.get("inputs") or {}).items()]
    return page(request, "admin_rules_document.html", {
        "scheme": scheme, "name": scheme.name.label(), "document": document,
        "published_at": record.published_at.isoformat() if record is not None else "",
        "supersedes": None if scheme.supersedes is None else f"{scheme_id}@{scheme.supersedes}",
        "department": tree_rows(document.get("department") or [], labels),
        "individual": tree_rows(document.get("individual") or [], labels),
        "inputs": inputs, "json": json.dumps(document, ensure_ascii=False, indent=2),
        "just_published": bool(published), "roles": ROLES,
    }, viewer=viewer)


@router.get("/admin/schemes/{scheme_id}/{version}/document.json")
def scheme_json(scheme_id: SchemeId, version: Version, viewer: ViewerDep, ledger: LedgerDep) -> Response:
    """The document as published (what `appraisal scheme show` prints)."""
    require_admin(viewer, "a scheme version's document")
    scheme = scheme_or_404(ledger, scheme_id, version)
    text = json.dumps(scheme.document(), ensure_ascii=False, indent=2) + "\n"
    return Response(text, media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="{scheme_id}-v{version}.json"', "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})


# --- the diff of two versions --------------------------------------------------------------------------

def diff_groups(old: Scheme, new: Scheme, namer: Namer) -> list[dict[str, Any]]:
    """The changes grouped by part of the scheme, in the document's order."""
    changes = [namer.change(c.as_dict()) for c in diff_schemes(old, new)]
    return [{"category": category, "label": CATEGORY_LABELS.get(category, category),
             "changes": [c for c in changes if c["category"] == category]}
            for category in CATEGORIES if any(c["category"] == category for c in changes)]


@router.get("/admin/schemes/diff")
def scheme_diff(request: Request, viewer: ViewerDep, queries: QueriesDep, ledger: LedgerDep,
                old: SchemeRefText, new: SchemeRefText,
                published: Annotated[int | None, Query(ge=1, le=1)] = None) -> Response:
    require_admin(viewer, "the diff of two scheme versions")
    before, after = ledger.scheme(*parse_scheme_ref(old, "old")), ledger.scheme(*parse_scheme_ref(new, "new"))
    groups = diff_groups(before, after, Namer(ledger, before, after))
    years = [y for y in bindings(queries, ledger, viewer) if y["scheme"] != after.ref and y["status"] != "final"]
    return page(request, "admin_rules_diff.html", {
        "old": before, "new": after, "groups": groups, "count": sum(len(g["changes"]) for g in groups),
        "refs": [r["ref"] for r in versions(ledger)], "years": years, "just_published": bool(published),
    }, viewer=viewer)


# --- the replay of a year, and adoption -------------------------------------------------------------------

class Reports:
    """The last few replay reports, by (store, year, version, log position): a report stays exact for
    its position, so paging through it never folds the log again; a new event makes a new key.

    A replay runs beside the request, one at a time (it is CPU-bound and the cores are shared): the
    page waits for it up to `wait` seconds (a small year: the report at once), else answers that it
    is replaying and comes back (a year of thousands of people takes seconds to tens of seconds)."""

    def __init__(self, size: int = KEPT_REPORTS, wait: float = REPLAY_WAIT) -> None:
        self.size = size
        self.wait = wait
        self.kept: OrderedDict[tuple[str, int, tuple[str, int], int], tuple[Future[dict[str, Any]], float]] = (
            OrderedDict())
        self.lock = threading.Lock()
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="page-replay")

    def get(self, ledger: AppraisalLedger, year: int, ref: tuple[str, int]) -> tuple[dict[str, Any] | None, float]:
        """(the report, or None while it is computed; the seconds since it was asked for)."""
        key = (ledger.db_url, year, ref, ledger.event_count())
        with self.lock:
            if key not in self.kept:
                self.kept[key] = (self.worker.submit(replay, ledger, year, ref), time.monotonic())
                while len(self.kept) > self.size:
                    self.kept.popitem(last=False)
            self.kept.move_to_end(key)
            job, started = self.kept[key]
        try:
            return job.result(timeout=self.wait), time.monotonic() - started
        except FutureTimeout:
            return None, time.monotonic() - started
        except BaseException:
            with self.lock:  # a failed replay is not kept: asking again tries again
                self.kept.pop(key, None)
            raise


reports = Reports()


def changed(entry: dict[str, Any]) -> bool:
    return bool(entry["changed"] or entry["leaves"] or entry["rules"] or entry["not_applicable"])


class Namer:
    """Names of what a replay moves: leaves, rule figures and their parameters, from both versions."""

    def __init__(self, ledger: AppraisalLedger, old: Scheme, new: Scheme) -> None:
        self.old, self.new = labels_for(ledger, old.ref), labels_for(ledger, new.ref)
        self.old_scheme, self.new_scheme = old, new
        self.rules: dict[str, tuple[str, str]] = {}  # rule id -> (leaf id, input id)
        self.rule_dicts: dict[str, list[dict[str, Any]]] = {}  # rule id -> the rule in new, old
        for scheme in (new, old):
            document = scheme.document()
            stack = [*(document.get("department") or []), *(document.get("individual") or [])]
            while stack:
                node = stack.pop()
                for rule in node.get("rules") or []:
                    self.rules.setdefault(rule["id"], (node["id"], rule.get("input", "")))
                    self.rule_dicts.setdefault(rule["id"], []).append(rule)
                stack += node.get("children") or []

    def leaf(self, leaf_id: str) -> str:
        return bilingual(self.new.nodes.get(leaf_id) or self.old.nodes.get(leaf_id), leaf_id)

    def input(self, input_id: str) -> str:
        return self.new.input(input_id) if input_id in self.new.inputs else self.old.input(input_id)

    def rule(self, rule_id: str, rule_type: str | None = None) -> str:
        """A rule by what it does and reads: "纪律作风 discipline and conduct · 按次计分 per occurrence（缺勤 absence）"."""
        leaf, input_id = self.rules.get(rule_id, ("", ""))
        what = f"{label(RULE_TYPES, rule_type)}（{self.input(input_id)}）" if input_id else label(RULE_TYPES, rule_type)
        return f"{self.leaf(leaf)} · {what}" if leaf else what

    def figure(self, key: str, change: dict[str, Any]) -> str:
        kind, _, name = key.partition(":")
        rule = change.get("rule") or {}
        if kind == "base":
            return f"{self.leaf(name)} · 基础分 base"
        if kind == "adjustment":
            item = rule.get("id") or name
            return self.new.adjustment(item) if item in self.new.adjustments else self.old.adjustment(item)
        if kind in ("survey", "survey-round"):  # SCORING.md §12: the survey's rate, a round's weighted sum
            what = label(RULE_TYPES, "survey" if kind == "survey" else "survey.round")
            return f"{self.input(rule.get('id') or name)} · {what}"
        return self.rule(name, rule.get("type"))

    def param(self, key: str) -> str:
        if key == "self":
            return "自评占比 self share"
        if key.startswith("others."):
            return f"他评权重 rater weight · {label(ROLES, key.removeprefix('others.'))}"
        if key.startswith("weight.") or key == "min_responses":  # a survey's (SCORING.md §12)
            return (self.new if key.removeprefix("weight.") in self.new.options else self.old).parameter(key)[0]
        return RULE_PARAMETERS.get(key, BASE_PARAMETERS.get(key, key))

    def option(self, option_id: str) -> str:
        return self.new.option(option_id) if option_id in self.new.options else self.old.option(option_id)

    def input_change(self, change: dict[str, Any]) -> dict[str, Any]:
        """A change of the inputs with a survey's options and `min_responses` by name (SCORING.md §12):
        an input added or removed as its kind, unit, options and fewest responses; an option by name."""
        parts = change["path"].split(".")
        if len(parts) == 2:
            values = {side: None if change[side] is None else input_summary(scheme.inputs[parts[1]], self)
                      for side, scheme in (("old", self.old_scheme), ("new", self.new_scheme))}
            return {**change, **values}
        if len(parts) >= 4 and parts[2] == "options":
            if parts[3] == "order":
                values = {side: "、".join(self.option(o.strip()) for o in (change[side] or "").split(",") if o.strip())
                          for side in ("old", "new")}
                return {**change, **values}
            return {**change, "label": change["label"].replace(f"选项 option {parts[3]}",
                                                               f"选项 option {self.option(parts[3])}")}
        return change

    def change(self, change: dict[str, Any]) -> dict[str, Any]:
        """A change of the scheme diff with the indicators, rules and inputs by name (the diff's own
        label names rules by id: they have no names in a document)."""
        category, path = change["category"], change["path"]
        if category == "inputs":
            return self.input_change(change)
        if category not in ("department", "individual"):
            return change
        parts = path.split(".")
        if len(parts) < 2 or parts[1] == "order":
            return change
        title = f"{TREES[category]} · {self.leaf(parts[1])}"
        rest = parts[2:]
        if not rest:
            text = f"{title} · 指标 indicator"
        elif rest[0] == "rules" and len(rest) >= 2:
            rule_type = next((r.get("type") for r in self.rule_dicts.get(rest[1], [])), None)
            text = f"{TREES[category]} · {self.rule(rest[1], rule_type)}"
            text += f" · {RULE_PARAMETERS.get(rest[2], rest[2])}" if len(rest) > 2 else " · 规则 rule"
        elif rest[0] == "base" and len(rest) >= 2:
            text = f"{title} · {BASE_PARAMETERS.get(rest[1], rest[1])}"
        else:
            text = f"{title} · {change['label'].rsplit(' · ', 1)[-1]}"
        values = {k: self.input(change[k]) if rest[-1:] in (["input"], ["total"]) and change[k] else change[k]
                  for k in ("old", "new")}
        return {**change, **values, "label": text}


def input_summary(declared: Any, namer: Namer) -> str:
    """An input as the diff shows one added or removed: kind, unit, required; a survey's options with
    their weights and its fewest responses (SCORING.md §12), by name."""
    parts = [INPUT_KINDS.get(declared.kind, declared.kind), *([declared.unit] if declared.unit else []),
             *(["必填 required"] if declared.required else [])]
    text = " ".join(parts)
    if declared.options:
        text += "；选项 options " + "、".join(f"{namer.option(o.id)} {decimal_text(o.weight)}" for o in declared.options)
    if declared.min_responses is not None:
        text += f"；{PARAMETERS['min_responses']} {declared.min_responses}"
    return text


def subject_row(entry: dict[str, Any], labels: Labels, namer: Namer) -> dict[str, Any]:
    old, new = entry["old"] or {}, entry["new"] or {}
    return {
        "id": entry["id"], "name": labels.person(entry["id"]) if entry["id"] in labels.people
        else labels.department(entry["id"]), "department": labels.department(entry.get("department")),
        "old": old, "new": new, "delta": entry["delta"], "changed": entry["changed"],
        "leaves": [{"name": PARTS[k], "old": old.get(k), "new": new.get(k)} for k in PARTS if k in entry["changed"]]
        + [{"name": namer.leaf(k), "old": v["old"], "new": v["new"]} for k, v in entry["leaves"].items()],
        "rules": [{"name": namer.figure(k, v), "old": v["old"], "new": v["new"],
                   "params": [{"name": namer.param(p), **{side: namer.input(pv[side])
                                                           if p in ("input", "total") and pv[side] else pv[side]
                                                           for side in ("old", "new")}}
                              for p, pv in (v.get("params") or {}).items()]}
                  for k, v in entry["rules"].items()],
        "not_applicable": [{"kind": label(KINDS, n.get("kind")), "why": struck_reason(n.get("why")),
                            "ref": n.get("ref")} for n in entry["not_applicable"]],
    }


PARTS = {"department_score": "部门得分 department score", "individual_score": "个人得分 individual score",
         "adjustments": "加减分 adjustments"}
ORDERS = {"delta": "变化最大在前 largest change first", "rank": "按新名次 by new rank", "name": "按编号 by id"}


def ordered(people: list[dict[str, Any]], order: str) -> list[dict[str, Any]]:
    def size(entry: dict[str, Any]) -> tuple[Any, ...]:
        delta = entry["delta"]
        return (-abs(shown_value(delta)) if delta else 1, entry["id"])

    if order == "rank":
        return sorted(people, key=lambda e: ((e["new"] or {}).get("rank") or 10**9, e["id"]))
    if order == "name":
        return sorted(people, key=lambda e: e["id"])
    return sorted(people, key=size)


@router.get("/admin/years/{year}/replay")
def year_replay(request: Request, year: YearNumber, viewer: ViewerDep, queries: QueriesDep, ledger: LedgerDep,
                position: PositionDep, scheme: SchemeRefText,
                show: Annotated[str, Query(pattern=r"^(changed|all)$")] = "changed",
                order: Annotated[str, Query(pattern=r"^(delta|rank|name)$")] = "delta",
                department: Annotated[str | None, Query(max_length=100)] = None,
                page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1) -> Response:
    require_admin(viewer, "the replay of a year")
    return replay_page(request, viewer, queries, ledger, year, scheme, show=show, order=order,
                       department=department or None, page_number=page_number)


def replay_page(request: Request, viewer: Principal, queries: Queries, ledger: AppraisalLedger, year: int,
                scheme_text: str, *, show: str = "changed", order: str = "delta", department: str | None = None,
                page_number: int = 1, refusal: dict[str, Any] | None = None, reason: str = "",
                status: int = 200) -> Response:
    ref = parse_scheme_ref(scheme_text)
    new = ledger.scheme(*ref)
    info = queries.year(year)
    report, elapsed = reports.get(ledger, year, ref)
    if report is None:
        return page(request, "admin_rules_replaying.html", {
            "year": year, "new": new, "elapsed": int(elapsed), "status_label": label(STATUS, info.status),
            "again": f"{request.url.path}?{request.url.query}" if request.method == "GET" else
            f"/admin/years/{year}/replay?scheme={new.ref}", "refusal": refusal}, viewer=viewer,
            status=refusal["status"] if refusal else 202,
            headers={"Retry-After": "2"})
    old = ledger.scheme(*parse_scheme_ref(report["current"]["scheme"]))
    labels, namer = labels_for(ledger, old.ref), Namer(ledger, old, new)
    people = [p for p in report["people"] if show == "all" or changed(p)]
    if department:
        people = [p for p in people if p.get("department") == department]
    people = ordered(people, order)
    pages = max(1, -(-len(people) // PAGE_SIZE))
    page_number = min(page_number, pages)
    shown = people[(page_number - 1) * PAGE_SIZE: page_number * PAGE_SIZE]
    summary = report["summary"]
    moves = {direction: [{**m, "name": labels.person(m["id"])} for m in summary["largest_moves"][direction]]
             for direction in ("up", "down")}
    departments_in = sorted({p.get("department") for p in report["people"] if p.get("department")})
    return page(request, "admin_rules_replay.html", {
        "year": year, "status": info.status, "status_label": label(STATUS, info.status), "old": old, "new": new,
        "summary": summary, "moves": moves, "changes": [c for g in diff_groups(old, new, namer) for c in g["changes"]
                                 if c["category"] != "identity"],
        "departments": [subject_row(d, labels, namer) for d in report["departments"] if show == "all" or changed(d)],
        "people": [subject_row(p, labels, namer) for p in shown], "matching": len(people),
        "page": page_number, "pages": pages, "show": show, "order": order, "orders": ORDERS,
        "department": department, "department_choices": [(d, labels.department(d)) for d in departments_in],
        "ties": report["unresolved_ties"], "adoptable": info.status != "final" and old.ref != new.ref,
        "consequence": tuple(text.format(new=new.ref) for text in ADOPT_CONSEQUENCE), "refusal": refusal,
        "reason": reason, "form_id": "page-adopt-" + secrets.token_hex(8),
        "refs": [r["ref"] for r in versions(ledger)],
    }, viewer=viewer, status=status)


@router.post("/admin/years/{year}/adopt")
def adopt(request: Request, year: YearNumber, viewer: ViewerDep, form: FormDep, queries: QueriesDep,
          ledger: LedgerDep) -> Response:
    """Adoption, confirmed and with a reason: the command `year.adopt`, as the viewer."""
    require_admin(viewer, "year.adopt")
    scheme_text = form.get("scheme", "")
    reason = form.get("reason", "").strip()
    try:
        ref = parse_scheme_ref(scheme_text)
        if not reason:
            raise Problem(422, "adopt-reason", "give the reason for adopting this version", "reason")
        if form.get("confirm") != "yes":
            raise Problem(422, "confirm", "tick the box to confirm what adopting does", "confirm")
        body = {"type": "year.adopt", "id": form.get("id") or "page-adopt-" + secrets.token_hex(8), "year": year,
                "scheme": {"id": ref[0], "version": ref[1]}, "reason": reason}
        position = run_command(request, viewer, ledger, body)
    except (Problem, DomainError) as error:
        if isinstance(error, NotFound) or (isinstance(error, DomainError) and error.rule == "scheme-ref"):
            raise  # no replay to show the refusal on: the error page says why
        refusal = refusal_of(error)
        return replay_page(request, viewer, queries, ledger, year, scheme_text, refusal=refusal, reason=reason,
                           status=refusal["status"])
    return RedirectResponse(f"/admin/schemes?adopted={year}&position={position}#years", status_code=303)
