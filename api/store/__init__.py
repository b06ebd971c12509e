"""The event store, on SQLite, PostgreSQL and in memory: one writer path per store.

`storage.py` extends the library's recorders (events, their command-id rows and the hash chain's
rows in one transaction; the read-set check; the schema), `chain.py` is the hash chain (its
encoding and the rows written with each batch: the one place it is computed), `transcoding.py`
the events' bytes, `groupcommit.py` concurrent writers sharing a transaction, `logstore.py` the
whole log as the tamper evidence (`api/integrity/`) reads it, `gcpause.py` the collector paused
over long folds. Imports `domain/` only; everything else in `api/` and `projections/` sits above.

On PostgreSQL
-------------

- **The log's lock** (PostgreSQL): every writer takes the events table in ROW EXCLUSIVE mode and
  an advisory lock of the table, and holds them until it commits, so positions are given in commit
  order. Not the table's EXCLUSIVE lock: autovacuum's lock conflicts with it, and each vacuum of the
  growing log (about every minute under load) held every write back while it ran. An EXCLUSIVE
  holder (a backup being loaded, a server of an earlier version) still excludes every writer.
- **PostgreSQL plans**: the read set is checked by one index probe per aggregate (`LATERAL …
  LIMIT 1`; as a join, the generic plan kept for a prepared statement was a merge join walking the
  whole events index on every write).
"""
