"""The whole log as the integrity code reads it, one class per store (SQLite, PostgreSQL, memory).

`pages()` streams every event (after a position) with its chain row, in position order, from one snapshot, as
`(position, originator id as 16 bytes, version, topic, state, chain hash or None)`; the other
methods answer the verifier's follow-up questions (chain rows without an event), read the command
rows and the checkpoints table, and load a backup into an empty store in one transaction. Nothing
here decides whether the log is sound: api/integrity/verification.py does, from these rows.

Beside the checkpoints, the `<prefix>_chunks` table keeps the Merkle roots a signed checkpoint had
just computed (`Chunk`: each run of `chunk` leaves from leaf 0 on, and a checkpoint's last, shorter
run), with the position of each run's first event, so that a proof reads one run of events
(`events_from`) rather than the whole log. Rows are keyed by (first leaf, leaves): a run's root
never changes in an append-only log, and whoever changes a row only makes proofs refuse (they
check the rows against the signed root). Backups do not carry them: a restored store's old
checkpoints are proved by walking the log, as before.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple, Protocol
from uuid import UUID

from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from api.store.chain import SEED, ChainBroken, extend_rows, oid_bytes
from api.store.storage import (
    MemoryLedgerRecorder,
    PostgresLedgerRecorder,
    SQLiteLedgerRecorder,
    serialize_ddl,
)

Row = tuple[int, bytes, int, str, bytes, bytes | None]
Event = tuple[int, bytes, int, str, bytes]  # position, originator id as 16 bytes, version, topic, state
EventRow = tuple[int, str, int, str, bytes]  # position, originator id (text), version, topic, state
CHECKPOINT_COLUMNS = ("size", "head_position", "root", "timestamp", "key_id")
COMMAND_COLUMNS = ("command_id", "type", "fingerprint", "target", "position", "answer")


class Chunk(NamedTuple):
    """The Merkle root of leaves start .. start + leaves - 1, whose first event is at `first_position`."""

    start: int
    leaves: int
    first_position: int
    root: bytes


class Loader(Protocol):
    def events(self, rows: list[EventRow], hashes: list[bytes]) -> None: ...
    def commands(self, rows: list[dict[str, Any]]) -> None: ...
    def checkpoints(self, documents: list[dict[str, Any]]) -> None: ...


class LogStore(Protocol):
    kind: str

    def pages(self, page: int, after: int = 0) -> Generator[list[Row], None, None]: ...
    def raw_pages(self, page: int) -> Generator[list[Any], None, None]: ...
    def first_orphan(self, after: int, before: int | None) -> int | None: ...
    def chain_rows_upto(self, position: int) -> int: ...
    def chain_before(self, position: int) -> bytes | None: ...
    def is_empty(self) -> bool: ...
    def command_rows(self) -> Iterator[dict[str, Any]]: ...
    def record_checkpoint(self, document: dict[str, Any], chunks: Sequence[Chunk] = ...) -> None: ...
    def checkpoints(self) -> list[dict[str, Any]]: ...
    def chunks(self, size: int, chunk: int) -> list[Chunk]: ...
    def events_from(self, position: int, count: int) -> list[Event]: ...
    def loader(self) -> Any: ...
    def adopt(self, after: int, head: bytes) -> int: ...


def log_store(recorder: Any) -> LogStore:
    if isinstance(recorder, SQLiteLedgerRecorder):
        return SQLiteLog(recorder)
    if isinstance(recorder, PostgresLedgerRecorder):
        return PostgresLog(recorder)
    if isinstance(recorder, MemoryLedgerRecorder):
        return MemoryLog(recorder)
    raise TypeError(f"no hash chain in a {type(recorder).__name__}")


def _command_dict(row: Any) -> dict[str, Any]:
    return dict(zip(COMMAND_COLUMNS, row, strict=True))


def _same_head(row: Any, after: int, head: bytes) -> None:
    position, digest = (row[0], bytes(row[1])) if row else (0, SEED)
    if position != after or digest != head:
        raise ChainBroken("the log changed while its unchained tail was being chained: run it again")


def _command_tuple(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[column] for column in COMMAND_COLUMNS)


def _chunks_of(size: int, chunk: int) -> tuple[int, int]:
    """The query of `chunks`: the start of the last, shorter run of a tree of `size` leaves, and its leaves."""
    return size - size % chunk, size % chunk


# --- SQLite ---------------------------------------------------------------------------------------


class SQLiteLog:
    kind = "sqlite"

    def __init__(self, recorder: SQLiteLedgerRecorder) -> None:
        self.path = recorder.datastore.pool.db_name
        self.events = recorder.events_table_name
        self.chain = recorder.chain.table
        self.commands = recorder.commands_table
        self.checkpoints_table = self.events.replace("events", "checkpoints")
        self.chunks_table = self.events.replace("events", "chunks")

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.create_function("unhex", 1, bytes.fromhex, deterministic=True)  # SQLite < 3.41 has none
        try:
            yield conn
        finally:
            conn.close()

    def pages(self, page: int, after: int = 0) -> Generator[list[Row], None, None]:
        with self._connection() as conn:
            conn.execute("BEGIN")  # one snapshot (WAL) for the whole walk
            cursor = conn.execute(
                f"SELECT e.rowid, unhex(e.originator_id), e.originator_version, e.topic, e.state, c.hash "
                f"FROM {self.events} e LEFT JOIN {self.chain} c ON c.position = e.rowid WHERE e.rowid > ? "
                f"ORDER BY e.rowid", (after,))
            while rows := cursor.fetchmany(page):
                yield rows
            conn.execute("ROLLBACK")

    def raw_pages(self, page: int) -> Generator[list[Any], None, None]:
        with self._connection() as conn:
            conn.execute("BEGIN")
            cursor = conn.execute(f"SELECT rowid, originator_id, originator_version, topic, state "
                                  f"FROM {self.events} ORDER BY rowid")
            while rows := cursor.fetchmany(page):
                yield rows
            conn.execute("ROLLBACK")

    def first_orphan(self, after: int, before: int | None) -> int | None:
        with self._connection() as conn:
            row = conn.execute(
                f"SELECT min(c.position) FROM {self.chain} c WHERE c.position > ? AND c.position < ? "
                f"AND NOT EXISTS (SELECT 1 FROM {self.events} e WHERE e.rowid = c.position)",
                (after, before if before is not None else 2**63 - 1)).fetchone()
            return row[0]

    def chain_rows_upto(self, position: int) -> int:
        with self._connection() as conn:
            return conn.execute(f"SELECT count(*) FROM {self.chain} WHERE position <= ?", (position,)).fetchone()[0]

    def chain_before(self, position: int) -> bytes | None:
        with self._connection() as conn:
            row = conn.execute(f"SELECT hash FROM {self.chain} WHERE position < ? ORDER BY position DESC LIMIT 1",
                               (position,)).fetchone()
            return bytes(row[0]) if row else None

    def is_empty(self) -> bool:
        with self._connection() as conn:
            return not any(conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()
                           for table in (self.events, self.chain, self.commands))

    def command_rows(self) -> Iterator[dict[str, Any]]:
        with self._connection() as conn:
            for row in conn.execute(f"SELECT command_id, type, fingerprint, target, position, answer "
                                    f"FROM {self.commands} ORDER BY position, command_id"):
                yield _command_dict(row)

    def _create_checkpoints(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {self.checkpoints_table} (size INTEGER NOT NULL, "
                     "head_position INTEGER NOT NULL, root TEXT NOT NULL, timestamp TEXT NOT NULL, "
                     "key_id TEXT NOT NULL, document TEXT NOT NULL)")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {self.chunks_table} (start INTEGER NOT NULL, "
                     "leaves INTEGER NOT NULL, first_position INTEGER NOT NULL, root BLOB NOT NULL, "
                     "PRIMARY KEY (start, leaves))")

    def record_checkpoint(self, document: dict[str, Any], chunks: Sequence[Chunk] = ()) -> None:
        with self._connection() as conn:
            self._create_checkpoints(conn)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(f"INSERT INTO {self.checkpoints_table} VALUES (?,?,?,?,?,?)",
                         (*[document[c] for c in CHECKPOINT_COLUMNS], json.dumps(document)))
            conn.executemany(f"INSERT INTO {self.chunks_table} VALUES (?,?,?,?) ON CONFLICT (start, leaves) "
                             "DO UPDATE SET first_position = excluded.first_position, root = excluded.root", chunks)
            conn.execute("COMMIT")

    def chunks(self, size: int, chunk: int) -> list[Chunk]:
        with self._connection() as conn:
            self._create_checkpoints(conn)
            return [Chunk(*row) for row in conn.execute(
                f"SELECT start, leaves, first_position, root FROM {self.chunks_table} "
                "WHERE (leaves = ? AND start + leaves <= ?) OR (start = ? AND leaves = ?) ORDER BY start",
                (chunk, size, *_chunks_of(size, chunk)))]

    def events_from(self, position: int, count: int) -> list[Event]:
        with self._connection() as conn:
            return conn.execute(f"SELECT rowid, unhex(originator_id), originator_version, topic, state "
                                f"FROM {self.events} WHERE rowid >= ? ORDER BY rowid LIMIT ?",
                                (position, count)).fetchall()

    def checkpoints(self) -> list[dict[str, Any]]:
        with self._connection() as conn:
            self._create_checkpoints(conn)
            return [json.loads(row[0]) for row in
                    conn.execute(f"SELECT document FROM {self.checkpoints_table} ORDER BY size, timestamp")]

    @contextmanager
    def loader(self) -> Iterator[Loader]:
        with self._connection() as conn:
            self._create_checkpoints(conn)
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SQLiteLoader(self, conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def adopt(self, after: int, head: bytes) -> int:
        count = 0
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                _same_head(conn.execute(f"SELECT position, hash FROM {self.chain} ORDER BY position DESC LIMIT 1")
                           .fetchone(), after, head)
                cursor = conn.execute(f"SELECT rowid, unhex(originator_id), originator_version, topic, state "
                                      f"FROM {self.events} WHERE rowid > ? ORDER BY rowid", (after,))
                while rows := cursor.fetchmany(5000):
                    chained = extend_rows(head, rows)
                    conn.executemany(f"INSERT INTO {self.chain} VALUES (?,?)", chained)
                    head, count = chained[-1][1], count + len(chained)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return count


class _SQLiteLoader:
    def __init__(self, log: SQLiteLog, conn: sqlite3.Connection) -> None:
        self.log, self.conn = log, conn

    def events(self, rows: list[EventRow], hashes: list[bytes]) -> None:
        self.conn.executemany(f"INSERT INTO {self.log.events} (rowid, originator_id, originator_version, "
                              "topic, state) VALUES (?,?,?,?,?)",
                              [(p, UUID(o).hex, v, t, s) for p, o, v, t, s in rows])
        self.conn.executemany(f"INSERT INTO {self.log.chain} VALUES (?,?)",
                              zip([row[0] for row in rows], hashes, strict=True))

    def commands(self, rows: list[dict[str, Any]]) -> None:
        self.conn.executemany(f"INSERT INTO {self.log.commands} VALUES (?,?,?,?,?,?)",
                              [_command_tuple(row) for row in rows])

    def checkpoints(self, documents: list[dict[str, Any]]) -> None:
        self.conn.executemany(f"INSERT INTO {self.log.checkpoints_table} VALUES (?,?,?,?,?,?)",
                              [(*[d[c] for c in CHECKPOINT_COLUMNS], json.dumps(d)) for d in documents])


# --- PostgreSQL -----------------------------------------------------------------------------------


class PostgresLog:
    kind = "postgresql"

    def __init__(self, recorder: PostgresLedgerRecorder) -> None:
        self.recorder = recorder
        self.datastore = recorder.datastore
        schema = Identifier(self.datastore.schema)
        events = recorder.events_table_name
        self.names = {"schema": schema, "events": Identifier(events), "chain": Identifier(recorder.chain.table),
                      "commands": Identifier(recorder.commands_table),
                      "checkpoints": Identifier(events.replace("_events", "_checkpoints")),
                      "chunks": Identifier(events.replace("_events", "_chunks"))}
        self.events_name = f"{self.datastore.schema}.{events}"

    def _sql(self, text: str) -> Any:
        return SQL(text).format(**self.names)  # type: ignore[arg-type]

    @contextmanager
    def _snapshot(self) -> Iterator[Any]:
        with self.datastore.get_connection() as conn, conn.transaction(force_rollback=True):
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            # the walk does its hashing between fetches: more than the pool's 5 s idle limit at worst
            conn.execute("SET LOCAL idle_in_transaction_session_timeout = '120s'")
            yield conn

    def _stream(self, query: Any, page: int, params: tuple[Any, ...] = ()) -> Generator[list[Any], None, None]:
        with self._snapshot() as conn, conn.cursor("log_walk", row_factory=tuple_row, binary=True) as cursor:
            cursor.itersize = page
            cursor.execute(query, params or None)
            while rows := cursor.fetchmany(page):
                yield rows

    def pages(self, page: int, after: int = 0) -> Generator[list[Row], None, None]:
        yield from self._stream(self._sql(
            "SELECT e.notification_id, uuid_send(e.originator_id), e.originator_version, e.topic, e.state, "
            "c.hash FROM {schema}.{events} e LEFT JOIN {schema}.{chain} c ON c.position = e.notification_id "
            "WHERE e.notification_id > %s ORDER BY e.notification_id"), page, (after,))

    def raw_pages(self, page: int) -> Generator[list[Any], None, None]:
        yield from self._stream(self._sql(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {schema}.{events} ORDER BY notification_id"), page)

    def _one(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(self._sql(query), params)
            row = cursor.fetchone()
            return row[0] if row else None

    def first_orphan(self, after: int, before: int | None) -> int | None:
        return self._one("SELECT min(c.position) FROM {schema}.{chain} c WHERE c.position > %s "
                         "AND c.position < %s AND NOT EXISTS (SELECT 1 FROM {schema}.{events} e "
                         "WHERE e.notification_id = c.position)",
                         (after, before if before is not None else 2**63 - 1))

    def chain_rows_upto(self, position: int) -> int:
        return self._one("SELECT count(*) FROM {schema}.{chain} WHERE position <= %s", (position,))

    def chain_before(self, position: int) -> bytes | None:
        found = self._one("SELECT hash FROM {schema}.{chain} WHERE position < %s ORDER BY position DESC LIMIT 1",
                          (position,))
        return bytes(found) if found is not None else None

    def is_empty(self) -> bool:
        return not self._one("SELECT EXISTS (SELECT 1 FROM {schema}.{events}) OR EXISTS "
                             "(SELECT 1 FROM {schema}.{chain}) OR EXISTS (SELECT 1 FROM {schema}.{commands})")

    def command_rows(self) -> Iterator[dict[str, Any]]:
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(self._sql("SELECT command_id, type, fingerprint, target, position, answer "
                                     "FROM {schema}.{commands} ORDER BY position, command_id"))
            rows = cursor.fetchall()
        for row in rows:
            yield _command_dict(row)

    def _create_checkpoints(self, conn: Any) -> None:
        with conn.transaction():  # (the pool's connections are in autocommit)
            serialize_ddl(conn, self.datastore.schema)
            conn.execute(self._sql("CREATE TABLE IF NOT EXISTS {schema}.{checkpoints} (size bigint NOT NULL, "
                                   "head_position bigint NOT NULL, root text NOT NULL, timestamp text NOT NULL, "
                                   "key_id text NOT NULL, document text NOT NULL)"))
            conn.execute(self._sql("CREATE TABLE IF NOT EXISTS {schema}.{chunks} (start bigint NOT NULL, "
                                   "leaves integer NOT NULL, first_position bigint NOT NULL, root bytea NOT NULL, "
                                   "PRIMARY KEY (start, leaves))"))

    def record_checkpoint(self, document: dict[str, Any], chunks: Sequence[Chunk] = ()) -> None:
        with self.datastore.get_connection() as conn:
            self._create_checkpoints(conn)
            with conn.transaction(), conn.cursor() as cursor:
                cursor.execute(self._sql("INSERT INTO {schema}.{checkpoints} VALUES (%s,%s,%s,%s,%s,%s)"),
                               (*[document[c] for c in CHECKPOINT_COLUMNS], json.dumps(document)))
                if chunks:
                    cursor.execute(self._sql(
                        "INSERT INTO {schema}.{chunks} SELECT * FROM unnest(%b::bigint[], %b::integer[], "
                        "%b::bigint[], %b::bytea[]) ON CONFLICT (start, leaves) DO UPDATE SET "
                        "first_position = excluded.first_position, root = excluded.root"),
                        [list(column) for column in zip(*chunks, strict=True)])

    def chunks(self, size: int, chunk: int) -> list[Chunk]:
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cursor:
            self._create_checkpoints(conn)
            cursor.execute(self._sql("SELECT start, leaves, first_position, root FROM {schema}.{chunks} "
                                     "WHERE (leaves = %s AND start + leaves <= %s) OR (start = %s AND leaves = %s) "
                                     "ORDER BY start"), (chunk, size, *_chunks_of(size, chunk)))
            return [Chunk(start, leaves, first, bytes(root)) for start, leaves, first, root in cursor.fetchall()]

    def events_from(self, position: int, count: int) -> list[Event]:
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row, binary=True) as cursor:
            cursor.execute(self._sql("SELECT notification_id, uuid_send(originator_id), originator_version, topic, "
                                     "state FROM {schema}.{events} WHERE notification_id >= %s "
                                     "ORDER BY notification_id LIMIT %s"), (position, count))
            return [(p, bytes(o), v, t, bytes(s)) for p, o, v, t, s in cursor.fetchall()]

    def checkpoints(self) -> list[dict[str, Any]]:
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cursor:
            self._create_checkpoints(conn)
            cursor.execute(self._sql("SELECT document FROM {schema}.{checkpoints} ORDER BY size, timestamp"))
            return [json.loads(row[0]) for row in cursor.fetchall()]

    @contextmanager
    def loader(self) -> Iterator[Loader]:
        with self.datastore.get_connection() as conn:
            self._create_checkpoints(conn)
            with conn.transaction():
                conn.execute("SET LOCAL idle_in_transaction_session_timeout = '120s'")
                conn.execute(self._sql("LOCK TABLE {schema}.{events} IN EXCLUSIVE MODE"))
                yield _PostgresLoader(self, conn)
                # positions were given explicitly: the next insert must not reuse one
                conn.execute(self._sql("SELECT setval(pg_get_serial_sequence(%s, 'notification_id'), "
                                       "coalesce((SELECT max(notification_id) FROM {schema}.{events}), 0) + 1, "
                                       "false)"), (self.events_name,))

    def adopt(self, after: int, head: bytes) -> int:
        count = 0
        with self.datastore.get_connection() as conn, conn.transaction():
            conn.execute("SET LOCAL idle_in_transaction_session_timeout = '120s'")
            conn.execute(self._sql("LOCK TABLE {schema}.{events} IN EXCLUSIVE MODE"))
            with conn.cursor(row_factory=tuple_row) as cursor:
                cursor.execute(self._sql("SELECT position, hash FROM {schema}.{chain} ORDER BY position DESC LIMIT 1"))
                _same_head(cursor.fetchone(), after, head)
            with conn.cursor("adopt", row_factory=tuple_row, binary=True) as reader, conn.cursor() as writer:
                reader.execute(self._sql("SELECT notification_id, uuid_send(originator_id), originator_version, "
                                         "topic, state FROM {schema}.{events} WHERE notification_id > %s "
                                         "ORDER BY notification_id"), (after,))
                while rows := reader.fetchmany(5000):
                    chained = extend_rows(head, rows)
                    writer.execute(self._sql("INSERT INTO {schema}.{chain} (position, hash) "
                                             "SELECT * FROM unnest(%b::bigint[], %b::bytea[])"),
                                   ([p for p, _ in chained], [h for _, h in chained]))
                    head, count = chained[-1][1], count + len(chained)
        return count


class _PostgresLoader:
    def __init__(self, log: PostgresLog, conn: Any) -> None:
        self.log, self.conn = log, conn

    def events(self, rows: list[EventRow], hashes: list[bytes]) -> None:
        positions, ids, versions, topics, states = (list(column) for column in zip(*rows, strict=True))
        self.conn.execute(self.log._sql(
            "INSERT INTO {schema}.{events} (notification_id, originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::bigint[], %b::uuid[], %b::bigint[], %b::text[], %b::bytea[])"),
            (positions, [UUID(i) for i in ids], versions, topics, states))
        self.conn.execute(self.log._sql("INSERT INTO {schema}.{chain} (position, hash) "
                                        "SELECT * FROM unnest(%b::bigint[], %b::bytea[])"), (positions, hashes))

    def commands(self, rows: list[dict[str, Any]]) -> None:
        columns = [list(column) for column in zip(*(_command_tuple(row) for row in rows), strict=True)]
        self.conn.execute(self.log.recorder.insert_commands_statement, columns)

    def checkpoints(self, documents: list[dict[str, Any]]) -> None:
        with self.conn.cursor() as cursor:
            cursor.executemany(self.log._sql("INSERT INTO {schema}.{checkpoints} VALUES (%s,%s,%s,%s,%s,%s)"),
                               [(*[d[c] for c in CHECKPOINT_COLUMNS], json.dumps(d)) for d in documents])


# --- memory ---------------------------------------------------------------------------------------


class MemoryLog:
    kind = "memory"

    def __init__(self, recorder: MemoryLedgerRecorder) -> None:
        self.recorder = recorder
        if not hasattr(recorder, "checkpoint_documents"):
            recorder.checkpoint_documents = []  # type: ignore[attr-defined]
            recorder.chunk_rows = {}  # type: ignore[attr-defined]

    def _events(self) -> list[tuple[int, Any]]:
        with self.recorder._database_lock:
            return list(enumerate(self.recorder._stored_events, start=1))

    def pages(self, page: int, after: int = 0) -> Generator[list[Row], None, None]:
        chain = dict(self.recorder.chain.rows)
        rows = [(p, oid_bytes(e.originator_id), e.originator_version, e.topic, e.state, chain.get(p))
                for p, e in self._events() if p > after]
        for start in range(0, len(rows), page):
            yield rows[start:start + page]

    def raw_pages(self, page: int) -> Generator[list[Any], None, None]:
        rows = self._events()
        for start in range(0, len(rows), page):
            yield rows[start:start + page]

    def first_orphan(self, after: int, before: int | None) -> int | None:
        count = len(self.recorder._stored_events)
        orphans = [p for p, _ in self.recorder.chain.rows
                   if p > after and (before is None or p < before) and p > count]
        return min(orphans, default=None)

    def chain_rows_upto(self, position: int) -> int:
        return sum(1 for p, _ in self.recorder.chain.rows if p <= position)

    def chain_before(self, position: int) -> bytes | None:
        return max(((p, h) for p, h in self.recorder.chain.rows if p < position), default=(0, None))[1]

    def is_empty(self) -> bool:
        return not (self.recorder._stored_events or self.recorder.chain.rows or self.recorder.commands)

    def command_rows(self) -> Iterator[dict[str, Any]]:
        for row in sorted(self.recorder.commands.values(), key=lambda r: (r["position"], r["command_id"])):
            yield {**row, "answer": json.dumps(row["answer"], ensure_ascii=False)}

    def record_checkpoint(self, document: dict[str, Any], chunks: Sequence[Chunk] = ()) -> None:
        with self.recorder._database_lock:
            self.recorder.checkpoint_documents.append(document)  # type: ignore[attr-defined]
            self.recorder.chunk_rows.update({(c.start, c.leaves): c for c in chunks})  # type: ignore[attr-defined]

    def chunks(self, size: int, chunk: int) -> list[Chunk]:
        last = _chunks_of(size, chunk)
        rows = self.recorder.chunk_rows  # type: ignore[attr-defined]
        return sorted(c for key, c in rows.items() if (c.leaves == chunk and c.start + c.leaves <= size) or key == last)

    def events_from(self, position: int, count: int) -> list[Event]:
        first = max(position, 1)
        with self.recorder._database_lock:
            events = self.recorder._stored_events[first - 1:first - 1 + count]
        return [(p, oid_bytes(e.originator_id), e.originator_version, e.topic, e.state)
                for p, e in enumerate(events, start=first)]

    def checkpoints(self) -> list[dict[str, Any]]:
        return sorted(self.recorder.checkpoint_documents,  # type: ignore[attr-defined]
                      key=lambda d: (d["size"], d["timestamp"]))

    @contextmanager
    def loader(self) -> Iterator[Loader]:
        with self.recorder._database_lock:
            yield _MemoryLoader(self.recorder)

    def adopt(self, after: int, head: bytes) -> int:
        with self.recorder._database_lock:
            rows = self.recorder.chain.rows
            _same_head(rows[-1] if rows else None, after, head)
            chained = extend_rows(head, [(p, oid_bytes(e.originator_id), e.originator_version, e.topic, e.state)
                                         for p, e in enumerate(self.recorder._stored_events, start=1) if p > after])
            rows.extend(chained)
            return len(chained)


class _MemoryLoader:
    def __init__(self, recorder: MemoryLedgerRecorder) -> None:
        self.recorder = recorder

    def events(self, rows: list[EventRow], hashes: list[bytes]) -> None:
        from eventsourcing.persistence import StoredEvent

        recorder = self.recorder
        for (position, oid, version, topic, state), digest in zip(rows, hashes, strict=True):
            if position != len(recorder._stored_events) + 1:
                raise ValueError(f"the memory store numbers events 1, 2, 3…: cannot restore position {position}")
            event = StoredEvent(originator_id=UUID(oid), originator_version=version, topic=topic, state=state)
            recorder._stored_events.append(event)
            recorder._stored_events_index[str(event.originator_id)][version] = position - 1
            recorder.chain.rows.append((position, digest))

    def commands(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self.recorder.commands[row["command_id"]] = {**row, "answer": json.loads(row["answer"])}

    def checkpoints(self, documents: list[dict[str, Any]]) -> None:
        self.recorder.checkpoint_documents.extend(documents)  # type: ignore[attr-defined]
