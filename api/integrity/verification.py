"""Tamper evidence: verify the hash chain, sign checkpoints, prove inclusion and consistency.

**The walk.** `walk` reads every event with its chain row (api/store/logstore.py), recomputes each leaf
hash and chain hash from the event's bytes (api/store/chain.py) and stops at the first event whose
recomputed chain hash differs from the stored one. That event is named by position, aggregate,
version and topic: an altered event (a score, a date, an actor in its state), an event inserted
without the ledger (no chain row), an event deleted (its chain row left without an event), two
events swapped (the first of them no longer matches). The same pass feeds the leaves into a
Merkle tree (api/integrity/merkle.py, RFC 6962/9162), whose root the checkpoints sign.

**Checkpoints** are signed tree heads, a small JSON file an inspector keeps:

    {"format": "appraisal-ledger-checkpoint/1", "size": N, "root": hex, "head_position": P,
     "chain_head": hex, "timestamp": "…Z", "key_id": hex, "public_key": base64, "signature": base64}

`size` leaves (events), the Merkle root over them, the position and chain hash of the last one;
the Ed25519 signature (api/integrity/keys.py, key outside the database) covers the text `signed_body`
builds from those fields. A copy is kept in the `<prefix>_checkpoints` table for listing only:
verification never trusts the database, only the file and the public key. A checkpoint is refused
for a log that does not verify where signing walks it (below), or that no longer matches the latest
checkpoint recorded.

**What signing walks.** The first checkpoint walks the whole log. A later one walks from the last
run of `CHUNK` leaves (below) the latest checkpoint signed with the same key covers: the runs before
it come from the roots kept beside that checkpoint, which must give the root it signed, and the
walk must give that checkpoint's root and chain head again before it goes on. So signing costs the
events since the last checkpoint, not the years behind them (issue 19: an import that publishes
signs one). A change to an event the earlier checkpoint covers, outside its last run and with its
chain row left as it was, is therefore not what refuses a signature: the new checkpoint signs the
tree the log had (the kept roots'), never the changed one, so the change stays evident against
both checkpoints and `verify` (the integrity page's button, `appraisal verify`) names it. A chain
rewritten to match the change no longer gives the earlier checkpoint's chain head: refused. Kept
roots missing or changed (a checkpoint restored from a backup): the whole log is walked, as before.

**Proofs.** An inclusion proof shows one event (its stored bytes, from which the verifier
recomputes the leaf) is leaf i of the tree a checkpoint signed; a consistency proof shows an
older checkpoint's tree is a prefix of a newer one's. Both are refused when the log no longer
yields the checkpoint's root: a log changed after a checkpoint cannot be proved consistent with it.
scripts/verify_proof.py checks all three without importing this project.

**Chunks.** In an RFC 6962 tree every run of `CHUNK` (a power of two) leaves starting at a multiple
of `CHUNK` is a node when the tree holds all of it, and the tree over those nodes and the root of the
last, shorter run is the same tree (its splits fall on multiples of `CHUNK`). Signing a checkpoint
computes every leaf anyway, so `make_checkpoint` stores those roots beside it, with the position of
each run's first event (PostgreSQL leaves gaps in positions: leaf index is not position). An
inclusion proof then reads only the run of its event (`CHUNK` events from that position), refuses
unless their leaves give the stored root of the run and the stored roots give the root the
checkpoint signed, and takes its path inside the run, then among the runs: the same path, byte for
byte, as from every leaf, in O(`CHUNK` + size / `CHUNK`) rather than O(size). What it checks is the
event's own run; the rest of the log is for `verify` (the integrity page's button). A checkpoint
signed before the roots were kept (or restored from a backup, which does not carry them) is proved
by walking the whole log, as before.

The chain alone proves nothing to someone who can rewrite it: its worth is the signed checkpoints
kept outside the database (RFC 9162's "gossip" is the inspector filing them).
"""

from __future__ import annotations

import base64
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from api.integrity import merkle
from api.integrity.keys import Signer, key_id, raw_public, verify_signature
from api.store.chain import _FIXED, _LENGTH, SEED, leaf_hash
from api.store.logstore import Chunk, LogStore, Row

CHECKPOINT_FORMAT = "appraisal-ledger-checkpoint/1"
INCLUSION_FORMAT = "appraisal-ledger-inclusion/1"
CONSISTENCY_FORMAT = "appraisal-ledger-consistency/1"
PAGE = 5000
CHUNK = 1024  # leaves per stored Merkle root (a power of two): what an inclusion proof reads


class IntegrityFailure(Exception):
    """The log, or a checkpoint or proof about it, does not hold up."""


@dataclass(frozen=True)
class Problem:
    """The first event at which the log and its chain disagree."""

    position: int
    reason: str
    kind: str  # altered | unchained (no chain row) | missing (chain row, no event) | stray
    originator_id: UUID | None = None
    version: int | None = None
    topic: str | None = None

    def describe(self) -> str:
        if self.originator_id is None:
            return f"position {self.position}: {self.reason}"
        return (f"position {self.position} (aggregate {self.originator_id} version {self.version}, "
                f"{self.topic}): {self.reason}")


@dataclass
class Head:
    """The tree after `size` leaves: its root, the position and chain hash of its last event."""

    size: int
    root: bytes
    position: int
    chain: bytes


@dataclass
class Walk:
    size: int = 0
    position: int = 0
    chain: bytes = SEED
    root: bytes | None = None  # the Merkle root, when the walk built the tree
    problem: Problem | None = None
    heads: dict[int, Head] = field(default_factory=dict)
    leaves: list[bytes] | None = None
    positions: list[int] | None = None
    captured: Row | None = None
    chunks: list[Chunk] = field(default_factory=list)


def walk(store: LogStore, *, heads_at: Collection[int] = (), keep_leaves: bool = False,
         capture: int | None = None, check_chain: bool = True, on_row: Callable[[Row, bytes], None] | None = None,
         tree: bool = True, page: int = PAGE, start: Head | None = None, chunk: int = 0,
         stack: Sequence[bytes] | None = None) -> Walk:
    """One pass over the log in position order. With `check_chain`, stop at the first event that
    does not match its chain row; `heads_at` snapshots the tree at those sizes; `keep_leaves`
    keeps every leaf (for proofs); `capture` keeps the row at that position; `on_row` sees each
    row that passed, with its chain hash (backups). Without `tree` (a plain verification) no
    Merkle root is computed: a third of the hashing. `start`: begin after that head (its size,
    position and chain hash, e.g. a signed checkpoint's), the events before it not read: a plain
    verification, unless `stack` gives the tree at that head (the roots of its perfect subtrees,
    as `merkle.Tree` keeps them). `chunk` (a power of two, at least 2): the root of each run of
    that many leaves from leaf 0 on (from the head on: it must end a run), and of the last,
    shorter run, with its first event's position (`Walk.chunks`)."""
    if start is not None and (keep_leaves or ((tree or heads_at or chunk) and stack is None)):
        raise ValueError("a walk from a head checks the chain only (no tree, heads, leaves or chunks), unless "
                         "it is given the tree at that head")
    if chunk and (chunk < 2 or chunk & (chunk - 1)):
        raise ValueError(f"chunks of {chunk} leaves: a power of two, at least 2")
    if start is not None and chunk and start.size % chunk:
        raise ValueError(f"a walk from a head of {start.size} leaves cannot keep runs of {chunk}")
    result = Walk(leaves=[] if keep_leaves else None, positions=[] if keep_leaves else None)
    pack, pack_length, join = _FIXED.pack, _LENGTH.pack, b"".join
    chain, size, last = (start.chain, start.size, start.position) if start is not None else (SEED, 0, 0)
    after = last
    stack = list(stack or ())  # the Merkle tree, as merkle.Tree keeps it (inlined: this loop is the cost)
    push, pop = stack.append, stack.pop
    tree = tree or bool(heads_at) or bool(chunk)
    topics: dict[str, bytes] = {}
    pending = sorted(set(heads_at), reverse=True)
    next_head = pending.pop() if pending else -1
    extras = keep_leaves or capture is not None or on_row is not None
    low, depth, first = chunk - 1, chunk.bit_length() - 1, 0
    with closing(store.pages(page, after)) as pages:
        for rows in pages:
            for row in rows:
                position, oid, version, topic, state, stored = row
                encoded = topics.get(topic)
                if encoded is None:
                    encoded = topics[topic] = topic.encode()
                leaf = sha256(join((b"\x00", pack(position, 16, oid, version, len(encoded)), encoded,
                                    pack_length(len(state)), state))).digest()
                following = sha256(chain + leaf).digest()
                if following != stored and check_chain:
                    result.problem = _diagnose(store, row, last)
                    break
                chain = following
                size += 1
                last = position
                if tree:
                    push(leaf)
                    carry = size
                    if chunk:
                        if size & low == 1:  # the first leaf of a run
                            first = position
                        elif not size & low:  # the last: its run's root, before it merges further
                            for _ in range(depth):
                                right = pop()
                                stack[-1] = sha256(b"\x01" + stack[-1] + right).digest()
                            carry >>= depth
                            result.chunks.append(Chunk(size - chunk, chunk, first, stack[-1]))
                    while not carry & 1:
                        right = pop()
                        stack[-1] = sha256(b"\x01" + stack[-1] + right).digest()
                        carry >>= 1
                if size == next_head:
                    result.heads[size] = Head(size, merkle.fold(stack), position, chain)
                    next_head = pending.pop() if pending else -1
                if extras:
                    if result.leaves is not None and result.positions is not None:
                        result.leaves.append(leaf)
                        result.positions.append(position)
                    if position == capture:
                        result.captured = row
                    if on_row is not None:
                        on_row(row, chain)
            else:
                continue
            break
    # with a problem: the walk up to the last good event
    result.size, result.position, result.chain = size, last, chain
    result.root = merkle.fold(stack) if tree else None
    if chunk and size & low:  # the last run, shorter: the perfect subtrees it is made of
        result.chunks.append(Chunk(size - (size & low), size & low, first,
                                   merkle.fold(stack[-(size & low).bit_count():])))
    if check_chain and result.problem is None:
        result.problem = _orphans(store, last, size)
    return result


def _diagnose(store: LogStore, row: Row, previous: int) -> Problem:
    position, oid, version, topic, _, stored = row
    missing = store.first_orphan(previous, position)
    if missing is not None:
        return Problem(missing, "the event is missing (deleted?): its chain row is there, the event is not",
                       "missing")
    aggregate = UUID(bytes=bytes(oid))
    if stored is None:
        return Problem(position, "the event has no chain row: it was written outside the ledger (inserted?), "
                                 "or before the ledger kept a chain (see `appraisal verify --adopt`)",
                       "unchained", aggregate, version, topic)
    return Problem(position, "the event does not match its chain hash: it was altered (or its chain row "
                             "was, or an event before it was removed together with its chain row)",
                   "altered", aggregate, version, topic)


def _orphans(store: LogStore, last: int, size: int) -> Problem | None:
    missing = store.first_orphan(last, None)
    if missing is not None:
        return Problem(missing, f"the event is missing (deleted?): the chain goes on after the last event, "
                                f"position {last}", "missing")
    if store.chain_rows_upto(last) != size:
        stray = store.first_orphan(0, last + 1)
        return Problem(stray or 0, "a chain row without an event (written outside the ledger?)", "stray")
    return None


# --- checkpoints ------------------------------------------------------------------------------------


def signed_body(checkpoint: dict[str, Any]) -> bytes:
    """The bytes a checkpoint's signature covers (scripts/verify_proof.py builds the same)."""
    return (f"{CHECKPOINT_FORMAT}\nsize {int(checkpoint['size'])}\nroot {checkpoint['root']}\n"
            f"head-position {int(checkpoint['head_position'])}\nchain-head {checkpoint['chain_head']}\n"
            f"timestamp {checkpoint['timestamp']}\nkey-id {checkpoint['key_id']}\n").encode()


def sign_checkpoint(head: Head, signer: Signer, now: datetime) -> dict[str, Any]:
    document: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT, "size": head.size, "root": head.root.hex(), "head_position": head.position,
        "chain_head": head.chain.hex(), "timestamp": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "key_id": signer.key_id,
    }
    document["public_key"] = base64.b64encode(raw_public(signer.public)).decode()
    document["signature"] = base64.b64encode(signer.sign(signed_body(document))).decode()
    return document


def check_checkpoint(document: dict[str, Any], public: Ed25519PublicKey) -> None:
    """Raise IntegrityFailure unless `document` is a well-formed checkpoint signed by `public`."""
    if not isinstance(document, dict) or document.get("format") != CHECKPOINT_FORMAT:
        raise IntegrityFailure(f"not a checkpoint (format {CHECKPOINT_FORMAT})")
    for name in ("size", "head_position"):
        if type(document.get(name)) is not int or document[name] < 1:
            raise IntegrityFailure(f"checkpoint field {name} must be a positive integer")
    for name in ("root", "chain_head", "timestamp", "key_id", "signature"):
        if not isinstance(document.get(name), str):
            raise IntegrityFailure(f"checkpoint field {name} is missing")
    if document["key_id"] != key_id(public):
        raise IntegrityFailure(f"checkpoint signed by key {document['key_id']}, not by the trusted key "
                               f"{key_id(public)}")
    try:
        signature = base64.b64decode(document["signature"], validate=True)
    except ValueError:
        raise IntegrityFailure("checkpoint signature is not base64") from None
    if not verify_signature(public, signature, signed_body(document)):
        raise IntegrityFailure("checkpoint signature does not verify: the file was altered or not signed "
                               "by this key")


def _matches(walked: Walk, checkpoint: dict[str, Any]) -> str | None:
    """Why the log does not yield the checkpoint's tree head (None when it does)."""
    size = checkpoint["size"]
    if walked.size < size:
        return (f"the log holds {walked.size} event(s), fewer than the {size} the checkpoint signed: "
                "events were removed")
    head = walked.heads[size]
    if head.root.hex() != checkpoint["root"]:
        return (f"the log's first {size} events no longer give the checkpoint's Merkle root: "
                "events it covers were changed, removed, reordered or inserted")
    if head.position != checkpoint["head_position"]:
        return f"leaf {size} is at position {head.position}, not {checkpoint['head_position']}"
    if walked.problem is None and head.chain.hex() != checkpoint["chain_head"]:
        return "the chain hash at the checkpoint's last event differs from the checkpoint's"
    return None


@dataclass
class Verdict:
    ok: bool
    message: str
    walked: Walk


def verify(store: LogStore, checkpoint: dict[str, Any] | None = None,
           public: Ed25519PublicKey | None = None) -> Verdict:
    """Verify the whole log; with a checkpoint (and the public key to trust), also that the log
    still yields the tree head it signed."""
    if checkpoint is not None:
        if public is None:
            raise IntegrityFailure("a checkpoint needs the public key to check it against")
        check_checkpoint(checkpoint, public)
    walked = walk(store, heads_at=[checkpoint["size"]] if checkpoint else [], tree=False)
    if walked.problem is not None:
        return Verdict(False, f"first bad event at {walked.problem.describe()}", walked)
    if checkpoint is not None:
        mismatch = _matches(walked, checkpoint)
        if mismatch:
            return Verdict(False, f"the log does not match checkpoint (size {checkpoint['size']}, "
                                  f"{checkpoint['timestamp']}): {mismatch}", walked)
    summary = f"ok, {walked.size} events, head {walked.chain.hex()}"
    if checkpoint is not None:
        summary += f"; matches checkpoint of {checkpoint['size']} events ({checkpoint['timestamp']})"
    return Verdict(True, summary, walked)


def verify_after(store: LogStore, checkpoint: dict[str, Any]) -> Verdict:
    """The events after a checkpoint (its signature checked by the caller): each chained onto the
    one before it, starting from the chain hash the checkpoint signed (not the one the database
    holds for its last event). What the checkpoint covers is not read: that part was verified
    when it was signed (`make_checkpoint`), and `verify` walks it again."""
    start = Head(checkpoint["size"], b"", checkpoint["head_position"], bytes.fromhex(checkpoint["chain_head"]))
    walked = walk(store, tree=False, start=start)
    if walked.problem is not None:
        return Verdict(False, f"first bad event at {walked.problem.describe()}", walked)
    return Verdict(True, f"ok, {walked.size - start.size} events after the checkpoint of {checkpoint['size']} "
                         f"({checkpoint['timestamp']}), head {walked.chain.hex()}", walked)


def make_checkpoint(store: LogStore, signer: Signer, clock: Callable[[], datetime],
                    chunk: int = CHUNK) -> dict[str, Any]:
    """Sign the tree head of the whole log, after verifying what the latest checkpoint recorded
    with this key did not cover (`_after_kept_runs`; the whole log when there is none) and checking
    the log still extends it; record it in the checkpoints table, and the roots of its runs of
    `chunk` leaves beside it (for proofs)."""
    previous = _latest_own(store, signer)
    start, stack = (_after_kept_runs(store, previous, chunk) if previous else None) or (None, None)
    walked = walk(store, heads_at=[previous["size"]] if previous else [], chunk=chunk, start=start, stack=stack)
    if walked.problem is not None:
        raise IntegrityFailure(f"refusing to sign a log that does not verify: first bad event at "
                               f"{walked.problem.describe()}")
    if walked.size == 0:
        raise IntegrityFailure("the log is empty: nothing to sign")
    if previous is not None:
        mismatch = _matches(walked, previous)
        if mismatch:
            raise IntegrityFailure(f"refusing to sign: the log no longer extends the checkpoint of "
                                   f"{previous['timestamp']} (size {previous['size']}): {mismatch}")
    assert walked.root is not None
    document = sign_checkpoint(Head(walked.size, walked.root, walked.position, walked.chain), signer, clock())
    store.record_checkpoint(document, walked.chunks)
    return document


def _after_kept_runs(store: LogStore, previous: dict[str, Any], chunk: int) -> tuple[Head, list[bytes]] | None:
    """Where the walk before a signature begins when `previous` (a checkpoint signed with the same
    key) covers at least one whole run of `chunk` leaves: at the first event of its last run, with
    the tree of the runs before it from the roots kept when it was signed (which must give the
    root it signed) and the chain hash stored before that event. The walk then checks the last run
    and everything after it, and that they give `previous`'s root and chain head again. None (the
    whole log is walked) when the roots are not kept, or do not give its root."""
    size = previous["size"]
    runs = (size - 1) // chunk  # the runs taken as kept: the last one is walked again
    if not runs:
        return None
    kept = _kept_runs(store, size, chunk)
    if kept is None or merkle.root([c.root for c in kept]).hex() != previous["root"]:
        return None
    chain = store.chain_before(kept[runs].first_position)
    if chain is None:
        return None
    tree = merkle.Tree()
    for run in kept[:runs]:
        tree.append(run.root)  # a run is a perfect subtree: the tree of runs is the tree of leaves
    return Head(runs * chunk, b"", kept[runs].first_position - 1, chain), tree.stack()


def _kept_runs(store: LogStore, size: int, chunk: int) -> list[Chunk] | None:
    """The roots kept for every run of `chunk` leaves of a tree of `size` (the last run shorter),
    in order; None when any is not kept."""
    kept = store.chunks(size, chunk)
    whole = [(c.start, c.leaves) for c in kept] == [(s, min(chunk, size - s)) for s in range(0, size, chunk)]
    return kept if whole else None


def _latest_own(store: LogStore, signer: Signer) -> dict[str, Any] | None:
    for document in reversed(store.checkpoints()):
        try:
            check_checkpoint(document, signer.public)
        except IntegrityFailure:
            continue  # another key's, or a row someone edited: not a reference
        return document
    return None


def adopt_unchained(store: LogStore) -> tuple[int, int]:
    """Chain the events at the end of the log that have no chain row: a log written before the
    ledger kept a chain. Whoever runs this vouches for those events as they stand (they may as well
    have been inserted outside the ledger): it prints them as (count, first position). Refused
    unless everything before them verifies and nothing after them is chained."""
    walked = walk(store, tree=False)
    problem = walked.problem
    if problem is None:
        return 0, 0
    if problem.kind != "unchained":
        raise IntegrityFailure(f"nothing to adopt: first bad event at {problem.describe()}")
    count = store.adopt(walked.position, walked.chain)
    after = walk(store, tree=False)
    if after.problem is not None:
        raise IntegrityFailure(f"chained {count} event(s) from position {problem.position}, but the log still "
                               f"fails: first bad event at {after.problem.describe()}")
    return count, problem.position


# --- proofs -----------------------------------------------------------------------------------------


def _leaves_for(store: LogStore, checkpoints: list[dict[str, Any]], capture: int | None = None) -> Walk:
    """Every leaf, recomputed from the events (not from the chain table), checked against each
    checkpoint's root."""
    walked = walk(store, heads_at=[c["size"] for c in checkpoints], keep_leaves=True, capture=capture,
                  check_chain=False)
    for checkpoint in checkpoints:
        mismatch = _matches(walked, checkpoint)
        if mismatch:
            raise IntegrityFailure(f"cannot prove anything against the checkpoint of {checkpoint['timestamp']} "
                                   f"(size {checkpoint['size']}): {mismatch}")
    return walked


def prove_inclusion(store: LogStore, position: int, checkpoint: dict[str, Any],
                    public: Ed25519PublicKey, chunk: int = CHUNK) -> dict[str, Any]:
    """The event at `position` is leaf i of the checkpoint's tree: from the run of `chunk` leaves
    it is in and the runs' roots stored when the checkpoint was signed, or (none stored) from every
    leaf of the log."""
    check_checkpoint(checkpoint, public)
    size = checkpoint["size"]
    chunks = _kept_runs(store, size, chunk)
    if chunks is None:
        return _inclusion_from_every_leaf(store, position, checkpoint)
    what = f"the checkpoint of {checkpoint['timestamp']} (size {size})"
    if merkle.root([c.root for c in chunks]).hex() != checkpoint["root"]:
        raise IntegrityFailure(f"cannot prove anything against {what}: the roots stored with it for each run "
                               f"of {chunk} events do not give its signed root: they were changed, or the log "
                               "was and a checkpoint was signed over it since (`appraisal verify --checkpoint` "
                               "tells which)")
    if position > checkpoint["head_position"]:
        found = store.events_from(position, 1)
        if not found or found[0][0] != position:
            raise IntegrityFailure(f"no event at position {position}")
        raise IntegrityFailure(f"the event at position {position} came after the checkpoint "
                               f"(its last event is at {checkpoint['head_position']}): take a newer one")
    number = bisect_right([c.first_position for c in chunks], position) - 1
    if number < 0:
        raise IntegrityFailure(f"no event at position {position}")
    run = chunks[number]
    events = store.events_from(run.first_position, run.leaves)
    leaves = [leaf_hash(p, bytes(oid), version, topic, bytes(state)) for p, oid, version, topic, state in events]
    if len(leaves) != run.leaves or merkle.root(leaves) != run.root:
        raise IntegrityFailure(
            f"cannot prove anything against {what}: its leaves {run.start}–{run.start + run.leaves - 1} (from "
            f"position {run.first_position}) no longer give the root stored for them when it was signed: events "
            "they cover were changed, removed, reordered or inserted")
    offset = next((n for n, event in enumerate(events) if event[0] == position), None)
    if offset is None:
        raise IntegrityFailure(f"no event at position {position}")
    _, oid, version, topic, state = events[offset]
    path = merkle.inclusion_path(leaves, offset, run.leaves) + merkle.inclusion_path(
        [c.root for c in chunks], number, len(chunks))
    return _inclusion(checkpoint, run.start + offset, (position, oid, version, topic, state),
                      leaves[offset], path)


def _inclusion(checkpoint: dict[str, Any], index: int, event: tuple[int, bytes, int, str, bytes],
               leaf: bytes, path: list[bytes]) -> dict[str, Any]:
    position, oid, version, topic, state = event
    return {
        "format": INCLUSION_FORMAT, "checkpoint": checkpoint, "leaf_index": index, "tree_size": checkpoint["size"],
        "event": {"position": position, "originator_id": str(UUID(bytes=bytes(oid))), "originator_version": version,
                  "topic": topic, "state": base64.b64encode(bytes(state)).decode()},
        "leaf_hash": leaf.hex(), "path": [h.hex() for h in path],
    }


def _inclusion_from_every_leaf(store: LogStore, position: int, checkpoint: dict[str, Any]) -> dict[str, Any]:
    walked = _leaves_for(store, [checkpoint], capture=position)
    assert walked.leaves is not None and walked.positions is not None
    index = bisect_left(walked.positions, position)
    if index >= len(walked.positions) or walked.positions[index] != position or walked.captured is None:
        raise IntegrityFailure(f"no event at position {position}")
    if index >= checkpoint["size"]:
        raise IntegrityFailure(f"the event at position {position} came after the checkpoint "
                               f"(its last event is at {checkpoint['head_position']}): take a newer one")
    _, oid, version, topic, state, _ = walked.captured
    return _inclusion(checkpoint, index, (position, oid, version, topic, state), walked.leaves[index],
                      merkle.inclusion_path(walked.leaves, index, checkpoint["size"]))


def prove_consistency(store: LogStore, old: dict[str, Any], new: dict[str, Any],
                      public: Ed25519PublicKey) -> dict[str, Any]:
    check_checkpoint(old, public)
    check_checkpoint(new, public)
    if old["size"] > new["size"]:
        raise IntegrityFailure(f"the old checkpoint ({old['size']} events) is larger than the new one "
                               f"({new['size']})")
    walked = _leaves_for(store, [old, new])
    assert walked.leaves is not None
    return {"format": CONSISTENCY_FORMAT, "old": old, "new": new,
            "path": [h.hex() for h in merkle.consistency_path(walked.leaves, old["size"], new["size"])]}


def verify_inclusion_proof(proof: dict[str, Any], public: Ed25519PublicKey) -> None:
    """The same check scripts/verify_proof.py makes (for tests and `appraisal verify` users)."""
    from api.store.chain import leaf_hash, oid_bytes

    check_checkpoint(proof["checkpoint"], public)
    event = proof["event"]
    leaf = leaf_hash(event["position"], oid_bytes(event["originator_id"]), event["originator_version"],
                     event["topic"], base64.b64decode(event["state"]))
    if leaf.hex() != proof["leaf_hash"]:
        raise IntegrityFailure("the event's bytes do not give the proof's leaf hash")
    if proof["tree_size"] != proof["checkpoint"]["size"] or not merkle.verify_inclusion(
            leaf, proof["leaf_index"], proof["tree_size"], [bytes.fromhex(h) for h in proof["path"]],
            bytes.fromhex(proof["checkpoint"]["root"])):
        raise IntegrityFailure("the inclusion proof does not lead to the checkpoint's root")

