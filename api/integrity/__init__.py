"""Tamper evidence, beside the application service and on top of the store.

`verification.py` walks the hash chain (`api/store/chain.py`) over the log as `api/store/logstore.py`
reads it, signs checkpoints and proves inclusion and consistency over the Merkle tree of
`merkle.py` (RFC 6962/9162), with the Ed25519 key of `keys.py` (kept outside the database);
`backup.py` exports the log verifying it, and loads it back into an empty store.
"""
