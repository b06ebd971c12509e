"""The tamper-evidence commands of `appraisal` (registered in api/cli/main.py):

    appraisal verify [--checkpoint FILE] [--public-key FILE]    the whole log; exit 1 names the first bad event
    appraisal verify --adopt                                    chain a tail written before the chain existed
    appraisal checkpoint [--out FILE] [--list]                  sign the log's tree head (a file to keep)
    appraisal prove inclusion POSITION --checkpoint FILE --out FILE
    appraisal prove consistency --old FILE --new FILE --out FILE
    appraisal backup export FILE | appraisal backup import FILE [--checkpoint FILE]
    appraisal key [--out FILE]                                  the public key an inspector trusts

The signing key is read from `$APPRAISAL_SIGNING_KEY` or ~/.config/appraisal-ledger/signing.key
(api/settings.py, api/integrity/keys.py). `appraisal import` takes a checkpoint when the log holds a year publication newer
than the latest checkpoint (`checkpoint_after_publication`), written to `$APPRAISAL_CHECKPOINT_DIR`
(default ./checkpoints/).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from eventsourcing.utils import get_topic
from rich.console import Console
from rich.markup import escape

from api.integrity import verification
from api.integrity.backup import export_log, import_log
from api.integrity.keys import Signer, SigningKeyError, load_or_create, load_public, public_pem
from api.ledger import AppraisalLedger
from api.settings import Settings, load
from api.store.logstore import log_store
from domain.aggregates import Year

PUBLISHED_TOPIC = get_topic(Year.Published)

err = Console(stderr=True, soft_wrap=True)
prove = typer.Typer(help="Proofs an inspector checks with scripts/verify_proof.py (证明).", no_args_is_help=True)
backup = typer.Typer(help="Export the whole event log to a file, or import one into an empty store (备份).",
                     no_args_is_help=True)

DbOption = Annotated[str | None, typer.Option("--db", help="sqlite:///path.db or postgresql://… "
                                                           "(default: $APPRAISAL_DB or sqlite:///./appraisal.db)")]
PublicKeyOption = Annotated[Path | None, typer.Option(
    "--public-key", exists=True, dir_okay=False,
    help="the public key (PEM) to trust; default: the local signing key's")]


def _signer(settings: Settings) -> Signer:
    try:
        return load_or_create(settings.signing_key_path)
    except SigningKeyError as error:
        raise _fail(f"signing key: {error}") from None


def _public(path: Path | None, settings: Settings) -> Any:
    return load_public(path.read_bytes()) if path is not None else _signer(settings).public


def _read_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise _fail(f"{path}: {error}") from None
    if not isinstance(document, dict):
        raise _fail(f"{path}: not a JSON object")
    return document


def _write_json(document: dict[str, Any], path: Path | None) -> None:
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if path is None:
        sys.stdout.write(text)
    else:
        path.write_text(text, encoding="utf-8")


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]FAILED 失败:[/red] {escape(message)}", highlight=False)
    return typer.Exit(code)


def verify(
    checkpoint: Annotated[Path | None, typer.Option(exists=True, dir_okay=False,
                                                    help="also check the log still yields this checkpoint")] = None,
    public_key: PublicKeyOption = None,
    adopt: Annotated[bool, typer.Option("--adopt", help="first chain the events at the end of the log that have "
                                                        "no chain row (a log from before the chain): you vouch "
                                                        "for them")] = False,
    db: DbOption = None,
) -> None:
    """Verify the hash chain of the whole log (校验); exit 1 naming the first bad event."""
    settings = load(db=db)
    ledger = AppraisalLedger(settings.db)
    try:
        if adopt:
            count, first = verification.adopt_unchained(log_store(ledger.recorder))
            if count:
                err.print(f"chained 已补链 {count} event(s) from position {first} on: they had no chain row",
                          highlight=False)
        document = _read_json(checkpoint) if checkpoint else None
        verdict = verification.verify(log_store(ledger.recorder), document,
                                   _public(public_key, settings) if document else None)
    except verification.IntegrityFailure as error:
        raise _fail(str(error)) from None
    finally:
        ledger.close()
    if not verdict.ok:
        raise _fail(verdict.message)
    sys.stdout.write(verdict.message + "\n")


def checkpoint(
    out: Annotated[Path | None, typer.Option("--out", help="write the checkpoint here (default: stdout)")] = None,
    list_: Annotated[bool, typer.Option("--list", help="list the checkpoints recorded in the store")] = False,
    db: DbOption = None,
) -> None:
    """Sign the tree head of the whole log (检查点): a small file for the inspector to keep."""
    settings = load(db=db)
    ledger = AppraisalLedger(settings.db)
    try:
        store = log_store(ledger.recorder)
        if list_:
            for document in store.checkpoints():
                sys.stdout.write(f"{document['timestamp']}  size {document['size']}  "
                                 f"root {document['root']}  key {document['key_id']}\n")
            return
        try:
            document = verification.make_checkpoint(store, _signer(settings), ledger.clock)
        except verification.IntegrityFailure as error:
            raise _fail(str(error)) from None
    finally:
        ledger.close()
    _write_json(document, out)
    err.print(f"checkpoint 检查点: {document['size']} events, root {document['root']}"
              + (f" → {out}" if out else ""), highlight=False)


@prove.command("inclusion")
def prove_inclusion(
    position: Annotated[int, typer.Argument(help="the event's position (notification id)")],
    checkpoint: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="the checkpoint to prove against")],
    out: Annotated[Path, typer.Option("--out", help="where to write the proof")],
    public_key: PublicKeyOption = None,
    db: DbOption = None,
) -> None:
    """Prove that one event is in the log a checkpoint signed."""
    settings = load(db=db)
    ledger = AppraisalLedger(settings.db)
    try:
        proof = verification.prove_inclusion(log_store(ledger.recorder), position, _read_json(checkpoint),
                                          _public(public_key, settings))
    except verification.IntegrityFailure as error:
        raise _fail(str(error)) from None
    finally:
        ledger.close()
    _write_json(proof, out)
    err.print(f"inclusion proof 包含证明: position {position} is leaf {proof['leaf_index']} of "
              f"{proof['tree_size']} → {out}", highlight=False)


@prove.command("consistency")
def prove_consistency(
    old: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="the older checkpoint")],
    new: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="the newer checkpoint")],
    out: Annotated[Path, typer.Option("--out", help="where to write the proof")],
    public_key: PublicKeyOption = None,
    db: DbOption = None,
) -> None:
    """Prove that the log an older checkpoint signed is a prefix of a newer one's."""
    settings = load(db=db)
    ledger = AppraisalLedger(settings.db)
    try:
        proof = verification.prove_consistency(log_store(ledger.recorder), _read_json(old), _read_json(new),
                                            _public(public_key, settings))
    except verification.IntegrityFailure as error:
        raise _fail(str(error)) from None
    finally:
        ledger.close()
    _write_json(proof, out)
    err.print(f"consistency proof 一致性证明: {proof['old']['size']} → {proof['new']['size']} events → {out}",
              highlight=False)


@backup.command("export")
def backup_export(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="the backup file (.jsonl, or .jsonl.gz)")],
    db: DbOption = None,
) -> None:
    """Write the whole event log, verified, to a file."""
    settings = load(db=db)
    ledger = AppraisalLedger(settings.db)
    try:
        trailer = export_log(log_store(ledger.recorder), file)
    except verification.IntegrityFailure as error:
        raise _fail(str(error)) from None
    finally:
        ledger.close()
    err.print(f"exported 已导出 {trailer['events']} events, {trailer['commands']} commands, head "
              f"{trailer['chain_head']} → {file}", highlight=False)


@backup.command("import")
def backup_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="a file written by backup export")],
    checkpoint: Annotated[Path | None, typer.Option(exists=True, dir_okay=False,
                                                    help="then check the restored log against this checkpoint")] = None,
    public_key: PublicKeyOption = None,
    db: DbOption = None,
) -> None:
    """Load a backup into an empty store, then verify it."""
    settings = load(db=db)
    ledger = AppraisalLedger(settings.db)
    try:
        store = log_store(ledger.recorder)
        import_log(store, file)
        document = _read_json(checkpoint) if checkpoint else None
        verdict = verification.verify(store, document, _public(public_key, settings) if document else None)
    except verification.IntegrityFailure as error:
        raise _fail(str(error)) from None
    finally:
        ledger.close()
    if not verdict.ok:
        raise _fail(f"imported, but: {verdict.message}")
    sys.stdout.write(f"imported 已恢复: {verdict.message}\n")


def key(
    out: Annotated[Path | None, typer.Option("--out", help="write the public key (PEM) here")] = None,
) -> None:
    """Show the public key that checks this installation's checkpoints (公钥); creates the key on first use."""
    signer = _signer(load())
    pem = public_pem(signer.public)
    if out is not None:
        out.write_text(pem, encoding="utf-8")
    else:
        sys.stdout.write(pem)
    err.print(f"key id {signer.key_id} (private key: {signer.path})", highlight=False)


def checkpoint_after_publication(ledger: AppraisalLedger, settings: Settings) -> Path | None:
    """After an import: a checkpoint when a year was published since the latest checkpoint."""
    store = log_store(ledger.recorder)
    since = max((c["head_position"] for c in store.checkpoints()), default=0)
    if not ledger.recorder.select_notifications(since + 1, 1, topics=[PUBLISHED_TOPIC]):
        return None
    try:
        document = verification.make_checkpoint(store, _signer(settings), ledger.clock)
    except verification.IntegrityFailure as error:
        raise _fail(f"a year was published but no checkpoint could be taken: {error}") from None
    folder = settings.checkpoint_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"checkpoint-{document['size']}-{document['timestamp'].replace(':', '')}.json"
    _write_json(document, path)
    err.print(f"publication recorded: checkpoint 检查点 of {document['size']} events → {path} "
              "(give it to the inspector)", highlight=False)
    return path
