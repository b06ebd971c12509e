#!/usr/bin/env python3
"""Check Appraisal Ledger checkpoints and proofs without the Appraisal Ledger: this file imports
only the Python standard library and `cryptography` (pip install cryptography), so that an
inspector can read all of it and trust nothing else.

    verify_proof.py checkpoint CHECKPOINT.json --public-key PUBLIC.pem
    verify_proof.py inclusion PROOF.json --public-key PUBLIC.pem [--checkpoint MINE.json] [--show-event]
    verify_proof.py consistency PROOF.json --public-key PUBLIC.pem [--old MINE_OLD.json] [--new MINE_NEW.json]

Exit status 0 and "ok: …" when everything holds, 1 and "FAILED: …" otherwise. The public key is
the one the ledger's operator handed over (`appraisal key --out PUBLIC.pem`); the copy inside a
checkpoint is never trusted. `--checkpoint/--old/--new` name the checkpoint files you kept: the
proof must be about exactly those.

What is checked (the formats are in the ledger's README, section "Tamper evidence"):
- a checkpoint: its Ed25519 signature over the text
      appraisal-ledger-checkpoint/1\\nsize N\\nroot HEX\\nhead-position P\\nchain-head HEX\\n
      timestamp T\\nkey-id K\\n
  made with the trusted key (key id = first 8 bytes of SHA-256 of the raw 32-byte key, hex);
- an inclusion proof: the event's leaf hash recomputed from its stored bytes,
      SHA-256(0x00 || be64(position) || be32(16) || uuid (16 bytes) || be64(version)
                     || be32(len topic) || topic || be32(len state) || state),
  and its audit path up to the checkpoint's root (RFC 9162 §2.1.3.2);
- a consistency proof: the old checkpoint's tree is a prefix of the new one's (RFC 9162 §2.1.4.2).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import struct
import sys
import uuid
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

CHECKPOINT_FORMAT = "appraisal-ledger-checkpoint/1"
INCLUSION_FORMAT = "appraisal-ledger-inclusion/1"
CONSISTENCY_FORMAT = "appraisal-ledger-consistency/1"
SIGNED_FIELDS = ("size", "root", "head_position", "chain_head", "timestamp", "key_id")


class Failed(Exception):
    pass


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def node(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def leaf_hash(event: dict[str, Any]) -> bytes:
    topic = str(event["topic"]).encode()
    state = base64.b64decode(event["state"], validate=True)
    oid = uuid.UUID(str(event["originator_id"])).bytes
    return sha256(b"\x00" + struct.pack(">qI", _int(event["position"]), len(oid)) + oid
                  + struct.pack(">qI", _int(event["originator_version"]), len(topic)) + topic
                  + struct.pack(">I", len(state)) + state)


def _int(value: Any) -> int:
    if type(value) is not int:
        raise Failed(f"expected an integer, found {value!r}")
    return value


def _hex32(value: Any, what: str) -> bytes:
    try:
        digest = bytes.fromhex(value)
    except (TypeError, ValueError):
        raise Failed(f"{what} is not hex") from None
    if len(digest) != 32:
        raise Failed(f"{what} is not a 32-byte hash")
    return digest


def verify_inclusion(leaf: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, path: list[bytes]) -> bool:
    """RFC 9162 §2.1.4.2."""
    if not 0 < first <= second:
        return False
    if first == second:
        return not path and first_root == second_root
    if first & (first - 1) == 0:
        path = [first_root, *path]
    if not path:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


def load_key(path: Path) -> Ed25519PublicKey:
    data = path.read_bytes()
    try:
        key = (serialization.load_pem_public_key(data) if b"BEGIN PUBLIC KEY" in data
               else Ed25519PublicKey.from_public_bytes(base64.b64decode(data.strip(), validate=True)))
    except ValueError as error:
        raise Failed(f"{path}: not a public key ({error})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise Failed(f"{path}: not an Ed25519 public key")
    return key


def key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return sha256(raw)[:8].hex()


def check_checkpoint(cp: Any, key: Ed25519PublicKey, what: str = "checkpoint") -> dict[str, Any]:
    if not isinstance(cp, dict) or cp.get("format") != CHECKPOINT_FORMAT:
        raise Failed(f"{what}: not a checkpoint ({CHECKPOINT_FORMAT})")
    for name in ("size", "head_position"):
        if _int(cp.get(name)) < 1:
            raise Failed(f"{what}: {name} must be positive")
    for name in ("root", "chain_head"):
        _hex32(cp.get(name), f"{what}: {name}")
    for name in ("timestamp", "key_id", "signature"):
        if not isinstance(cp.get(name), str) or "\n" in cp[name]:
            raise Failed(f"{what}: {name} missing or malformed")
    if cp["key_id"] != key_id(key):
        raise Failed(f"{what}: signed by key {cp['key_id']}, but the trusted key is {key_id(key)}")
    body = (f"{CHECKPOINT_FORMAT}\nsize {cp['size']}\nroot {cp['root']}\nhead-position {cp['head_position']}\n"
            f"chain-head {cp['chain_head']}\ntimestamp {cp['timestamp']}\nkey-id {cp['key_id']}\n").encode()
    try:
        key.verify(base64.b64decode(cp["signature"], validate=True), body)
    except (InvalidSignature, ValueError):
        raise Failed(f"{what}: the signature does not verify (altered, or not signed by the trusted key)") from None
    return cp


def same_checkpoint(embedded: dict[str, Any], kept_path: Path | None, what: str) -> None:
    if kept_path is None:
        return
    kept = json.loads(kept_path.read_text(encoding="utf-8"))
    differing = [f for f in SIGNED_FIELDS if kept.get(f) != embedded.get(f)]
    if differing:
        raise Failed(f"the proof's {what} checkpoint is not the one in {kept_path} (differs in {', '.join(differing)})")


def describe(cp: dict[str, Any]) -> str:
    return f"{cp['size']}-event log signed at {cp['timestamp']} by key {cp['key_id']}"


def run(args: argparse.Namespace) -> str:
    key = load_key(args.public_key)
    document = json.loads(args.file.read_text(encoding="utf-8"))
    if args.kind == "checkpoint":
        cp = check_checkpoint(document, key)
        return f"checkpoint of the {describe(cp)}: signature valid, root {cp['root']}"
    if args.kind == "inclusion":
        if document.get("format") != INCLUSION_FORMAT:
            raise Failed(f"not an inclusion proof ({INCLUSION_FORMAT})")
        cp = check_checkpoint(document.get("checkpoint"), key)
        same_checkpoint(cp, args.checkpoint, "")
        event, index, size = document["event"], _int(document["leaf_index"]), _int(document["tree_size"])
        if size != cp["size"]:
            raise Failed(f"the proof is for a tree of {size}, the checkpoint signed {cp['size']}")
        leaf = leaf_hash(event)
        if leaf.hex() != document.get("leaf_hash"):
            raise Failed("the event's bytes do not give the proof's leaf hash: the event was altered")
        path = [_hex32(h, "path entry") for h in document["path"]]
        if not verify_inclusion(leaf, index, size, path, bytes.fromhex(cp["root"])):
            raise Failed(f"the audit path does not lead from leaf {index} to the checkpoint's root")
        if args.show_event:
            sys.stdout.write(base64.b64decode(event["state"]).decode("utf-8", "replace") + "\n")
        return (f"event at position {event['position']} (aggregate {event['originator_id']} version "
                f"{event['originator_version']}, {event['topic']}) is leaf {index} of the {describe(cp)}")
    if document.get("format") != CONSISTENCY_FORMAT:
        raise Failed(f"not a consistency proof ({CONSISTENCY_FORMAT})")
    old = check_checkpoint(document.get("old"), key, "old checkpoint")
    new = check_checkpoint(document.get("new"), key, "new checkpoint")
    same_checkpoint(old, args.old, "old")
    same_checkpoint(new, args.new, "new")
    path = [_hex32(h, "path entry") for h in document["path"]]
    if not verify_consistency(old["size"], new["size"], bytes.fromhex(old["root"]), bytes.fromhex(new["root"]), path):
        raise Failed(f"the {describe(new)} does not extend the {describe(old)}: the log was rewritten")
    return f"the {describe(new)} extends the {describe(old)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["checkpoint", "inclusion", "consistency"])
    parser.add_argument("file", type=Path, help="the checkpoint or proof (JSON)")
    parser.add_argument("--public-key", type=Path, required=True, help="the trusted public key (PEM)")
    parser.add_argument("--checkpoint", type=Path, help="inclusion: the checkpoint you kept")
    parser.add_argument("--old", type=Path, help="consistency: the older checkpoint you kept")
    parser.add_argument("--new", type=Path, help="consistency: the newer checkpoint you kept")
    parser.add_argument("--show-event", action="store_true", help="inclusion: print the event's stored state")
    args = parser.parse_args(argv)
    try:
        message = run(args)
    except Failed as failure:
        print(f"FAILED: {failure}")
        return 1
    except (OSError, KeyError, TypeError, ValueError) as error:
        print(f"FAILED: malformed input ({type(error).__name__}: {error})")
        return 1
    print(f"ok: {message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
