"""The hash chain over the whole event log: its encoding and the rows written with each batch.

Every stored event gets a chain row `(position, hash)` in the same transaction as the event, where
`position` is the event's notification id and

    canonical(e) = be64(position) || be32(16) || originator_id (16 raw UUID bytes)
                   || be64(originator_version) || be32(len(topic)) || topic (UTF-8)
                   || be32(len(state)) || state (the stored bytes, as the mapper wrote them)
    leaf(e)      = SHA-256(0x00 || canonical(e))            (an RFC 6962/9162 Merkle leaf hash)
    hash_n       = SHA-256(hash_{n-1} || leaf_n),  hash_0 = 32 zero bytes

over the events in position order (PostgreSQL leaves gaps in positions when a transaction rolls
back; the chain runs over the events that exist, and the position inside each leaf makes a moved
event visible). Altering, dropping, reordering or inserting an event breaks the chain at that
event; rewriting the chain rows as well is caught by a signed checkpoint (api/integrity/verification.py).

A write checks that the chain's head is the last event before the batch; if not (events written
outside the ledger, a deleted last event, a log from before the chain), it refuses with
`ChainBroken` rather than chain over something it cannot vouch for: `appraisal verify` says where.
The tables: `stored_chain` (SQLite), `<app>_chain` (PostgreSQL, e.g. `appraisalledger_chain`), a
list in memory. Each batch's chain rows go in with one statement.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from hashlib import sha256
from typing import Any
from uuid import UUID

from eventsourcing.persistence import PersistenceError, StoredEvent
from psycopg.sql import SQL, Composable, Identifier

SEED = bytes(32)
_FIXED = struct.Struct(">qI16sqI")  # position, len(id)=16, id, version, len(topic)
_LENGTH = struct.Struct(">I")


class ChainBroken(PersistenceError):
    """The log does not end where its chain ends: nothing more is written until it is looked at."""


def oid_bytes(originator_id: UUID | str | bytes) -> bytes:
    """The 16 raw bytes of an originator id (a UUID, its 32-hex or canonical text, or the bytes)."""
    if isinstance(originator_id, UUID):
        return originator_id.bytes
    if isinstance(originator_id, bytes | bytearray | memoryview):
        return bytes(originator_id)
    if len(originator_id) == 32:
        return bytes.fromhex(originator_id)
    return UUID(originator_id).bytes


def canonical(position: int, oid: bytes, version: int, topic: str, state: bytes) -> bytes:
    encoded = topic.encode()
    return _FIXED.pack(position, 16, oid, version, len(encoded)) + encoded + _LENGTH.pack(len(state)) + state


def leaf_hash(position: int, oid: bytes, version: int, topic: str, state: bytes) -> bytes:
    encoded = topic.encode()
    return sha256(b"\x00" + _FIXED.pack(position, 16, oid, version, len(encoded)) + encoded
                  + _LENGTH.pack(len(state)) + state).digest()


def chain_hash(previous: bytes, leaf: bytes) -> bytes:
    return sha256(previous + leaf).digest()


def extend(head: bytes, ids: Sequence[int], stored_events: Sequence[StoredEvent]) -> tuple[list[int], list[bytes]]:
    """The chain rows of a batch, in position order, continuing from `head` (the hot path of every
    write: `leaf_hash` inlined)."""
    pairs = list(zip(ids, stored_events, strict=True))
    if any(ids[i] >= ids[i + 1] for i in range(len(ids) - 1)):
        pairs.sort(key=lambda pair: pair[0])
    pack, pack_length = _FIXED.pack, _LENGTH.pack
    hashes = []
    for position, event in pairs:
        topic, state, originator_id = event.topic.encode(), event.state, event.originator_id
        oid = originator_id.bytes if isinstance(originator_id, UUID) else oid_bytes(originator_id)
        leaf = sha256(b"\x00" + pack(position, 16, oid, event.originator_version, len(topic)) + topic
                      + pack_length(len(state)) + state).digest()
        head = sha256(head + leaf).digest()
        hashes.append(head)
    return [position for position, _ in pairs], hashes


def extend_rows(head: bytes, rows: Iterable[Sequence[Any]]) -> list[tuple[int, bytes]]:
    """Chain rows for rows read back from a store: (position, 16-byte id, version, topic, state)."""
    chained = []
    for position, oid, version, topic, state in rows:
        head = chain_hash(head, leaf_hash(position, bytes(oid), version, topic, bytes(state)))
        chained.append((position, head))
    return chained


def _check_head(chain_position: int | None, last_event_before: int | None, first_new: int) -> None:
    if chain_position != last_event_before:
        raise ChainBroken(
            f"the hash chain ends at position {chain_position or 0} but the log holds events up to "
            f"position {last_event_before or 0} before this write (at {first_new}): the log was changed "
            "outside the ledger or predates the chain; run `appraisal verify`")


class SQLiteChain:
    """The chain table of a SQLite store, written inside `SQLiteLedgerRecorder._insert_events`
    (after the events: the insert holds the write lock, so the head read here is final)."""

    def __init__(self, events_table: str) -> None:
        self.events_table = events_table
        self.table = events_table.replace("events", "chain")
        self.create_statement = (f"CREATE TABLE IF NOT EXISTS {self.table} "
                                 "(position INTEGER PRIMARY KEY, hash BLOB NOT NULL)")
        self._head = f"SELECT position, hash FROM {self.table} ORDER BY position DESC LIMIT 1"
        self._before = f"SELECT max(rowid) FROM {events_table} WHERE rowid < ?"
        self._insert = f"INSERT INTO {self.table} VALUES (?,?)"

    def append(self, c: Any, stored_events: Sequence[StoredEvent], ids: Sequence[int]) -> None:
        if not ids:
            return
        first = min(ids)
        c.execute(self._head)
        row = c.fetchone()
        c.execute(self._before, (first,))
        _check_head(row[0] if row else None, c.fetchone()[0], first)
        positions, hashes = extend(row[1] if row else SEED, ids, stored_events)
        c.executemany(self._insert, zip(positions, hashes, strict=True))


class PostgresChain:
    """The chain table of a PostgreSQL store, written inside `PostgresLedgerRecorder.insert_events`:
    the events' table lock is held and their positions are final; the head is read in the same
    transaction, by the statement that draws the positions (`head_query`)."""

    def __init__(self, schema: str, events_table: str) -> None:
        self.table = events_table.replace("_events", "_chain")
        names = {"schema": Identifier(schema), "table": Identifier(self.table),
                 "events": Identifier(events_table)}
        self.create_statement = SQL("CREATE TABLE IF NOT EXISTS {schema}.{table} "
                                    "(position bigint PRIMARY KEY, hash bytea NOT NULL)").format(**names)
        self._names = names
        self._copy = SQL("COPY {schema}.{table} (position, hash) FROM STDIN (FORMAT BINARY)").format(**names)

    def head_query(self, first: Composable) -> Composable:
        """The last event before the batch (`first`: an SQL expression of its first position) and
        the chain's head: columns `before`, `position`, `hash`."""
        return SQL(
            "SELECT (SELECT max(notification_id) FROM {schema}.{events} WHERE notification_id < {first}) "
            "AS before, h.position, h.hash FROM (SELECT 1) AS one LEFT JOIN "
            "(SELECT position, hash FROM {schema}.{table} ORDER BY position DESC LIMIT 1) AS h ON true"
        ).format(first=first, **self._names)

    def append(self, curs: Any, stored_events: Sequence[StoredEvent], ids: Sequence[int],
               head_row: dict[str, Any]) -> None:
        """Chain rows for the batch, after the head read with `head_query` (`head_row`)."""
        if not ids:
            return
        _check_head(head_row["position"], head_row["before"], min(ids))
        head = bytes(head_row["hash"]) if head_row["hash"] is not None else SEED
        positions, hashes = extend(head, ids, stored_events)
        with curs.copy(self._copy) as copy:
            copy.set_types(["int8", "bytea"])
            write = copy.write_row
            for pair in zip(positions, hashes, strict=True):
                write(pair)


class MemoryChain:
    """The chain of the in-memory store: a list of (position, hash), under the recorder's lock."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, bytes]] = []

    def append(self, stored_events: Sequence[StoredEvent], ids: Sequence[int], last_before: int | None) -> None:
        if not ids:
            return
        position, head = self.rows[-1] if self.rows else (None, SEED)
        _check_head(position, last_before, min(ids))
        self.rows.extend(zip(*extend(head, ids, stored_events), strict=True))
