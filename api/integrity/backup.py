"""Backups: the whole event log to one file, and back into an empty store.

The file is JSON Lines (gzip-compressed when its name ends in `.gz`):

    {"format": "appraisal-ledger-backup/1", "exported_at": "…Z", "store": "sqlite"}
    {"e": [position, "originator id", version, "topic", "state, base64", "chain hash, hex"]}  one per event
    {"c": {"command_id": …, "type": …, "fingerprint": …, "target": …, "position": …, "answer": "…"}}
    {"k": {checkpoint}}                                                       the checkpoints table
    {"end": {"events": N, "head_position": P, "chain_head": hex, "root": hex, "commands": M, "checkpoints": K}}

Events keep their positions and stored bytes, so the restored log has the same leaves, chain and
Merkle roots: checkpoints taken before the backup verify against the restored store. Export walks
the log verifying it, and refuses (leaving no file) at the first bad event. Import recomputes every
leaf and chain hash from the file, refuses a file whose chain or trailer does not hold, and writes
everything in one transaction into a store that must be empty: all or nothing.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path
from typing import IO, Any
from uuid import UUID

from api.integrity import merkle
from api.integrity.verification import IntegrityFailure, walk
from api.store.chain import SEED, leaf_hash
from api.store.logstore import EventRow, LogStore, Row

BACKUP_FORMAT = "appraisal-ledger-backup/1"
BATCH = 5000


def _open(path: Path, mode: str, named: Path | None = None) -> IO[str]:
    if (named or path).suffix == ".gz":
        return gzip.open(path, mode + "t", encoding="utf-8", compresslevel=6)  # type: ignore[return-value]
    return path.open(mode, encoding="utf-8")


def _line(handle: IO[str], value: dict[str, Any]) -> None:
    handle.write(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    handle.write("\n")


def export_log(store: LogStore, path: Path, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> dict[str, Any]:
    """Write the whole log to `path`; return the trailer. Refuses a log that does not verify."""
    partial = path.with_name(path.name + ".partial")
    try:
        with _open(partial, "w", named=path) as handle:
            _line(handle, {"format": BACKUP_FORMAT, "store": store.kind,
                           "exported_at": clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})

            def write_event(row: Row, chain: bytes) -> None:
                position, oid, version, topic, state, _ = row
                _line(handle, {"e": [position, str(UUID(bytes=bytes(oid))), version, topic,
                                     base64.b64encode(bytes(state)).decode(), chain.hex()]})

            walked = walk(store, on_row=write_event)
            if walked.problem is not None:
                raise IntegrityFailure(f"refusing to back up a log that does not verify: first bad event at "
                                       f"{walked.problem.describe()}")
            assert walked.root is not None
            commands = 0
            for row in store.command_rows():
                _line(handle, {"c": row})
                commands += 1
            checkpoints = store.checkpoints()
            for document in checkpoints:
                _line(handle, {"k": document})
            trailer = {"events": walked.size, "head_position": walked.position, "chain_head": walked.chain.hex(),
                       "root": walked.root.hex(), "commands": commands, "checkpoints": len(checkpoints)}
            _line(handle, {"end": trailer})
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return trailer


def import_log(store: LogStore, path: Path) -> dict[str, Any]:
    """Load a backup into an empty store (one transaction); return its trailer."""
    if not store.is_empty():
        raise IntegrityFailure("the store is not empty: a backup goes into an empty store only")
    with _open(path, "r") as handle, store.loader() as load:
        header = json.loads(handle.readline() or "null")
        if not isinstance(header, dict) or header.get("format") != BACKUP_FORMAT:
            raise IntegrityFailure(f"{path} is not an Appraisal Ledger backup ({BACKUP_FORMAT})")
        state = _Restore(load)
        trailer = None
        for number, text in enumerate(handle, start=2):
            if trailer is not None:
                raise IntegrityFailure(f"line {number}: data after the end of the backup")
            record = json.loads(text)
            if "e" in record:
                state.event(number, record["e"])
            elif "c" in record:
                state.command(record["c"])
            elif "k" in record:
                state.checkpoints.append(record["k"])
            elif "end" in record:
                trailer = record["end"]
            else:
                raise IntegrityFailure(f"line {number}: unknown record {sorted(record)}")
        if trailer is None:
            raise IntegrityFailure("the backup ends without its trailer: the file is truncated")
        state.finish(trailer)
    return trailer


class _Restore:
    def __init__(self, load: Any) -> None:
        self.load = load
        self.chain, self.last, self.size = SEED, 0, 0
        self.tree = merkle.Tree()
        self.rows: list[EventRow] = []
        self.hashes: list[bytes] = []
        self.commands: list[dict[str, Any]] = []
        self.command_count = 0
        self.checkpoints: list[dict[str, Any]] = []

    def event(self, number: int, fields: list[Any]) -> None:
        position, oid, version, topic, state_b64, chain_hex = fields
        if position <= self.last:
            raise IntegrityFailure(f"line {number}: position {position} is not after {self.last}")
        state = base64.b64decode(state_b64)
        leaf = leaf_hash(position, UUID(oid).bytes, version, topic, state)
        self.chain = sha256(self.chain + leaf).digest()
        if self.chain.hex() != chain_hex:
            raise IntegrityFailure(f"line {number}: the event at position {position} (aggregate {oid} version "
                                   f"{version}) does not match its chain hash: the backup was altered")
        self.tree.append(leaf)
        self.last, self.size = position, self.size + 1
        self.rows.append((position, oid, version, topic, state))
        self.hashes.append(self.chain)
        if len(self.rows) >= BATCH:
            self._flush_events()

    def _flush_events(self) -> None:
        if self.rows:
            self.load.events(self.rows, self.hashes)
            self.rows, self.hashes = [], []

    def command(self, row: dict[str, Any]) -> None:
        self._flush_events()
        self.commands.append(row)
        self.command_count += 1
        if len(self.commands) >= BATCH:
            self.load.commands(self.commands)
            self.commands = []

    def finish(self, trailer: dict[str, Any]) -> None:
        self._flush_events()
        if self.commands:
            self.load.commands(self.commands)
        if self.checkpoints:
            self.load.checkpoints(self.checkpoints)
        found = {"events": self.size, "head_position": self.last, "chain_head": self.chain.hex(),
                 "root": self.tree.root().hex(), "commands": self.command_count,
                 "checkpoints": len(self.checkpoints)}
        for name, value in found.items():
            if trailer.get(name) != value:
                raise IntegrityFailure(f"the backup's trailer says {name} {trailer.get(name)!r}, the file "
                                       f"holds {value!r}: the file was altered or truncated")
