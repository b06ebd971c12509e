"""`appraisal serve` and `appraisal token create|revoke|list` (registered in api/cli/main.py)."""

from __future__ import annotations

import getpass
import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from api.settings import load

err = Console(stderr=True)
out = Console(soft_wrap=True)

DbOption = Annotated[str | None, typer.Option("--db", help="sqlite:///path.db or postgresql://… "
                                                           "(default: $APPRAISAL_DB or sqlite:///./appraisal.db)")]
token_app = typer.Typer(help="Bearer tokens of the HTTP API (令牌): only their SHA-256 hashes are stored.",
                        no_args_is_help=True)


def _credentials(db: str | None):  # type: ignore[no-untyped-def]
    from api.http.auth import Credentials
    from api.ledger import AppraisalLedger

    ledger = AppraisalLedger(load(db=db).db)
    return ledger, Credentials(ledger)


def _operator(by: str | None) -> str:
    if by:
        return by
    try:
        return f"{getpass.getuser()} (cli)"
    except Exception:  # no user name in a container
        return "cli"


@token_app.command("create")
def token_create(
    person: Annotated[str, typer.Option("--person", help="the person the token speaks for (the actor)")],
    grant: Annotated[list[str] | None, typer.Option("--grant", help="admin | recorder | inspector (repeatable)")] = None,
    note: Annotated[str | None, typer.Option(help="why the token exists")] = None,
    by: Annotated[str | None, typer.Option("--by", help="who creates it (default: the OS user)")] = None,
    db: DbOption = None,
) -> None:
    """Create a token and print it once (创建令牌). Without grants the person must be recorded."""
    from api.http.auth import TokenError

    ledger, credentials = _credentials(db)
    try:
        token, record = credentials.create(person, tuple(grant or ()), created_by=_operator(by), note=note)
    except TokenError as error:
        err.print(f"[red]error 错误:[/red] {escape(str(error))}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        ledger.close()
    grants = ", ".join(record.grants) or "none (rater, staff)"
    err.print(f"token 令牌 {record.token_id} for {record.person}; grants 授权: {grants}. "
              "It is shown only now: keep it secret.", highlight=False)
    sys.stdout.write(token + "\n")


@token_app.command("revoke")
def token_revoke(
    key: Annotated[str, typer.Argument(help="the token, its id (tk-…) or its first characters")],
    by: Annotated[str | None, typer.Option("--by", help="who revokes it (default: the OS user)")] = None,
    db: DbOption = None,
) -> None:
    """Revoke a token (吊销令牌): it stops working at once (within the server's token cache time)."""
    from api.http.auth import TokenError

    ledger, credentials = _credentials(db)
    try:
        record = credentials.revoke(key, by=_operator(by))
    except TokenError as error:
        err.print(f"[red]error 错误:[/red] {escape(str(error))}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        ledger.close()
    err.print(f"revoked 已吊销 {record.token_id} ({record.person}) at {record.revoked_at} by {record.revoked_by}",
              highlight=False)


@token_app.command("list")
def token_list(
    format: Annotated[str, typer.Option("--format", help="table | json")] = "table",
    db: DbOption = None,
) -> None:
    """Every token ever created, revoked ones included (令牌列表); never the tokens themselves."""
    ledger, credentials = _credentials(db)
    try:
        records = credentials.list()
    finally:
        ledger.close()
    if format == "json":
        rows = [{"token_id": r.token_id, "prefix": r.prefix, "person": r.person, "grants": list(r.grants),
                 "created_at": r.created_at, "created_by": r.created_by, "note": r.note,
                 "revoked_at": r.revoked_at, "revoked_by": r.revoked_by} for r in records]
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
        return
    table = Table(title="令牌 tokens")
    for column in ("id", "prefix", "person 人员", "grants 授权", "created 创建", "by", "revoked 吊销"):
        table.add_column(column)
    for r in records:
        table.add_row(r.token_id, r.prefix + "…", r.person, ", ".join(r.grants) or "—", r.created_at,
                      r.created_by, f"{r.revoked_at} by {r.revoked_by}" if r.revoked_at else "")
    out.print(table)


def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on (default: $APPRAISAL_HOST or 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: $APPRAISAL_PORT or 8000)")] = None,
    db: DbOption = None,
    log_format: Annotated[str | None, typer.Option("--log-format", help="json (production) | console "
                                                   "(default: $APPRAISAL_LOG_FORMAT or console)")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="processes (each with its own ledger)")] = 1,
    projection: Annotated[str | None, typer.Option(
        "--projection", help="background (a thread of the server) | none (`appraisal project` runs beside "
        "it) | inline (default: $APPRAISAL_PROJECTION or background)")] = None,
) -> None:
    """Run the HTTP API (运行 HTTP 服务) with uvicorn: OpenAPI at /docs and /openapi.json. Queries are
    answered from the read models, kept by a projection thread of the server (`--projection none`
    when an `appraisal project` worker keeps them: production)."""
    import uvicorn

    from api.http import logs
    from api.server.app import create_app

    settings = load(db=db, log_format=log_format, projection=projection, host=host, port=port)
    logs.configure(settings.log_format, settings.log_level)
    if workers > 1:
        if settings.projection != "none":
            err.print("[red]error 错误:[/red] with --workers > 1 every process would run its own projection: "
                      "run `appraisal project` beside `appraisal serve --projection none`", highlight=False)
            raise typer.Exit(2)
        # uvicorn's worker processes make their own app (`app_from_env`), from the environment only.
        settings.hand_down()
        uvicorn.run("api.server.app:app_from_env", factory=True, host=settings.host, port=settings.port,
                    workers=workers, access_log=False, log_config=None)
    else:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port, access_log=False, log_config=None)
