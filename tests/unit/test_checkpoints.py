"""The chain's canonical encoding, checkpoints and the signing key, in memory (no database)."""

from __future__ import annotations

import os
import stat
from hashlib import sha256
from pathlib import Path
from uuid import UUID

import pytest

from api.integrity.keys import SigningKeyError, load_or_create
from api.integrity.verification import (
    CHUNK,
    IntegrityFailure,
    check_checkpoint,
    make_checkpoint,
    prove_inclusion,
    verify,
    verify_inclusion_proof,
)
from api.ledger import AppraisalLedger
from api.store.chain import SEED, canonical, chain_hash, leaf_hash
from api.store.logstore import log_store
from tests.builders.verifier import standalone_verifier
from tests.builders.worked_example import build

OID = UUID("12345678-1234-5678-1234-567812345678")


def test_the_canonical_bytes_and_leaf_hash_of_an_event_are_pinned() -> None:
    # A change here changes every leaf: it would break every checkpoint ever handed out.
    encoded = canonical(7, OID.bytes, 3, "domain.aggregates:Year.Published", b'{"a":1}')
    assert encoded.hex() == (
        "0000000000000007" "00000010" "12345678123456781234567812345678" "0000000000000003" "00000020"
        + b"domain.aggregates:Year.Published".hex() + "00000007" + b'{"a":1}'.hex())
    leaf = leaf_hash(7, OID.bytes, 3, "domain.aggregates:Year.Published", b'{"a":1}')
    assert leaf == sha256(b"\x00" + encoded).digest()
    assert leaf.hex() == "3ffab3b3a75133973b6599e0ea4ae7dcc1b5de55786e6d3bf3a35fbfe3540aa7"
    event = {"position": 7, "originator_id": str(OID), "originator_version": 3,
             "topic": "domain.aggregates:Year.Published", "state": "eyJhIjoxfQ=="}
    assert standalone_verifier().leaf_hash(event) == leaf
    assert chain_hash(SEED, leaf) == sha256(bytes(32) + leaf).digest()


@pytest.fixture
def ledger() -> AppraisalLedger:
    ledger = AppraisalLedger("memory://")
    ledger.submit(build())
    return ledger


def test_the_memory_store_keeps_the_chain_too(ledger: AppraisalLedger) -> None:
    verdict = verify(log_store(ledger.recorder))
    assert verdict.ok and verdict.walked.size == ledger.event_count()
    ledger.recorder._stored_events[4] = ledger.recorder._stored_events[5]  # type: ignore[attr-defined]
    assert verify(log_store(ledger.recorder)).walked.problem.position == 5  # type: ignore[union-attr]


def test_a_checkpoint_is_signed_and_any_changed_field_breaks_it(ledger: AppraisalLedger, tmp_path: Path) -> None:
    signer = load_or_create(tmp_path / "signing.key")
    store = log_store(ledger.recorder)
    checkpoint = make_checkpoint(store, signer, ledger.clock)
    check_checkpoint(checkpoint, signer.public)
    standalone = standalone_verifier()
    standalone.check_checkpoint(checkpoint, signer.public)
    for name, value in [("size", checkpoint["size"] - 1), ("root", "00" * 32), ("head_position", 1),
                        ("chain_head", "11" * 32), ("timestamp", "2000-01-01T00:00:00Z")]:
        altered = {**checkpoint, name: value}
        with pytest.raises(IntegrityFailure):
            check_checkpoint(altered, signer.public)
        with pytest.raises(standalone.Failed):
            standalone.check_checkpoint(altered, signer.public)
    other = load_or_create(tmp_path / "other.key")
    with pytest.raises(IntegrityFailure, match="not by the trusted key"):
        check_checkpoint(checkpoint, other.public)
    assert store.checkpoints() == [checkpoint]

    proof = prove_inclusion(store, 17, checkpoint, signer.public)
    verify_inclusion_proof(proof, signer.public)
    proof["event"]["topic"] += "x"
    with pytest.raises(IntegrityFailure, match="leaf hash"):
        verify_inclusion_proof(proof, signer.public)


def test_a_proof_on_a_log_of_more_than_one_run_reads_its_run_and_equals_the_proof_from_every_leaf(
        ledger: AppraisalLedger, tmp_path: Path) -> None:
    """The application's runs (CHUNK leaves): a checkpoint of two runs and a bit, its roots kept."""
    ledger.submit([{"type": "org.person", "id": f"run-{n}", "actor": "admin", "person": f"p-run-{n}",
                    "name": f"run {n}", "position": "leader"} for n in range(CHUNK + 1000)])
    signer = load_or_create(tmp_path / "signing.key")
    store = log_store(ledger.recorder)
    checkpoint = make_checkpoint(store, signer, ledger.clock)
    size = checkpoint["size"]
    assert size > 2 * CHUNK and size % CHUNK
    assert [c.leaves for c in store.chunks(size, CHUNK)] == [CHUNK, CHUNK, size % CHUNK]
    indices = [0, CHUNK - 1, CHUNK, size // 2, 2 * CHUNK, size - 1]
    proofs = [prove_inclusion(store, index + 1, checkpoint, signer.public) for index in indices]
    ledger.recorder.chunk_rows.clear()  # type: ignore[attr-defined]
    standalone = standalone_verifier()
    root = bytes.fromhex(checkpoint["root"])
    for index, proof in zip(indices, proofs, strict=True):
        assert proof == prove_inclusion(store, index + 1, checkpoint, signer.public)  # from every leaf
        assert proof["leaf_index"] == index
        leaf = standalone.leaf_hash(proof["event"])
        assert leaf.hex() == proof["leaf_hash"]
        assert standalone.verify_inclusion(leaf, index, size, [bytes.fromhex(h) for h in proof["path"]], root)


def test_the_key_file_is_created_private_and_a_readable_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config" / "appraisal-ledger" / "signing.key"
    signer = load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create(path).key_id == signer.key_id  # the same key next time
    os.chmod(path, 0o644)
    with pytest.raises(SigningKeyError, match="chmod 600"):
        load_or_create(path)
