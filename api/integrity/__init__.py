"""Tamper evidence, beside the application service and on top of the store.

`verification.py` walks the hash chain (`api/store/chain.py`) over the log as `api/store/logstore.py`
reads it, signs checkpoints and proves inclusion and consistency over the Merkle tree of
`merkle.py` (RFC 6962/9162), with the Ed25519 key of `keys.py` (kept outside the database);
`backup.py` exports the log verifying it, and loads it back into an empty store.

Every stored event is chained, in the same transaction that records it: a table `stored_chain`
(SQLite) or `appraisalledger_chain` (PostgreSQL) holds `(position, hash)` per event, where

```
canonical = be64(position) ‖ be32(16) ‖ aggregate id (16 bytes) ‖ be64(version) ‖ be32(len) ‖ topic ‖ be32(len) ‖ stored state
leaf      = SHA-256(0x00 ‖ canonical)                      (an RFC 6962 / 9162 Merkle leaf)
hash_n    = SHA-256(hash_{n-1} ‖ leaf_n),  hash_0 = 32 zero bytes
```

A write that finds the log not ending where the chain ends (an event deleted or inserted outside
the ledger) is refused until someone looks. The chain alone proves nothing to whoever can rewrite
it; **checkpoints** do: a checkpoint is a signed tree head (the RFC 6962 Merkle root over all
leaves, the size, the last position and chain hash, the time, Ed25519 signature) written as a small
JSON file that the inspector keeps. The signing key lives outside the database, in
`$APPRAISAL_SIGNING_KEY` or `~/.config/appraisal-ledger/signing.key` (created on first use, mode
0600); `appraisal key --out public.pem` gives the inspector the public key. A copy of each
checkpoint is kept in the store's `_checkpoints` table for listing, never for verifying; beside
it, `_chunks` keeps the Merkle root of each run of 1,024 leaves the checkpoint covers, so that an
inclusion proof reads its event's run rather than the whole log (checked against the signed root
on each proof: `verification.py`, "Chunks").

```bash
appraisal verify                                   # "ok, N events, head H", or exit 1 naming the first bad event
appraisal verify --checkpoint cp.json              # ... and the log still yields the tree this checkpoint signed
appraisal checkpoint --out cp.json                 # sign the current tree head (refused if the log does not verify)
appraisal prove inclusion 1234 --checkpoint cp.json --out proof.json
appraisal prove consistency --old cp-may.json --new cp-june.json --out proof.json
appraisal backup export ledger.jsonl.gz            # verified, positions and bytes kept: old checkpoints still hold
appraisal backup import ledger.jsonl.gz [--checkpoint cp.json]   # into an empty store only, all or nothing
python3 scripts/verify_proof.py inclusion proof.json --public-key public.pem --checkpoint cp.json
```

`scripts/verify_proof.py` imports only the standard library and `cryptography`: the inspector
checks checkpoints, inclusion proofs (recomputing the event's leaf from its stored bytes) and
consistency proofs (RFC 9162 §2.1.3–2.1.4) without trusting this code. **At each publication**:
`appraisal import` takes a checkpoint after a file that recorded a `year.publish` (more precisely,
whenever the log holds a publication newer than the latest checkpoint) and writes it to
`$APPRAISAL_CHECKPOINT_DIR` (default `./checkpoints/`); hand that file to the inspector. Whoever
publishes by another route must run `appraisal checkpoint` (the domain handler cannot reach a key
kept outside the database, by design). What each piece does and why: `api/store/chain.py` (encoding,
chain rows written by the recorders in `api/store/storage.py`), `merkle.py`, `verification.py`
(verification, checkpoints, proofs), `keys.py`, `backup.py`.
"""
