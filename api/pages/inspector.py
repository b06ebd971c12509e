"""The inspector's pages (纪检): an appraisal's trace that a person can read, the audit trail with
its filters and export, looking back (as of a recording time, as known at a business time, and
every publication of a year as published). Admins see them too; staff are refused (403).

Nothing here computes a figure: the trace, the events and the publications are what `Queries`
answers (api/http/read_side.py), the same as the JSON API (api/http/reads.py).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from api.http.auth import require_reader
from api.http.deps import LedgerDep, QueriesDep
from api.http.problems import Problem
from api.http.read_side import Queries
from api.integrity import verification
from api.integrity.keys import SigningKeyError, load_public
from api.pages.labels import (
    KINDS,
    OUTCOMES,
    POSITIONS,
    ROLES,
    RULES_ZH,
    STATUS,
    TRACE_RULES,
    Labels,
    bilingual,
    label,
    labels_for,
    note,
    struck_reason,
)
from api.pages.layout import page
from api.pages.session import PageRoute, ViewerDep, same_origin
from api.pages.views import Rows, consequences_text, year_view
from api.store.logstore import log_store
from domain.times import OFFICE_TZ

router = APIRouter(route_class=PageRoute, include_in_schema=False)

YearNumber = Annotated[int, Path(ge=1900, le=2999)]
PageNumber = Annotated[int, Query(alias="page", ge=1, le=100_000)]
Filter = Annotated[str, Query(max_length=100)]

# --- words ---------------------------------------------------------------------------------------------

# The events of the log, by type.
EVENT_TYPES = {
    "Organisation.Started": "组织建立 organisation started",
    "Organisation.DepartmentRecorded": "登记科室 department recorded",
    "Organisation.PersonRecorded": "登记人员 person recorded",
    "SchemeVersion.Published": "发布方案版本 scheme version published",
    "SchemeCatalogue.Started": "方案目录建立 scheme catalogue started",
    "SchemeCatalogue.VersionListed": "方案版本入目录 scheme version listed",
    "Year.Opened": "开启年度 year opened", "Year.SubjectEnrolled": "纳入考核对象 subject enrolled",
    "Year.TieBroken": "并列裁定 tie broken", "Year.Published": "公示 published",
    "Year.Finalized": "定稿 finalised", "Year.SchemeAdopted": "采用方案版本 scheme adopted",
    "Appraisal.Opened": "开启考核 appraisal opened", "Appraisal.RatingRecorded": "记录评分 rating recorded",
    "Appraisal.MeasurementRecorded": "记录测量值 measurement recorded",
    "Appraisal.OccurrenceRecorded": "记录计数事项 counted item recorded",
    "Appraisal.SurveyRecorded": "记录满意度测评轮次 survey round recorded",
    "Appraisal.AdjustmentApplied": "直接加减分 adjustment applied",
    "Appraisal.VetoImposed": "一票否决 veto imposed", "Appraisal.AppealFiled": "提出申诉 appeal filed",
    "Appraisal.AppealDecided": "申诉裁决 appeal decided",
}
# The refusals of these pages, in Chinese (beside the English detail on the error page).
RULES_ZH.update({
    "checkpoint-known": "尚无签名检查点：由运维人员用 appraisal checkpoint 生成（每次公示后自动生成）。",
    "proof-position": "无法为该位置出具证明：该位置没有事件，或事件在最新检查点之后。",
    "as-of-unsupported": "当前读取方式不支持回溯查询。",
    "request-parameters": "参数格式不正确（时间如 2025-06-30 或 2025-06-30T10:00:00+08:00）。",
})
# The fields of an event's data, shown by name (anything else: its field name).
DATA_FIELDS = {
    "actor": "操作人 actor", "at": "业务时间 business time", "command_id": "命令 command",
    "appraisal": "考核 appraisal", "year": "年度 year", "subject": "对象 subject", "kind": "类别 kind",
    "leaf": "指标 indicator", "period": "期间 period", "rater": "评分人 rater", "rater_role": "评分身份 rater role",
    "score": "评分 score", "input": "输入 input", "value": "数值 value", "item": "事项 item", "count": "次数 count",
    "reason": "理由 reason", "evidence": "依据 evidence", "points": "分值 points", "target": "对象 target",
    "grounds": "申诉理由 grounds", "appeal": "申诉 appeal", "outcome": "裁决 outcome", "name": "名称 name",
    "department": "科室 department", "position": "职务 position", "person": "人员 person",
    "scheme_id": "方案 scheme", "version": "版本 version", "digest": "摘要 digest", "document": "文件 document",
    "scheme": "方案 scheme", "people": "人员 people", "order": "顺序 order", "head": "负责人 head",
    "revision_reason": "修订原因 revision reason", "in_charge": "分管 in charge",
    "approved_posts": "核定编制 approved posts", "scheme_version": "方案版本 scheme version", "comment": "备注 comment",
}


def event_type_label(event_type: str) -> str:
    return EVENT_TYPES.get(event_type, event_type)


def exact_differs(value: Any, exact: Any) -> bool:
    return exact is not None and str(exact) != str(value)


# --- job 7: the trace, readable ----------------------------------------------------------------------

def short_ref(ref: str) -> str:
    """`2025:p-A#8` as `#8` (the page is that appraisal's); another appraisal's ref as it is."""
    return "#" + ref.rsplit("#", 1)[1] if "#" in ref else ref


def trace_rows(doc: dict[str, Any], labels: Labels) -> list[dict[str, Any]]:
    """Every figure of an explanation with its rule, parameters, inputs, terms and events by name:
    the value as a decimal, the exact value beside it on demand."""
    figures = {f["key"]: f for f in doc.get("figures", [])}
    name = labels.parameter
    rows = []
    for figure in doc.get("figures", []):
        rule = figure.get("rule") or {}
        rule_type = rule.get("type", "")
        where = rule.get("path", "")
        if where.startswith("inputs."):  # a survey's figures (SCORING.md §12): the input by name
            where = f"输入项 input · {labels.input(where.removeprefix('inputs.'))}"
        pairs = [name(k, v, rule_type) for k, v in (figure.get("params") or {}).items()]
        inputs = [name(k, v, rule_type) for k, v in (figure.get("inputs") or {}).items()]
        terms = [{"weight": t.get("weight"), "label": bilingual((figures.get(t["of"]) or {}).get("label"), t["of"]),
                  "value": (figures.get(t["of"]) or {}).get("value")} for t in figure.get("terms") or []]
        events = [{"ref": r, "short": short_ref(r), "anchor": "ev-" + r.replace("#", "-").replace(":", "-")}
                  for r in figure.get("events") or []]
        rows.append({
            "key": figure["key"], "label": bilingual(figure.get("label"), figure["key"]),
            "value": figure.get("value"), "exact": figure.get("exact"),
            "exact_differs": exact_differs(figure.get("value"), figure.get("exact")),
            "rule": TRACE_RULES.get(rule_type, rule_type), "rule_source": f"{rule.get('scheme', '')} {where}".strip(),
            "params": pairs, "inputs": inputs, "terms": terms, "events": events,
            "notes": [note(text, labels) for text in figure.get("notes") or []],
            "struck": [{"ref": s.get("ref", ""), "short": short_ref(s.get("ref", "")),
                        "why": struck_reason(s.get("why"))} for s in figure.get("struck") or []],
            "bounds": figure.get("bounds"),
        })
    return rows


# --- job 9: the audit trail ----------------------------------------------------------------------------

ENVELOPE = ("actor", "at", "command_id")
SUBJECT_KINDS = {"person": "个人 person", "department": "科室 department"}
SCAN_PAGE = 1000
SCAN_LIMIT = 200_000  # events looked at for one page at most: the log of an office's years


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "…"


def data_fields(data: dict[str, Any], labels: Labels) -> list[dict[str, Any]]:
    """An event's fields by name, people and departments by name; a long value (a scheme's document)
    is folded away with its full text on demand."""
    fields = []
    for key, value in data.items():
        if key in ENVELOPE or value is None:
            continue
        shown = value
        if isinstance(value, str) and key in ("rater", "person", "head", "appellant"):
            shown = labels.person(value)
        elif isinstance(value, str) and key == "department":
            shown = labels.department(value)
        elif key == "kind" and isinstance(value, str):
            shown = label({**KINDS, **SUBJECT_KINDS}, value)
        elif key == "position" and isinstance(value, str):
            shown = label(POSITIONS, value)
        elif key == "subject" and isinstance(value, str):
            shown = labels.person(value) if value in labels.people else labels.department(value)
        elif key == "rater_role" and isinstance(value, str):
            shown = label(ROLES, value)
        elif key == "leaf" and isinstance(value, str):
            shown = bilingual(labels.node_names(value))
        elif key in ("input", "item") and isinstance(value, str):
            shown = labels.input(value) if value in labels.inputs or key == "input" else labels.adjustment(value)
        elif key == "reason" and isinstance(value, str) and value in labels.vetoes:
            shown = labels.veto(value)
        elif key == "outcome" and isinstance(value, str):
            shown = label(OUTCOMES, value)
        elif isinstance(value, dict) and set(value) <= {"zh", "en"}:
            shown = bilingual(value)
        elif key == "counts" and isinstance(value, dict):  # a survey round's responses per option
            shown = "，".join(f"{labels.option(option)} {count}" for option, count in value.items())
        text = shown if isinstance(shown, str) else json.dumps(shown, ensure_ascii=False)
        long = len(text) > 80
        if long and isinstance(value, dict) and isinstance(value.get("name"), dict):  # a scheme's document
            summary = f"{bilingual(value['name'])} 第{value.get('version')}版 version {value.get('version')}"
        elif long and not isinstance(value, str):
            summary = "展开查看 show the data"  # its keys are ids: shown on demand, as data
        else:
            summary = _short(text)
        fields.append({"key": key, "name": DATA_FIELDS.get(key, key), "text": summary,
                       "full": json.dumps(value, ensure_ascii=False, indent=1) if long else None})
    return fields


def audit_view(events: list[dict[str, Any]], labels: Labels) -> list[dict[str, Any]]:
    rows = []
    for event in events:
        data = event.get("data") or {}
        actor = data.get("actor") or event.get("actor") or ""
        rows.append({"position": event.get("position"), "type": event.get("type", ""),
                     "type_label": event_type_label(event.get("type", "")),
                     "actor": actor, "actor_name": labels.person(actor),
                     "at": data.get("at") or event.get("at") or "", "recorded_at": event.get("recorded_at", ""),
                     "backdated": bool(event.get("backdated")), "target": event.get("target") or "",
                     "command_id": event.get("command_id", ""), "fields": data_fields(data, labels)})
    return rows




def _time(text: str | None, field: str) -> datetime | None:
    """A date (`2025-06-30`) or a time from a form; without an offset, Beijing time (UTC+8)."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise Problem(422, "request-parameters", f"{field}: a date (2025-06-30) or a time "
                      "(2025-06-30T10:00:00+08:00)", field=field) from None
    return value if value.utcoffset() is not None else value.replace(tzinfo=OFFICE_TZ)


def _when(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return value if value.utcoffset() is not None else None


class AuditFilter:
    """The audit page's filters: those the queries take (appraisal, actor, back-dated), and the event
    type and the recording-time range, applied while paging through what the queries answer."""

    def __init__(self, *, appraisal: str | None, actor: str | None, backdated: bool, event_type: str | None,
                 since: str | None, until: str | None) -> None:
        self.appraisal = (appraisal or "").strip() or None
        self.actor = (actor or "").strip() or None
        self.backdated = backdated
        self.event_type = (event_type or "").strip() or None
        if self.event_type is not None and self.event_type not in EVENT_TYPES:
            raise Problem(422, "request-parameters", f"unknown event type {self.event_type!r}", field="type")
        self.since_text, self.until_text = (since or "").strip(), (until or "").strip()
        self.since = _time(since, "since")
        until_time = _time(until, "until")
        if until_time is not None and len(self.until_text) == 10:  # a date: up to the end of that day
            until_time = until_time.replace(hour=23, minute=59, second=59, microsecond=999999)
        self.until = until_time

    def local(self, event: dict[str, Any]) -> bool:
        if self.event_type is not None and event.get("type") != self.event_type:
            return False
        if self.since is None and self.until is None:
            return True
        recorded = _when(event.get("recorded_at", ""))
        if recorded is None:
            return False
        return (self.since is None or recorded >= self.since) and (self.until is None or recorded <= self.until)

    def scan(self, queries: Queries, after: int, limit: int | None) -> tuple[list[dict[str, Any]], int | None]:
        """Up to `limit` matching events after `after` (None: all), and the position to go on from."""
        found: list[dict[str, Any]] = []
        position, looked = after, 0
        while looked < SCAN_LIMIT:
            batch = queries.audit(position, SCAN_PAGE, appraisal=self.appraisal, actor=self.actor,
                                  backdated=True if self.backdated else None)
            looked += len(batch)
            for event in batch:
                if self.local(event):
                    found.append(event)
                    if limit is not None and len(found) == limit:
                        return found, event["position"]
            if len(batch) < SCAN_PAGE:
                return found, None
            position = batch[-1]["position"]
        return found, position

    def query(self, **changes: Any) -> str:
        values = {"appraisal": self.appraisal or "", "actor": self.actor or "", "type": self.event_type or "",
                  "since": self.since_text, "until": self.until_text,
                  "backdated": "true" if self.backdated else "", **changes}
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})

    @property
    def active(self) -> bool:
        return bool(self.appraisal or self.actor or self.backdated or self.event_type or self.since or self.until)


def _labels(ledger: Any, scheme: str | None = None) -> Labels:
    return labels_for(ledger, scheme)


@router.get("/audit")
def audit_page(request: Request, viewer: ViewerDep, queries: QueriesDep, ledger: LedgerDep,
               appraisal: Annotated[str | None, Query(max_length=200)] = None,
               actor: Annotated[str | None, Query(max_length=200)] = None,
               backdated: Annotated[bool, Query()] = False,
               type: Annotated[str | None, Query(max_length=100)] = None,
               since: Annotated[str | None, Query(max_length=40)] = None,
               until: Annotated[str | None, Query(max_length=40)] = None,
               after: Annotated[int, Query(ge=0, le=2**62)] = 0,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:
    require_reader(viewer, "the audit trail")
    wanted = AuditFilter(appraisal=appraisal, actor=actor, backdated=backdated, event_type=type,
                         since=since, until=until)
    events, following = wanted.scan(queries, after, limit)
    rows = audit_view(events, labels_for(ledger, every_scheme=True))
    return page(request, "audit.html", {
        "rows": rows, "f": wanted, "appraisal": wanted.appraisal or "", "actor": wanted.actor or "",
        "backdated": backdated, "event_type": wanted.event_type or "", "since": wanted.since_text,
        "until": wanted.until_text, "after": after, "limit": limit, "next": following,
        "event_types": list(EVENT_TYPES.items()), "position": queries.position(),
        "first_href": "/audit?" + wanted.query(limit=limit),
        "next_href": "/audit?" + wanted.query(after=following, limit=limit) if following else None,
        "csv_href": "/audit.csv?" + wanted.query(),
    }, viewer=viewer)


CSV_COLUMNS = ("位置 position", "事件 event", "事件类型 event type", "操作人 actor", "操作人姓名 actor name",
               "业务时间 business time", "记录时间 recorded", "补录 back-dated", "对象 target", "命令 command",
               "内容 data")


@router.get("/audit.csv")
def audit_export(viewer: ViewerDep, queries: QueriesDep, ledger: LedgerDep,
                 appraisal: Annotated[str | None, Query(max_length=200)] = None,
                 actor: Annotated[str | None, Query(max_length=200)] = None,
                 backdated: Annotated[bool, Query()] = False,
                 type: Annotated[str | None, Query(max_length=100)] = None,
                 since: Annotated[str | None, Query(max_length=40)] = None,
                 until: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    """The filtered audit trail as CSV (UTF-8 with a BOM, so that Excel reads the Chinese)."""
    require_reader(viewer, "the audit trail")
    wanted = AuditFilter(appraisal=appraisal, actor=actor, backdated=backdated, event_type=type,
                         since=since, until=until)
    events, _ = wanted.scan(queries, 0, None)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in audit_view(events, labels_for(ledger, every_scheme=True)):
        data = "; ".join(f"{f['name']}: {f['full'] or f['text']}" for f in row["fields"])
        writer.writerow([row["position"], *map(_safe_cell, (
            row["type_label"], row["type"], row["actor"], row["actor_name"], row["at"], row["recorded_at"],
            "是 yes" if row["backdated"] else "", row["target"], row["command_id"], data))])
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": 'attachment; filename="audit.csv"', "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})


def _safe_cell(text: str) -> str:
    """A cell a spreadsheet will not run as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text



# --- job 8: looking back -------------------------------------------------------------------------------

class LookBack:
    """The look-back controls: `as_of`, as the system showed it at that recording time; `known_at`,
    with the facts that had happened by that business time (either, both or neither)."""

    def __init__(self, as_of: str | None = None, known_at: str | None = None) -> None:
        self.as_of_text, self.known_at_text = (as_of or "").strip(), (known_at or "").strip()
        self.as_of = _end_of_day(_time(as_of, "as_of"), self.as_of_text)
        self.known_at = _end_of_day(_time(known_at, "known_at"), self.known_at_text)

    @property
    def active(self) -> bool:
        return self.as_of is not None or self.known_at is not None

    def explanation(self, queries: Queries, key: str) -> dict[str, Any]:
        return queries.explanation_at(key, self.as_of, self.known_at)

    def results(self, queries: Queries, year: int) -> dict[str, Any]:
        """The year's results at these times, from the log (as `appraisal results --as-of` does) up
        to its last position now. Folding and scoring a 3,000-person year takes seconds, and the
        look-back is read a page at a time: the year at these times is kept by the year, the times
        and that position (`Queries.year_at`), for the next page and for its appraisals looked
        back at the same times. Treat as read-only."""
        return queries.results_at(year, self.as_of, self.known_at)


def _end_of_day(value: datetime | None, text: str) -> datetime | None:
    """A date alone means the end of that day."""
    if value is not None and len(text) == 10:
        return value.replace(hour=23, minute=59, second=59, microsecond=999999)
    return value


def results_table(document: dict[str, Any], labels: Labels, rows: Rows | None = None) -> dict[str, Any]:
    """A results document (the year's as of a time, or a publication) shaped for the look-back pages:
    the people `rows` picks (a page of them)."""
    ranking = [{"department": d["id"], **d} for d in document.get("departments", [])]
    shaped = year_view(document, labels, ranking, rows)
    for row in shaped["departments"]:
        row["consequence_labels"] = consequences_text(next(
            (d.get("consequences", []) for d in document.get("departments", []) if d["id"] == row["id"]), []))
    return shaped


def publication_rows(queries: Queries, year: int) -> list[dict[str, Any]]:
    return [{**p, "href": f"/years/{year}/published/{p['version']}"} for p in queries.publications(year)]


@router.get("/years/{year}/lookback")
def year_lookback(request: Request, year: YearNumber, viewer: ViewerDep, queries: QueriesDep, ledger: LedgerDep,
                  as_of: Annotated[str | None, Query(max_length=40)] = None,
                  known_at: Annotated[str | None, Query(max_length=40)] = None,
                  page_number: PageNumber = 1, department: Filter = "", q: Filter = "") -> Response:
    """The year as the system showed it at a recording time and/or as known at a business time (a
    page of `PAGE_ROWS` people, filtered as the year's page is), and every publication of the year
    (admin, inspector)."""
    require_reader(viewer, "looking back")
    back = LookBack(as_of, known_at)
    kept = urlencode({k: v for k, v in (("as_of", back.as_of_text), ("known_at", back.known_at_text)) if v})
    rows = Rows(page_number, department.strip(), q.strip(), f"/years/{year}/lookback" + (f"?{kept}" if kept else ""))
    info = queries.year(year)
    document = back.results(queries, year) if back.active else None
    scheme = (document or {}).get("scheme") or {}
    labels = _labels(ledger, f"{scheme.get('id')}@{scheme.get('version')}" if scheme else None)
    return page(request, "lookback.html", {
        "year": year, "status_label": label(STATUS, info.status), "back": back,
        "y": results_table(document, labels, rows) if document is not None else None,
        "publications": publication_rows(queries, year)}, viewer=viewer)


@router.get("/years/{year}/published/{version}")
def published(request: Request, year: YearNumber, version: Annotated[int, Path(ge=1, le=100_000)],
              viewer: ViewerDep, queries: QueriesDep, ledger: LedgerDep,
              page_number: PageNumber = 1, department: Filter = "", q: Filter = "") -> Response:
    """One publication exactly as published (a publication is public: anyone signed in), a page of
    `PAGE_ROWS` people at a time, filtered as the year's page is."""
    found = queries.publication(year, version)
    rows = Rows(page_number, department.strip(), q.strip(), f"/years/{year}/published/{version}")
    document = found["document"]
    scheme = document.get("scheme") or {}
    labels = _labels(ledger, f"{scheme.get('id')}@{scheme.get('version')}" if scheme else None)
    return page(request, "publication.html", {
        "year": year, "p": found, "y": results_table(document, labels, rows),
        "publications": publication_rows(queries, year)}, viewer=viewer)


# --- job 10: integrity ---------------------------------------------------------------------------------

def latest_checkpoint(store: Any) -> dict[str, Any] | None:
    """The newest recorded checkpoint whose signature holds with the key it names (the inspector
    checks it against the operator's key, not this one: scripts/verify_proof.py)."""
    for document in reversed(store.checkpoints()):
        try:
            verification.check_checkpoint(document, load_public(document.get("public_key", "")))
        except (verification.IntegrityFailure, SigningKeyError, ValueError, TypeError):
            continue
        return document
    return None


def _store(ledger: Any) -> Any:
    return log_store(ledger.recorder)


def integrity_context(ledger: Any, position: int | None, *, whole: bool) -> dict[str, Any]:
    """The state of the chain as verified now: with a signed checkpoint, the events after it,
    chained onto the chain hash it signed (what it covers was verified when it was signed); the
    whole log from its first event (`whole`, or without a checkpoint), with the checkpoint's tree
    head checked too."""
    store = _store(ledger)
    checkpoint = latest_checkpoint(store)
    if checkpoint is not None and not whole:
        verdict = verification.verify_after(store, checkpoint)
        start = checkpoint["head_position"]
    else:
        verdict = (verification.verify(store, checkpoint, load_public(checkpoint["public_key"]))
                   if checkpoint is not None else verification.verify(store))
        start = 0
    walked = verdict.walked
    return {
        "ok": verdict.ok, "message": verdict.message, "size": walked.size, "verified_to": walked.position,
        "head": walked.chain.hex(), "problem": walked.problem, "whole": start == 0,
        "walked_from": start + 1, "walked_count": walked.size - (checkpoint["size"] if start else 0),
        "checked_at": ledger.clock().astimezone(OFFICE_TZ).isoformat(timespec="seconds"),
        "checkpoint": checkpoint, "position": position or (checkpoint or {}).get("head_position", 1),
        "signed_at": _signed_at(checkpoint),
    }


def _signed_at(checkpoint: dict[str, Any] | None) -> str:
    if checkpoint is None:
        return ""
    moment = _when(checkpoint["timestamp"].replace("Z", "+00:00"))
    return moment.astimezone(OFFICE_TZ).isoformat(timespec="seconds") if moment else checkpoint["timestamp"]


@router.get("/integrity")
def integrity_page(request: Request, viewer: ViewerDep, ledger: LedgerDep,
                   position: Annotated[int | None, Query(ge=1, le=2**62)] = None) -> Response:
    """The state of the chain (what was verified, up to which position, when), the latest signed
    checkpoint with its download, a proof for any event, and how to check them without trusting
    the server. Each view verifies the events after the latest checkpoint; the whole log is
    verified on demand (the button: `POST /integrity`), and when no checkpoint was signed yet."""
    require_reader(viewer, "the integrity of the log")
    return page(request, "integrity.html", integrity_context(ledger, position, whole=False), viewer=viewer)


@router.post("/integrity")
def integrity_whole(request: Request, viewer: ViewerDep, ledger: LedgerDep) -> Response:
    """The whole log verified now, from its first event, and the latest checkpoint's tree head
    checked against it (a big log: some seconds)."""
    require_reader(viewer, "the integrity of the log")
    same_origin(request)
    return page(request, "integrity.html", integrity_context(ledger, None, whole=True), viewer=viewer)


def _json_download(document: dict[str, Any], name: str) -> Response:
    return Response(json.dumps(document, ensure_ascii=False, indent=2) + "\n", media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store",
                             "X-Content-Type-Options": "nosniff"})


def _no_checkpoint() -> Problem:
    return Problem(404, "checkpoint-known", "no signed checkpoint yet: the operator takes one with "
                   "`appraisal checkpoint` (one is taken after each publication)", field="checkpoint")


@router.get("/integrity/checkpoint.json")
def checkpoint_download(viewer: ViewerDep, ledger: LedgerDep) -> Response:
    require_reader(viewer, "the integrity of the log")
    checkpoint = latest_checkpoint(_store(ledger))
    if checkpoint is None:
        raise _no_checkpoint()
    return _json_download(checkpoint, f"checkpoint-{checkpoint['size']}.json")


@router.get("/integrity/proof.json")
def proof_download(viewer: ViewerDep, ledger: LedgerDep,
                   position: Annotated[int, Query(ge=1, le=2**62)]) -> Response:
    """The inclusion proof of the event at `position` in the latest checkpoint's tree."""
    require_reader(viewer, "the integrity of the log")
    store = _store(ledger)
    checkpoint = latest_checkpoint(store)
    if checkpoint is None:
        raise _no_checkpoint()
    try:
        proof = verification.prove_inclusion(store, position, checkpoint, load_public(checkpoint["public_key"]))
    except verification.IntegrityFailure as failure:
        raise Problem(422, "proof-position", str(failure), field="position") from None
    return _json_download(proof, f"proof-{position}.json")
