"""The `appraisal` command line (COMMANDS.md): import, results, explain, demo."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from api.cli.integrity_commands import (
    backup,
    checkpoint,
    checkpoint_after_publication,
    key,
    prove,
    verify,
)
from api.cli.replay_commands import replay_command, scheme_app
from api.cli.server_commands import serve, token_app
from api.documents.text import explanation_text
from api.ledger import AppraisalLedger, Refused
from api.settings import Settings, SettingsError, load
from domain.errors import DomainError
from domain.numbers import TOO_MANY_DIGITS, number_format_message
from projections.reading import explain_at, parse_time, results_at

app = typer.Typer(help="Appraisal Ledger 绩效考核台账: event-sourced appraisal scoring.",
                  no_args_is_help=True, add_completion=False)
err = Console(stderr=True)
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)

DbOption = Annotated[str | None, typer.Option("--db", help="sqlite:///path.db or postgresql://… "
                                                           "(default: $APPRAISAL_DB or sqlite:///./appraisal.db)")]


AsOfOption = Annotated[str | None, typer.Option(
    "--as-of", help="as the system showed it at this recording time (ISO 8601 with offset)")]
KnownAtOption = Annotated[str | None, typer.Option(
    "--known-at", help="as known by this business time: only facts that had happened by then")]


def _time(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint=option) from None


def open_ledger(db: str | None) -> AppraisalLedger:
    return AppraisalLedger(load(db=db).db)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error 错误:[/red] {escape(message)}", highlight=False)
    return typer.Exit(code)


def _scheme_ref(text: str | None) -> tuple[str, int] | None:
    if text is None:
        return None
    scheme_id, _, version = text.partition("@")
    if not scheme_id or not version.isdigit():
        raise typer.BadParameter("expected ID@VERSION, e.g. bianban@2", param_hint="--scheme")
    return scheme_id, int(version)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                         help="commands, one JSON object per line (.jsonl), or a ledger workbook (.xlsx)")],
    actor: Annotated[str | None, typer.Option(help="the actor of a workbook's rows that name none")] = None,
    db: DbOption = None,
    batch_size: Annotated[int, typer.Option(min=1, max=5000, help="commands per transaction")] = 500,
) -> None:
    """Apply the commands of a JSON Lines file or an Excel ledger in order (导入命令)."""
    settings = load(db=db)
    ledger = open_ledger(db)
    if file.suffix.lower() == ".xlsx":
        return _import_workbook(ledger, settings, file, actor, batch_size)
    line_numbers: list[int] = []
    bad_line: list[tuple[int, DomainError]] = []
    total_lines = sum(1 for line in file.open(encoding="utf-8") if line.strip())

    def bodies() -> Iterator[dict[str, Any]]:
        with file.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    body = json.loads(line)
                except json.JSONDecodeError as exc:
                    bad_line.append((number, DomainError("(line)", f"not valid JSON: {exc.msg} "
                                                                   f"(column {exc.colno})", rule="jsonl")))
                    return
                except ValueError:  # an integer beyond Python's 4300 digits: never a number of ours
                    bad_line.append((number, DomainError("(line)", number_format_message(TOO_MANY_DIGITS),
                                                         rule="number-format")))
                except RecursionError as exc:  # nesting deeper than Python's JSON reader goes
                    bad_line.append((number, DomainError("(line)", f"not readable JSON: {exc}", rule="jsonl")))
                    return
                line_numbers.append(number)
                yield body

    progress = Progress(TextColumn("导入 importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=err, disable=not err.is_terminal, transient=True)
    try:
        with progress:
            task = progress.add_task("import", total=total_lines)
            outcomes = ledger.submit(bodies(), batch_size=batch_size,
                                     on_progress=lambda n: progress.advance(task, n))
        checkpoint_after_publication(ledger, settings)  # tamper evidence: a signed tree head at each publication
    except Refused as refused:
        outcome = refused.outcome
        line = line_numbers[outcome.index]
        done = outcome.index
        err.print(f"recorded 已记录 {done} command(s) before line {line}", highlight=False)
        checkpoint_after_publication(ledger, settings)  # a year published before the refused line
        assert outcome.error is not None
        raise _fail(f"line {line}: refused 拒绝 — {outcome.error} [rule: {outcome.error.rule}]") from None
    if bad_line:
        number, error = bad_line[0]
        err.print(f"recorded 已记录 {len(line_numbers)} command(s) before line {number}", highlight=False)
        raise _fail(f"line {number}: refused 拒绝 — {error} [rule: {error.rule}]")
    skipped = sum(1 for o in outcomes if o.duplicate)
    err.print(f"imported 已导入 {len(outcomes) - skipped} command(s); {skipped} already recorded (skipped 跳过)",
              highlight=False)


def _import_workbook(ledger: AppraisalLedger, settings: Settings, file: Path, actor: str | None,
                     batch_size: int) -> None:
    """An Excel ledger (api/documents/ledger_workbook.py): its rows as the commands, refusals naming sheet, row, column."""
    from api.documents.ledger_workbook import WorkbookError, import_workbook

    try:
        done = import_workbook(ledger, file.read_bytes(), actor=actor, batch_size=batch_size)
    except WorkbookError as error:  # not a ledger workbook: nothing imported
        raise _fail(f"refused 拒绝 — {error.describe()}") from None
    checkpoint_after_publication(ledger, settings)
    if done.refusal is not None:
        err.print(f"recorded 已记录 {done.accepted} row(s) before the refused one", highlight=False)
        raise _fail(f"refused 拒绝 — {done.refusal.describe()}")
    err.print(f"imported 已导入 {done.accepted - done.skipped} row(s); {done.skipped} already recorded "
              f"(skipped 跳过)", highlight=False)


@app.command()
def template(
    year: Annotated[int, typer.Option(help="the appraisal year")],
    kind: Annotated[list[str] | None, typer.Option(
        help="ratings | measurements | occurrences | surveys | adjustments (repeat; default: all, surveys when the scheme has one)")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="default ledger-YEAR.xlsx")] = None,
    db: DbOption = None,
) -> None:
    """An Excel ledger template for a year (台账模板): a sheet per kind, drop-downs, 说明."""
    from api.documents.ledger_workbook import template as make_template

    path = output or Path(f"ledger-{year}.xlsx")
    try:
        path.write_bytes(make_template(open_ledger(db), year, kind or None))
    except DomainError as error:
        raise _fail(str(error)) from None
    err.print(f"wrote 已写入 {path}")


@app.command()
def results(
    year: Annotated[int, typer.Option(help="the appraisal year")],
    format: Annotated[str, typer.Option("--format", help="json | table | xlsx")] = "table",
    scheme: Annotated[str | None, typer.Option(help="replay under ID@VERSION (records nothing)")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file for xlsx (default results-YEAR.xlsx)")] = None,
    as_of: AsOfOption = None,
    known_at: KnownAtOption = None,
    db: DbOption = None,
) -> None:
    """The year's results (年度考核结果)."""
    ledger = open_ledger(db)
    try:
        if as_of or known_at or scheme:  # a replay reads the log in one fold: faster than aggregate by aggregate
            document = results_at(ledger, year, as_of=_time(as_of, "--as-of"),
                                  known_at=_time(known_at, "--known-at"), scheme=_scheme_ref(scheme))
        else:
            document = ledger.results(year, _scheme_ref(scheme))
    except DomainError as error:
        raise _fail(str(error)) from None
    if format == "json":
        sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
    elif format == "table":
        _results_table(document)
    elif format == "xlsx":
        from api.documents.results_workbook import write_results

        path = output or Path(f"results-{year}.xlsx")
        write_results(document, path)
        err.print(f"wrote 已写入 {path}")
    else:
        raise typer.BadParameter("json, table or xlsx", param_hint="--format")


def _results_table(document: dict[str, Any]) -> None:
    title = (f"{document['year']} 年度考核结果 results · 方案 scheme "
             f"{document['scheme']['id']}@{document['scheme']['version']} · {document['status']}")
    deps = Table(title=title + " · 部门 departments")
    for column in ("id", "得分 score", "名次 rank", "不完整 incomplete", "后果 consequences"):
        deps.add_column(column)
    for dep in document["departments"]:
        consequences = ", ".join(c["type"] + (f" ({c['posts']})" if "posts" in c else "") for c in dep["consequences"])
        deps.add_row(dep["id"], dep["score"], str(dep["rank"]), "yes" if dep["incomplete"] else "", consequences)
    out.print(deps)
    people = Table(title="个人 people")
    for column in ("id", "部门 dep", "职位 position", "部门分 D", "个人分 I", "加减 adj", "总分 total",
                   "名次 rank", "档次 tier", "系数 coef", "等次 grade", "标记 flags", "后果 consequences"):
        people.add_column(column)
    ordered = sorted(document["people"], key=lambda p: (p["rank"] is None, p["rank"] or 0, p["id"]))
    for person in ordered:
        flags = ", ".join(flag for flag, on in (("vetoed 否决", person["vetoed"]),
                                                 ("incomplete 不完整", person["incomplete"])) if on)
        people.add_row(person["id"], person["department"], person["position"], person["department_score"],
                       person["individual_score"], person["adjustments"], person["total"],
                       _dash(person["rank"]), _dash(person["tier"]), _dash(person["coefficient"]),
                       _dash(person["grade"]), flags, ", ".join(c["type"] for c in person["consequences"]))
    out.print(people)
    for tie in document["unresolved_ties"]:
        out.print(f"[yellow]并列待定 unresolved tie at {tie['total']}: {', '.join(tie['people'])}[/yellow]")


def _dash(value: Any) -> str:
    return "—" if value is None else str(value)


@app.command()
def explain(
    appraisal: Annotated[str, typer.Argument(help='an appraisal, e.g. "2025:p-017"')],
    format: Annotated[str, typer.Option("--format", help="text | json")] = "text",
    as_of: AsOfOption = None,
    known_at: KnownAtOption = None,
    db: DbOption = None,
) -> None:
    """How one score arose, every figure tied to its events and rules (得分说明)."""
    ledger = open_ledger(db)
    try:
        if as_of or known_at:
            document = explain_at(ledger, appraisal, as_of=_time(as_of, "--as-of"),
                                  known_at=_time(known_at, "--known-at"))
        else:
            document = ledger.explain(appraisal)
    except DomainError as error:
        raise _fail(str(error)) from None
    if format == "json":
        sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
    elif format == "text":
        sys.stdout.write(explanation_text(document))
    else:
        raise typer.BadParameter("text or json", param_hint="--format")


@app.command()
def demo(
    out_file: Annotated[Path, typer.Option("--out", help="where to write the demo commands")] = Path("demo-2025.jsonl"),
    year: int = 2025,
    departments: int = 6,
    staff_per_department: int = 7,
    periods: Annotated[str, typer.Option(help="monthly | weekly")] = "monthly",
    seed: int = 2025,
    correction: Annotated[bool, typer.Option(help="also the rule change: publish bianban@2 (a satisfaction "
                                             "survey), adopt it, record two questionnaire rounds per department")] = True,
) -> None:
    """Write a realistic demo year as batch-import commands (演示数据)."""
    from api.cli.demo import demo_commands, rule_change_commands, write_jsonl

    commands = demo_commands(year, departments=departments, staff_per_department=staff_per_department,
                             periods=periods, seed=seed)
    if correction:
        commands += rule_change_commands(year, departments=departments, seed=seed)
    count = write_jsonl(out_file, commands)
    err.print(f"wrote 已写入 {count} commands to {out_file}")


def give_way(niceness: int) -> None:
    """Run at least this nice (a worker already nicer stays so)."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if niceness > current:
        os.setpriority(os.PRIO_PROCESS, 0, niceness)


@app.command()
def project(
    once: Annotated[bool, typer.Option("--once", help="catch up and exit")] = False,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="rebuild every read model from zero, then swap")] = False,
    interval: Annotated[float, typer.Option(help="polling interval in seconds (SQLite)")] = 0.5,
    db: DbOption = None,
) -> None:
    """Keep the read models up to date (读模型): follow the log, restart after failures."""
    from projections.projection import ReadModelProjection
    from projections.worker import run

    settings = load(db=db)
    if once or rebuild:
        ledger = AppraisalLedger(settings.db)
        projection = ReadModelProjection(ledger, resume=not rebuild)  # a rebuild folds from zero itself
        started = time.perf_counter()
        count = projection.rebuild() if rebuild else projection.catch_up()
        err.print(f"{'rebuilt from' if rebuild else 'processed'} {count} event(s) in "
                  f"{time.perf_counter() - started:.2f}s; position {projection.state.position}", highlight=False)
        projection.close()
        return
    give_way(settings.worker_nice)
    err.print("following the log (Ctrl-C to stop)")
    with contextlib.suppress(KeyboardInterrupt):
        run(lambda: AppraisalLedger(settings.db), interval=interval,
            on_batch=lambda n, position: err.print(f"processed {n} event(s); position {position}", highlight=False))


app.command("verify")(verify)
app.command("checkpoint")(checkpoint)
app.command("key")(key)
app.add_typer(prove, name="prove")
app.add_typer(backup, name="backup")
app.command("replay")(replay_command)
app.add_typer(scheme_app, name="scheme")
app.command("serve")(serve)  # the HTTP API (api/http/)
app.add_typer(token_app, name="token")


def main() -> None:
    try:
        app()
    except SettingsError as error:  # an APPRAISAL_* variable (or an option) out of bounds, in any command
        err.print(f"[red]error 错误:[/red] settings 设置: {escape(str(error))}", highlight=False)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
