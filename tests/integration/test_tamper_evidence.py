"""Tamper evidence on both stores (issue 5): the worked example is recorded through the ledger and
checkpointed, then changed directly in the database, as an intruder with database access would:
`appraisal verify` must fail naming the first bad event, and the earlier checkpoint must refuse
consistency with the changed log. Proofs are checked by scripts/verify_proof.py in a subprocess;
backups must restore a log that verifies and gives identical results."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from uuid import UUID

import psycopg
import pytest
from psycopg import sql

from api.integrity import merkle
from api.integrity.backup import export_log, import_log
from api.integrity.keys import Signer, load_or_create, public_pem
from api.integrity.verification import (
    IntegrityFailure,
    make_checkpoint,
    prove_consistency,
    prove_inclusion,
    verify,
    verify_after,
    verify_inclusion_proof,
    walk,
)
from api.ledger import AppraisalLedger
from api.store.chain import SEED, ChainBroken, chain_hash, leaf_hash, oid_bytes
from api.store.logstore import log_store
from tests.builders.verifier import standalone_verifier
from tests.builders.worked_example import build

ROOT = Path(__file__).resolve().parents[2]
APPRAISAL = Path(sys.executable).with_name("appraisal")
VERIFY_PROOF = ROOT / "scripts" / "verify_proof.py"


# --- direct database access, bypassing the ledger -------------------------------------------------


class Intruder:
    """Reads and writes the event tables with plain SQL, as someone with database access would."""

    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            self.conn: Any = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
            self.events, self.chain, self.pos, self.p = "stored_events", "stored_chain", "rowid", "?"
            self.checkpoints, self.chunks = "stored_checkpoints", "stored_chunks"
        else:
            parts = urlsplit(url)
            query = parse_qsl(parts.query)
            schema = dict(query)["schema"]
            base = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query if k != "schema"])))
            self.conn = psycopg.connect(base, autocommit=True)
            self.conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            self.events, self.chain, self.pos, self.p = ("appraisalledger_events", "appraisalledger_chain",
                                                         "notification_id", "%s")
            self.checkpoints, self.chunks = "appraisalledger_checkpoints", "appraisalledger_chunks"

    def q(self, text: str) -> str:
        return text.format(events=self.events, chain=self.chain, pos=self.pos, checkpoints=self.checkpoints,
                           chunks=self.chunks).replace("?", self.p)

    def rows(self) -> list[tuple[int, str, int, str, bytes]]:
        found = self.conn.execute(self.q("SELECT {pos}, originator_id, originator_version, topic, state "
                                         "FROM {events} ORDER BY {pos}")).fetchall()
        return [(p, str(UUID(str(o))), v, t, bytes(s)) for p, o, v, t, s in found]

    def first(self, topic_suffix: str) -> tuple[int, str, int, str, bytes]:
        return next(row for row in self.rows() if row[3].endswith(topic_suffix))

    def state(self, position: int) -> bytes:
        return bytes(self.conn.execute(self.q("SELECT state FROM {events} WHERE {pos} = ?"), (position,)).fetchone()[0])

    def set_state(self, position: int, state: bytes) -> None:
        self.conn.execute(self.q("UPDATE {events} SET state = ? WHERE {pos} = ?"), (state, position))

    def replace_in_state(self, position: int, old: bytes, new: bytes) -> None:
        state = self.state(position)
        assert old in state, (old, state)
        self.set_state(position, state.replace(old, new, 1))

    def delete(self, position: int) -> None:
        self.conn.execute(self.q("DELETE FROM {events} WHERE {pos} = ?"), (position,))

    def insert(self, originator_id: str, version: int, topic: str, state: bytes) -> int:
        oid: Any = UUID(originator_id).hex if self.p == "?" else UUID(originator_id)
        self.conn.execute(self.q("INSERT INTO {events} (originator_id, originator_version, topic, state) "
                                 "VALUES (?, ?, ?, ?)"), (oid, version, topic, state))
        return self.rows()[-1][0]

    def rewrite_chain(self) -> None:
        """What a careful intruder does next: recompute every chain row from the altered events."""
        head, rows = SEED, []
        for position, oid, version, topic, state in self.rows():
            head = chain_hash(head, leaf_hash(position, oid_bytes(oid), version, topic, state))
            rows.append((position, head))
        self.conn.execute(self.q("DELETE FROM {chain}"))
        for row in rows:
            self.conn.execute(self.q("INSERT INTO {chain} (position, hash) VALUES (?, ?)"), row)

    def forget_checkpoints(self) -> None:
        self.conn.execute(self.q("DELETE FROM {checkpoints}"))

    def forget_chunks(self) -> None:
        """The Merkle roots kept beside the checkpoints, as before they were kept."""
        self.conn.execute(self.q("DELETE FROM {chunks}"))

    def set_chunk(self, start: int, column: str, value: Any) -> None:
        self.conn.execute(self.q(f"UPDATE {{chunks}} SET {column} = ? WHERE start = ?"), (value, start))

    def skip_positions(self, count: int) -> None:
        """PostgreSQL: positions drawn and never used, as by transactions that rolled back (SQLite
        numbers rowids without gaps)."""
        if self.p == "%s":
            for _ in range(count):
                self.conn.execute(self.q("SELECT nextval(pg_get_serial_sequence('{events}', 'notification_id'))"))

    def close(self) -> None:
        self.conn.close()


# --- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    return load_or_create(tmp_path / "keys" / "signing.key")


@pytest.fixture
def public_key_file(tmp_path: Path, signer: Signer) -> Path:
    path = tmp_path / "public.pem"
    path.write_text(public_pem(signer.public))
    return path


@pytest.fixture
def ledger(db_url: str) -> Iterator[AppraisalLedger]:
    ledger = AppraisalLedger(db_url)
    ledger.submit(build())
    yield ledger
    ledger.close()


@pytest.fixture
def intruder(db_url: str, ledger: AppraisalLedger) -> Iterator[Intruder]:
    intruder = Intruder(db_url)
    yield intruder
    intruder.close()


def appraisal(db_url: str, *args: str, key: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "APPRAISAL_DB": db_url}
    if key is not None:
        env["APPRAISAL_SIGNING_KEY"] = str(key)
    return subprocess.run([str(APPRAISAL), *args], capture_output=True, text=True, timeout=120, env=env)


def verify_proof(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(VERIFY_PROOF), *map(str, args)], capture_output=True,
                          text=True, timeout=60)


def flat(text: str) -> str:
    return " ".join(text.split())


# --- tampering --------------------------------------------------------------------------------------------


def change_a_score(x: Intruder) -> tuple[int, bool]:
    position, *_ = x.first("Appraisal.RatingRecorded")
    x.replace_in_state(position, b'"score":{"_type_":"decimal_str","_data_":"80"}',
                       b'"score":{"_type_":"decimal_str","_data_":"95"}')
    return position, True


def change_a_date(x: Intruder) -> tuple[int, bool]:
    position, *_ = x.first("Appraisal.MeasurementRecorded")
    x.replace_in_state(position, b'"_data_":"2025-12-10T09:00:00+08:00"', b'"_data_":"2025-11-10T09:00:00+08:00"')
    return position, True


def change_an_actor(x: Intruder) -> tuple[int, bool]:
    position = x.rows()[29][0]
    x.replace_in_state(position, b'"actor":"', b'"actor":"p-L2x')
    return position, True


def delete_an_event(x: Intruder) -> tuple[int, bool]:
    position = x.rows()[20][0]
    x.delete(position)
    return position, False  # a deleted event is named by its position only: its row is gone


def swap_two_events(x: Intruder) -> tuple[int, bool]:
    first, second = x.rows()[25][0], x.rows()[40][0]
    a, b = x.state(first), x.state(second)
    x.set_state(first, b)
    x.set_state(second, a)
    return first, True


def insert_a_forged_event(x: Intruder) -> tuple[int, bool]:
    _, oid, _, topic, state = x.first("Appraisal.RatingRecorded")
    version = max(v for _, o, v, _, _ in x.rows() if o == oid) + 1
    return x.insert(oid, version, topic, state.replace(b'"_data_":"80"', b'"_data_":"100"')), True


TAMPERING = [change_a_score, change_a_date, change_an_actor, delete_an_event, swap_two_events,
             insert_a_forged_event]


@pytest.mark.parametrize("tamper", TAMPERING, ids=lambda f: f.__name__)
def test_verify_names_the_first_bad_event_and_the_old_checkpoint_refuses_the_tampered_log(
        db_url: str, ledger: AppraisalLedger, intruder: Intruder, signer: Signer, public_key_file: Path,
        tmp_path: Path, tamper: Any) -> None:
    store = log_store(ledger.recorder)
    before = make_checkpoint(store, signer, ledger.clock)
    checkpoint_file = tmp_path / "before.json"
    checkpoint_file.write_text(json.dumps(before))
    rows = {row[0]: row for row in intruder.rows()}
    assert appraisal(db_url, "verify").returncode == 0

    position, named = tamper(intruder)

    done = appraisal(db_url, "verify")
    message = flat(done.stdout + done.stderr)
    assert done.returncode != 0, message
    assert f"position {position}" in message
    assert f"first bad event at position {position}" in message
    if named:
        _, oid, version, _, _ = rows.get(position) or intruder.rows()[-1]
        assert f"aggregate {oid} version {version}" in message
    verdict = verify(store)
    assert not verdict.ok and verdict.walked.problem is not None
    assert verdict.walked.problem.position == position

    # The checkpoint taken before: verify against it fails; the tampered log gets no checkpoint, so
    # no consistency proof from the old one to it can exist; and where the change lies inside what
    # the old checkpoint signed, the log no longer yields even the old tree.
    against = appraisal(db_url, "verify", "--checkpoint", str(checkpoint_file), "--public-key", str(public_key_file))
    assert against.returncode != 0 and f"position {position}" in flat(against.stderr)
    with pytest.raises(IntegrityFailure, match="does not verify"):
        make_checkpoint(store, signer, ledger.clock)
    if position <= before["head_position"]:
        with pytest.raises(IntegrityFailure, match="cannot prove"):
            prove_consistency(store, before, before, signer.public)


def test_a_rewritten_chain_passes_the_chain_check_but_not_the_checkpoint(
        db_url: str, ledger: AppraisalLedger, intruder: Intruder, signer: Signer, public_key_file: Path,
        tmp_path: Path) -> None:
    store = log_store(ledger.recorder)
    before = make_checkpoint(store, signer, ledger.clock)
    (tmp_path / "before.json").write_text(json.dumps(before))
    change_a_score(intruder)
    intruder.rewrite_chain()

    assert verify(store).ok  # the chain alone cannot tell: this is what checkpoints are for
    against = appraisal(db_url, "verify", "--checkpoint", str(tmp_path / "before.json"),
                        "--public-key", str(public_key_file))
    assert against.returncode != 0
    assert "no longer give the checkpoint's Merkle root" in flat(against.stderr)
    with pytest.raises(IntegrityFailure, match="no longer extends the checkpoint"):
        make_checkpoint(store, signer, ledger.clock)

    # Even with the recorded checkpoints gone, a new checkpoint cannot be shown consistent with the old.
    intruder.forget_checkpoints()
    after = make_checkpoint(store, signer, ledger.clock)
    assert after["size"] == before["size"] and after["root"] != before["root"]
    with pytest.raises(IntegrityFailure, match="cannot prove"):
        prove_consistency(store, before, after, signer.public)
    leaves = walk(store, keep_leaves=True).leaves
    assert leaves is not None
    forged = {"format": "appraisal-ledger-consistency/1", "old": before, "new": after,
              "path": [h.hex() for h in merkle.consistency_path(leaves, before["size"] - 1, after["size"])]}
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    checked = verify_proof("consistency", tmp_path / "forged.json", "--public-key", public_key_file)
    assert checked.returncode == 1 and "FAILED" in checked.stdout


def more_people(ledger: AppraisalLedger, *names: str) -> None:
    ledger.submit([{"type": "org.person", "id": f"more-{name}", "actor": "admin", "person": f"p-{name}",
                    "name": name, "position": "leader"} for name in names])


def test_after_a_checkpoint_only_what_came_after_it_is_walked_from_the_chain_head_it_signed(
        ledger: AppraisalLedger, intruder: Intruder, signer: Signer) -> None:
    """What the integrity page verifies on each view (api/pages/inspector.py): the events after
    the latest checkpoint, chained onto the chain hash the checkpoint signed."""
    store = log_store(ledger.recorder)
    checkpoint = make_checkpoint(store, signer, ledger.clock)
    more_people(ledger, "Y1", "Y2", "Y3")
    verdict = verify_after(store, checkpoint)
    assert verdict.ok, verdict.message
    assert verdict.walked.size == ledger.event_count() == checkpoint["size"] + 3
    assert verdict.walked.position == intruder.rows()[-1][0]

    # before the checkpoint: not read again here (the whole walk names it)
    change_a_score(intruder)
    assert verify_after(store, checkpoint).ok
    assert not verify(store).ok
    # the chain rewritten from the altered event on: the events after the checkpoint no longer
    # chain onto the head it signed
    intruder.rewrite_chain()
    assert verify(store).ok
    rewritten = verify_after(store, checkpoint)
    assert not rewritten.ok and rewritten.walked.problem is not None
    assert rewritten.walked.problem.position == checkpoint["head_position"] + 1


def test_an_event_altered_after_the_checkpoint_is_named(ledger: AppraisalLedger, intruder: Intruder,
                                                        signer: Signer) -> None:
    store = log_store(ledger.recorder)
    checkpoint = make_checkpoint(store, signer, ledger.clock)
    more_people(ledger, "Y1", "Y2", "Y3")
    position = intruder.rows()[-2][0]
    intruder.replace_in_state(position, b'"Y2"', b'"Y9"')
    verdict = verify_after(store, checkpoint)
    assert not verdict.ok and verdict.walked.problem is not None
    assert verdict.walked.problem.position == position and verdict.walked.position == position - 1


def test_a_write_after_the_last_event_was_deleted_is_refused(
        ledger: AppraisalLedger, intruder: Intruder) -> None:
    intruder.delete(intruder.rows()[-1][0])
    with pytest.raises(ChainBroken, match="appraisal verify"):
        ledger.submit_one({"type": "org.person", "id": "after-delete", "actor": "admin", "person": "p-Z",
                           "name": "赵", "position": "leader"})


# --- proofs, checked by the standalone verifier -----------------------------------------------------


def test_inclusion_and_consistency_proofs_verify_with_the_standalone_verifier(
        db_url: str, signer: Signer, public_key_file: Path, tmp_path: Path) -> None:
    key = tmp_path / "keys" / "signing.key"
    commands = build()
    ledger = AppraisalLedger(db_url)
    try:
        ledger.submit(commands[:20])
    finally:
        ledger.close()
    assert appraisal(db_url, "checkpoint", "--out", str(tmp_path / "old.json"), key=key).returncode == 0
    ledger = AppraisalLedger(db_url)
    try:
        ledger.submit(commands[20:])
        events = ledger.event_count()
    finally:
        ledger.close()
    assert appraisal(db_url, "checkpoint", "--out", str(tmp_path / "new.json"), key=key).returncode == 0
    old, new = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("old", "new"))
    assert old["size"] < new["size"] == events

    checked = verify_proof("checkpoint", tmp_path / "new.json", "--public-key", public_key_file)
    assert checked.returncode == 0, checked.stdout
    for position in (1, old["head_position"], events):
        proof = tmp_path / f"inclusion-{position}.json"
        done = appraisal(db_url, "prove", "inclusion", str(position), "--checkpoint", str(tmp_path / "new.json"),
                         "--out", str(proof), key=key)
        assert done.returncode == 0, done.stderr
        checked = verify_proof("inclusion", proof, "--public-key", public_key_file,
                               "--checkpoint", tmp_path / "new.json")
        assert checked.returncode == 0, checked.stdout
        assert f"position {position}" in checked.stdout
    done = appraisal(db_url, "prove", "consistency", "--old", str(tmp_path / "old.json"), "--new",
                     str(tmp_path / "new.json"), "--out", str(tmp_path / "consistency.json"), key=key)
    assert done.returncode == 0, done.stderr
    checked = verify_proof("consistency", tmp_path / "consistency.json", "--public-key", public_key_file,
                           "--old", tmp_path / "old.json", "--new", tmp_path / "new.json")
    assert checked.returncode == 0, checked.stdout

    # An altered event, a proof against another checkpoint, a key other than the trusted one: refused.
    proof = json.loads((tmp_path / f"inclusion-{events}.json").read_text())
    proof["event"]["originator_version"] += 1
    (tmp_path / "altered.json").write_text(json.dumps(proof))
    assert verify_proof("inclusion", tmp_path / "altered.json", "--public-key", public_key_file).returncode == 1
    mismatch = verify_proof("inclusion", tmp_path / f"inclusion-{events}.json", "--public-key", public_key_file,
                            "--checkpoint", tmp_path / "old.json")
    assert mismatch.returncode == 1
    other = load_or_create(tmp_path / "other.key")
    (tmp_path / "other.pem").write_text(public_pem(other.public))
    assert verify_proof("checkpoint", tmp_path / "new.json", "--public-key", tmp_path / "other.pem").returncode == 1


def test_an_event_after_the_checkpoint_has_no_inclusion_proof_against_it(
        ledger: AppraisalLedger, signer: Signer) -> None:
    store = log_store(ledger.recorder)
    checkpoint = make_checkpoint(store, signer, ledger.clock)
    ledger.submit_one({"type": "org.person", "id": "later", "actor": "admin", "person": "p-Z", "name": "赵",
                       "position": "leader"})
    with pytest.raises(IntegrityFailure, match="after the checkpoint"):
        prove_inclusion(store, ledger.event_count(), checkpoint, signer.public)
    assert prove_inclusion(store, checkpoint["head_position"], checkpoint, signer.public)["leaf_index"] == \
        checkpoint["size"] - 1


# --- proofs from the roots kept with a checkpoint ---------------------------------------------------------

RUN = 8  # leaves per root kept with a checkpoint in these tests (verification.CHUNK, 1,024, in the application)




def test_a_proof_from_the_kept_roots_is_the_proof_from_every_leaf_byte_for_byte(
        db_url: str, ledger: AppraisalLedger, intruder: Intruder, signer: Signer, public_key_file: Path,
        tmp_path: Path) -> None:
    """Two checkpoints, of a size that is not a multiple of the run and of one that is; on
    PostgreSQL with gaps in the positions (leaf index is not position - 1). Each proof (the first
    event, the last of a run, the first of the next, the middle, the last run's first, the last
    event) is made from one run of events and the kept roots, then again from every leaf once the
    kept roots are gone (a checkpoint signed before they were kept): the same bytes, and the
    standalone verifier accepts them."""
    store = log_store(ledger.recorder)
    for number, gap in enumerate((5, 3, 0)):
        intruder.skip_positions(gap)
        more_people(ledger, f"G{number}")
    for number in range(RUN):
        if len(intruder.rows()) % RUN:
            break
        more_people(ledger, f"R{number}")
    ragged = make_checkpoint(store, signer, ledger.clock, chunk=RUN)
    for number in range(RUN):
        if not len(intruder.rows()) % RUN:
            break
        more_people(ledger, f"E{number}")
    even = make_checkpoint(store, signer, ledger.clock, chunk=RUN)
    assert ragged["size"] % RUN and not even["size"] % RUN
    rows = intruder.rows()

    proofs = {}
    for checkpoint in (ragged, even):
        size = checkpoint["size"]
        for index in sorted({0, RUN - 1, RUN, 2 * RUN, size // 2, size - (size % RUN or RUN), size - 1}):
            proofs[size, index] = prove_inclusion(store, rows[index][0], checkpoint, signer.public, chunk=RUN)
            assert proofs[size, index]["leaf_index"] == index
    assert proofs[even["size"], even["size"] - 1]["event"]["position"] == even["head_position"]
    if intruder.p == "%s":
        assert rows[-1][0] >= len(rows) + 8  # the gaps: leaf index is not position - 1

    assert [c.leaves for c in store.chunks(ragged["size"], RUN)][-2:] == [RUN, ragged["size"] % RUN]
    assert len(store.chunks(even["size"], RUN)) == even["size"] // RUN
    intruder.forget_chunks()
    assert store.chunks(even["size"], RUN) == []
    verifier = standalone_verifier()
    for checkpoint in (ragged, even):
        kept = tmp_path / f"checkpoint-{checkpoint['size']}.json"
        kept.write_text(json.dumps(checkpoint))
        for (size, index), proof in proofs.items():
            if size != checkpoint["size"]:
                continue
            from_every_leaf = prove_inclusion(store, rows[index][0], checkpoint, signer.public, chunk=RUN)
            assert json.dumps(proof) == json.dumps(from_every_leaf)
            verify_inclusion_proof(proof, signer.public)
            (tmp_path / "proof.json").write_text(json.dumps(proof))
            assert verifier.main(["inclusion", str(tmp_path / "proof.json"), "--public-key",
                                  str(public_key_file), "--checkpoint", str(kept)]) == 0


def test_a_proof_refuses_a_changed_event_of_its_run_and_changed_kept_roots(
        ledger: AppraisalLedger, intruder: Intruder, signer: Signer) -> None:
    store = log_store(ledger.recorder)
    checkpoint = make_checkpoint(store, signer, ledger.clock, chunk=RUN)
    rows = intruder.rows()
    proved, neighbour, elsewhere = rows[RUN + 2][0], rows[RUN + 5][0], rows[3 * RUN + 1][0]

    def prove(position: int) -> dict[str, Any]:
        proof = prove_inclusion(store, position, checkpoint, signer.public, chunk=RUN)
        verify_inclusion_proof(proof, signer.public)
        return proof

    prove(proved)
    # another event of its run changed: the run's leaves no longer give the root kept for them
    original = intruder.state(neighbour)
    intruder.set_state(neighbour, original + b" ")
    with pytest.raises(IntegrityFailure, match=f"leaves {RUN}–{2 * RUN - 1} .*no longer give the root"):
        prove(proved)
    # a proof stands on its own run (and the kept roots): an event of another run is still proved,
    # and `verify` (the integrity page's button) names the change
    assert prove(elsewhere)["leaf_index"] == 3 * RUN + 1
    assert not verify(store, checkpoint, signer.public).ok
    intruder.set_state(neighbour, original)
    prove(proved)

    # a kept root changed: the kept roots no longer give the signed root
    intruder.set_chunk(0, "root", bytes(32))
    with pytest.raises(IntegrityFailure, match="do not give its signed root"):
        prove(proved)
    with pytest.raises(IntegrityFailure, match="do not give its signed root"):
        prove(elsewhere)
    # the next checkpoint writes them again
    make_checkpoint(store, signer, ledger.clock, chunk=RUN)
    prove(proved)

    # a run's first position changed: the events read are not the run's
    intruder.set_chunk(RUN, "first_position", rows[RUN + 1][0])
    with pytest.raises(IntegrityFailure, match="no longer give the root"):
        prove(proved)


def test_a_later_checkpoint_walks_from_the_last_run_the_one_before_covered_and_signs_the_tree_the_log_had(
        ledger: AppraisalLedger, intruder: Intruder, signer: Signer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 19: signing costs the events since the latest checkpoint, not the years behind it. The
    runs before that checkpoint's last run come from the roots kept with it; a change there (its
    chain row left as it was) does not stop the next signature, but that signature is over the
    tree the log had, so every checkpoint names the change; a change in the walked part, or a chain
    rewritten to hide one, is refused."""
    store = log_store(ledger.recorder)
    first = make_checkpoint(store, signer, ledger.clock, chunk=RUN)
    assert first["size"] > 4 * RUN
    more_people(ledger, "N1", "N2")
    read: list[int] = []
    pages = store.pages

    def counted(page: int, after: int = 0) -> Iterator[list[Any]]:
        for found in pages(page, after):
            read.extend(row[0] for row in found)
            yield found

    monkeypatch.setattr(store, "pages", counted)
    second = make_checkpoint(store, signer, ledger.clock, chunk=RUN)
    rows = intruder.rows()
    assert read == [row[0] for row in rows[(first["size"] - 1) // RUN * RUN:]]  # the last run on
    assert second["root"] == walk(store).root.hex()  # type: ignore[union-attr]
    assert verify(store, second, signer.public).ok

    # An event of a run before the last, changed, its chain row left: signed over the tree as it was.
    target = rows[RUN + 1][0]
    original = intruder.state(target)
    intruder.set_state(target, original + b" ")
    more_people(ledger, "N3")
    read.clear()
    third = make_checkpoint(store, signer, ledger.clock, chunk=RUN)
    assert target not in read and third["size"] == second["size"] + 1
    for checkpoint in (first, second, third):
        verdict = verify(store, checkpoint, signer.public)
        assert not verdict.ok and f"first bad event at position {target}" in verdict.message
    intruder.set_state(target, original)
    assert verify(store, third, signer.public).ok

    # An event of the last run the latest checkpoint covered: walked again, refused.
    last_run = intruder.rows()[(third["size"] - 1) // RUN * RUN][0]
    original = intruder.state(last_run)
    intruder.set_state(last_run, original + b" ")
    more_people(ledger, "N4")
    with pytest.raises(IntegrityFailure, match=f"does not verify: first bad event at position {last_run}"):
        make_checkpoint(store, signer, ledger.clock, chunk=RUN)
    intruder.set_state(last_run, original)

    # A change before the last run with the chain rewritten to match: the chain head the latest
    # checkpoint signed is not met again.
    intruder.set_state(target, intruder.state(target) + b" ")
    intruder.rewrite_chain()
    with pytest.raises(IntegrityFailure, match="no longer extends the checkpoint"):
        make_checkpoint(store, signer, ledger.clock, chunk=RUN)


# --- backups ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["backup.jsonl", "backup.jsonl.gz"])
def test_a_backup_restores_into_an_empty_store_that_verifies_and_gives_identical_results(
        ledger: AppraisalLedger, signer: Signer, empty_url: str, tmp_path: Path, name: str) -> None:
    store = log_store(ledger.recorder)
    checkpoint = make_checkpoint(store, signer, ledger.clock)
    trailer = export_log(store, tmp_path / name)
    assert trailer["events"] == ledger.event_count()

    restored = AppraisalLedger(empty_url)
    try:
        restored_store = log_store(restored.recorder)
        import_log(restored_store, tmp_path / name)
        verdict = verify(restored_store, checkpoint, signer.public)  # the old checkpoint holds
        assert verdict.ok, verdict.message
        assert verdict.walked.chain.hex() == trailer["chain_head"]
        assert restored.results(2025) == ledger.results(2025)
        assert restored.commands(["we-001"]) == ledger.commands(["we-001"])
        assert restored_store.checkpoints() == [checkpoint]

        # The restored store goes on: a new command is chained after the restored head, and a
        # re-sent one is still a duplicate.
        outcomes = restored.submit([build()[0], {"type": "org.person", "id": "after-restore", "actor": "admin",
                                                 "person": "p-Z", "name": "赵", "position": "leader"}])
        assert [o.duplicate for o in outcomes] == [True, False]
        assert verify(restored_store, checkpoint, signer.public).ok
        with pytest.raises(IntegrityFailure, match="not empty"):
            import_log(restored_store, tmp_path / name)
    finally:
        restored.close()


def test_an_altered_backup_is_refused_and_nothing_is_restored(
        ledger: AppraisalLedger, empty_url: str, tmp_path: Path) -> None:
    export_log(log_store(ledger.recorder), tmp_path / "backup.jsonl")
    lines = (tmp_path / "backup.jsonl").read_text().splitlines()
    record = json.loads(lines[10])
    record["e"][4] = record["e"][4][:-4] + "AAA="
    lines[10] = json.dumps(record)
    (tmp_path / "altered.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "truncated.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    restored = AppraisalLedger(empty_url)
    try:
        restored_store = log_store(restored.recorder)
        with pytest.raises(IntegrityFailure, match=f"position {record['e'][0]}"):
            import_log(restored_store, tmp_path / "altered.jsonl")
        assert restored_store.is_empty()
        export_log(log_store(ledger.recorder), tmp_path / "backup.jsonl")
        lines = (tmp_path / "backup.jsonl").read_text().splitlines()
        (tmp_path / "truncated.jsonl").write_text("\n".join(lines[:-1]) + "\n")
        with pytest.raises(IntegrityFailure, match="truncated"):
            import_log(restored_store, tmp_path / "truncated.jsonl")
        assert restored_store.is_empty()
    finally:
        restored.close()


def test_backup_through_the_command_line(db_url: str, ledger: AppraisalLedger, empty_url: str,
                                         tmp_path: Path) -> None:
    key = tmp_path / "keys" / "signing.key"
    assert appraisal(db_url, "checkpoint", "--out", str(tmp_path / "cp.json"), key=key).returncode == 0
    done = appraisal(db_url, "backup", "export", str(tmp_path / "b.jsonl.gz"))
    assert done.returncode == 0, done.stderr
    done = appraisal(empty_url, "backup", "import", str(tmp_path / "b.jsonl.gz"), "--checkpoint",
                     str(tmp_path / "cp.json"), key=key)
    assert done.returncode == 0, done.stderr
    assert f"ok, {ledger.event_count()} events" in done.stdout
    results = [appraisal(url, "results", "--year", "2025", "--format", "json") for url in (db_url, empty_url)]
    assert results[0].returncode == 0 and results[0].stdout == results[1].stdout


def test_export_refuses_a_tampered_log(ledger: AppraisalLedger, intruder: Intruder, tmp_path: Path) -> None:
    position, _ = change_a_score(intruder)
    with pytest.raises(IntegrityFailure, match=f"position {position}"):
        export_log(log_store(ledger.recorder), tmp_path / "backup.jsonl")
    assert not (tmp_path / "backup.jsonl").exists()


# --- a checkpoint at each publication --------------------------------------------------------------------


def test_an_import_that_publishes_the_year_takes_a_checkpoint(db_url: str, public_key_file: Path,
                                                             tmp_path: Path) -> None:
    key, folder = tmp_path / "keys" / "signing.key", tmp_path / "inspector"
    publish = {"type": "year.publish", "id": "publish-2025", "actor": "admin", "year": 2025,
               "at": "2025-12-31T09:00:00+08:00"}
    for name, commands in (("example.jsonl", build()), ("publish.jsonl", [*build(), publish])):
        (tmp_path / name).write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in commands))
    env = {**os.environ, "APPRAISAL_DB": db_url, "APPRAISAL_SIGNING_KEY": str(key),
           "APPRAISAL_CHECKPOINT_DIR": str(folder)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(APPRAISAL), *args], capture_output=True, text=True, timeout=120, env=env)

    assert run("import", str(tmp_path / "example.jsonl")).returncode == 0
    assert not folder.exists()  # nothing published, no checkpoint
    done = run("import", str(tmp_path / "publish.jsonl"))
    assert done.returncode == 0, done.stderr
    (checkpoint,) = folder.iterdir()
    assert "give it to the inspector" in flat(done.stderr)
    ledger = AppraisalLedger(db_url)
    try:
        assert json.loads(checkpoint.read_text())["size"] == ledger.event_count()
    finally:
        ledger.close()
    checked = verify_proof("checkpoint", checkpoint, "--public-key", public_key_file)
    assert checked.returncode == 0, checked.stdout
    assert run("verify", "--checkpoint", str(checkpoint), "--public-key", str(public_key_file)).returncode == 0
    assert run("import", str(tmp_path / "publish.jsonl")).returncode == 0  # all skipped: no new publication
    assert len(list(folder.iterdir())) == 1


# --- a log from before the chain ---------------------------------------------------------------------------


def test_a_log_from_before_the_chain_is_adopted_on_request_and_then_written_to(
        db_url: str, ledger: AppraisalLedger, intruder: Intruder) -> None:
    intruder.conn.execute(intruder.q("DELETE FROM {chain} WHERE position > 30"))
    person = {"type": "org.person", "id": "after-adopt", "actor": "admin", "person": "p-Z", "name": "赵",
              "position": "leader"}
    with pytest.raises(ChainBroken):
        ledger.submit_one(person)
    refused = appraisal(db_url, "verify")
    assert refused.returncode == 1 and "position 31" in flat(refused.stderr) and "--adopt" in flat(refused.stderr)

    done = appraisal(db_url, "verify", "--adopt")
    assert done.returncode == 0, done.stderr
    assert f"chained 已补链 {ledger.event_count() - 30} event(s) from position 31" in flat(done.stderr)
    ledger.submit_one(person)
    assert verify(log_store(ledger.recorder)).ok

    change_a_score(intruder)
    intruder.conn.execute(intruder.q("DELETE FROM {chain} WHERE position > 40"))
    refused = appraisal(db_url, "verify", "--adopt")  # an altered event before the tail: nothing is adopted
    assert refused.returncode == 1 and "nothing to adopt" in flat(refused.stderr)
