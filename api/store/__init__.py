"""The event store, on SQLite, PostgreSQL and in memory: one writer path per store.

`storage.py` extends the library's recorders (events, their command-id rows and the hash chain's
rows in one transaction; the read-set check; the schema), `chain.py` is the hash chain (its
encoding and the rows written with each batch: the one place it is computed), `transcoding.py`
the events' bytes, `groupcommit.py` concurrent writers sharing a transaction, `logstore.py` the
whole log as the tamper evidence (`api/integrity/`) reads it, `gcpause.py` the collector paused
over long folds. Imports `domain/` only; everything else in `api/` and `projections/` sits above.
"""
