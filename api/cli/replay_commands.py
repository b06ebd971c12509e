"""Replay and scheme commands of `appraisal` (registered in api/cli/main.py; SCORING.md §9):

    appraisal replay --year Y --scheme ID@VERSION [--format json|table] [--all]
    appraisal scheme list
    appraisal scheme show ID@VERSION
    appraisal scheme diff OLD NEW [--format text|json]     OLD/NEW: ID@VERSION or a scheme file (JSON)

All of them only read: a replay folds the log once and records nothing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from api.ledger import AppraisalLedger
from api.settings import load
from domain.aggregates import SchemeCatalogue
from domain.errors import DomainError, InvalidDocument
from domain.replay import parse_scheme_ref
from domain.scheme import Scheme, parse_scheme
from domain.scheme_diff import diff_document, diff_text
from projections.replays import replay

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
scheme_app = typer.Typer(help="Scheme versions: list, show, diff (考核方案).", no_args_is_help=True)

DbOption = Annotated[str | None, typer.Option("--db", help="sqlite:///path.db or postgresql://… "
                                                           "(default: $APPRAISAL_DB or sqlite:///./appraisal.db)")]


def _ledger(db: str | None) -> AppraisalLedger:
    return AppraisalLedger(load(db=db).db)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error 错误:[/red] {escape(message)}", highlight=False)
    return typer.Exit(code)


def _ref(text: str, hint: str) -> tuple[str, int]:
    try:
        return parse_scheme_ref(text)
    except DomainError:
        raise typer.BadParameter("expected ID@VERSION, e.g. bianban@2", param_hint=hint) from None


def _print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")


# --- replay ---------------------------------------------------------------------------------------


def replay_command(
    year: Annotated[int, typer.Option(help="the appraisal year")],
    scheme: Annotated[str, typer.Option(help="the scheme version to replay under, ID@VERSION")],
    format: Annotated[str, typer.Option("--format", help="json | table")] = "table",
    all_subjects: Annotated[bool, typer.Option("--all", help="table: list unchanged subjects too")] = False,
    db: DbOption = None,
) -> None:
    """The year's current results beside a replay under another scheme version, per subject;
    records nothing (重算对比)."""
    if format not in ("json", "table"):
        raise typer.BadParameter("json or table", param_hint="--format")
    ref = _ref(scheme, "--scheme")
    ledger = _ledger(db)
    try:
        report = replay(ledger, year, ref)
    except DomainError as error:
        raise _fail(str(error)) from None
    finally:
        ledger.close()
    if format == "json":
        _print_json(report)
    else:
        replay_table(report, all_subjects=all_subjects)


def replay_table(report: dict[str, Any], *, all_subjects: bool = False) -> None:
    summary = report["summary"]
    out.print(f"{report['year']} 重算对比 replay: {report['current']['scheme']} ({report['current']['status']}) → "
              f"{report['replayed']['scheme']}", highlight=False)
    out.print(f"人员 people {summary['people']}: 总分变化 total changed {summary['total_changed']}, "
              f"名次 rank {summary['rank_changed']}, 档次 tier {summary['tier_changed']}, "
              f"等次 grade {summary['grade_changed']}, 后果 consequences {summary['consequences_changed']}; "
              f"部门 departments {summary['departments']}: 得分变化 score changed "
              f"{summary['department_score_changed']}, 名次 rank {summary['department_rank_changed']}; "
              f"不适用事实 facts not applicable {summary['not_applicable']}", highlight=False)
    for change in report["scheme_diff"]:
        old = "—" if change["old"] is None else change["old"]
        new = "—" if change["new"] is None else change["new"]
        out.print(f"  · {change['label']}: {old} → {new}", highlight=False, markup=False)
    for direction, title in (("up", "上升最多 largest moves up"), ("down", "下降最多 largest moves down")):
        moves = summary["largest_moves"][direction]
        if moves:
            out.print(f"{title}: " + ", ".join(f"{m['id']} {m['old']}→{m['new']} ({m['delta']})" for m in moves),
                      highlight=False, markup=False)

    deps = Table(title="部门 departments")
    for column in ("id", "得分 score", "差 Δ", "名次 rank", "指标 leaves", "规则 rules", "不适用 n/a"):
        deps.add_column(column)
    shown_deps = [d for d in report["departments"] if all_subjects or _changed(d)]
    for dep in shown_deps:
        deps.add_row(dep["id"], _pair(dep, "score"), dep["delta"] or "", _pair(dep, "rank"),
                     _values(dep["leaves"]), _values(dep["rules"]), _count(dep["not_applicable"]))
    if shown_deps:
        out.print(deps)
    people = Table(title="个人 people")
    for column in ("id", "部门 dep", "总分 total", "差 Δ", "名次 rank", "档次 tier", "等次 grade",
                   "系数 coef", "指标 leaves", "规则 rules", "不适用 n/a"):
        people.add_column(column)
    shown_people = [p for p in report["people"] if all_subjects or _changed(p)]
    for person in shown_people:
        people.add_row(person["id"], person["department"] or "", _pair(person, "total"), person["delta"] or "",
                       _pair(person, "rank"), _pair(person, "tier"), _pair(person, "grade"),
                       _pair(person, "coefficient"), _values(person["leaves"]), _values(person["rules"]),
                       _count(person["not_applicable"]))
    if shown_people:
        out.print(people)
    hidden = len(report["people"]) + len(report["departments"]) - len(shown_people) - len(shown_deps)
    if hidden:
        out.print(f"{hidden} 个未变化 unchanged subject(s) not shown (--all lists them)", highlight=False)


def _changed(entry: dict[str, Any]) -> bool:
    return bool(entry["changed"] or entry["leaves"] or entry["rules"] or entry["not_applicable"])


def _pair(entry: dict[str, Any], name: str) -> str:
    old = entry["old"][name] if entry["old"] else None
    new = entry["new"][name] if entry["new"] else None
    if old == new:
        return "—" if old is None else str(old)
    return f"{'—' if old is None else old} → {'—' if new is None else new}"


def _values(changes: dict[str, dict[str, Any]]) -> str:
    return "; ".join(f"{key} {v['old'] or '—'}→{v['new'] or '—'}" for key, v in changes.items())


def _count(items: list[Any]) -> str:
    return str(len(items)) if items else ""


# --- scheme list / show / diff ------------------------------------------------------------------------


def _load(ledger: AppraisalLedger, text: str, hint: str) -> Scheme:
    path = Path(text)
    if "@" not in text and path.is_file():
        try:
            return parse_scheme(json.loads(path.read_text("utf-8")))
        except (ValueError, InvalidDocument) as error:
            raise _fail(f"{text}: {error}") from None
    return ledger.scheme(*_ref(text, hint))


@scheme_app.command("list")
def scheme_list(db: DbOption = None) -> None:
    """Every published scheme version, with what it supersedes and why."""
    ledger = _ledger(db)
    try:
        catalogue = ledger.get(SchemeCatalogue.create_id())
        versions = catalogue.versions if catalogue is not None else {}
        table = Table(title="考核方案 scheme versions")
        for column in ("scheme", "名称 name", "取代 supersedes", "理由 reason"):
            table.add_column(column)
        for scheme_id in sorted(versions):
            for version in sorted(versions[scheme_id]):
                scheme = ledger.scheme(scheme_id, version)
                table.add_row(scheme.ref, scheme.name.label(),
                              "" if scheme.supersedes is None else f"{scheme.id}@{scheme.supersedes}",
                              scheme.reason or "")
    except DomainError as error:
        raise _fail(str(error)) from None
    finally:
        ledger.close()
    out.print(table)


@scheme_app.command("show")
def scheme_show(
    ref: Annotated[str, typer.Argument(help="ID@VERSION, e.g. bianban@1")],
    db: DbOption = None,
) -> None:
    """A published scheme version's document (JSON)."""
    ledger = _ledger(db)
    try:
        scheme = ledger.scheme(*_ref(ref, "REF"))
    except DomainError as error:
        raise _fail(str(error)) from None
    finally:
        ledger.close()
    _print_json(scheme.document())


@scheme_app.command("diff")
def scheme_diff(
    old: Annotated[str, typer.Argument(help="ID@VERSION or a scheme file (JSON)")],
    new: Annotated[str, typer.Argument(help="ID@VERSION or a scheme file (JSON)")],
    format: Annotated[str, typer.Option("--format", help="text | json")] = "text",
    db: DbOption = None,
) -> None:
    """What changed between two scheme versions: weights, shares, points, rules, grading (方案差异)."""
    if format not in ("json", "text"):
        raise typer.BadParameter("text or json", param_hint="--format")
    ledger = _ledger(db)
    try:
        before, after = _load(ledger, old, "OLD"), _load(ledger, new, "NEW")
    except DomainError as error:
        raise _fail(str(error)) from None
    finally:
        ledger.close()
    if format == "json":
        _print_json(diff_document(before, after))
    else:
        sys.stdout.write(diff_text(before, after))


__all__ = ["replay_command", "replay_table", "scheme_app"]
