"""Where the event log lives: `APPRAISAL_DB` URLs, and the recorders of both stores.

`sqlite:///path.db` (the embedded default) or `postgresql://user:password@host:port/db`
(`?schema=NAME` selects a PostgreSQL schema, created if missing); `memory://` keeps everything
in the process (for fast tests of the domain with real handlers). Every store keeps, beside the
library's events table, a table of accepted command ids written in the same transaction as the
command's events: it makes re-sent commands no-ops and lets later commands find earlier ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import suppress
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    InterfaceError,
    OperationalError,
    StoredEvent,
)
from eventsourcing.popo import POPOApplicationRecorder, POPOFactory
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

from api.chain import MemoryChain, PostgresChain, SQLiteChain

DEFAULT_DB = "sqlite:///./appraisal.db"


class CommandRow(NamedTuple):
    """One accepted command: its id, type, content digest, target and the answer it was given.
    (A tuple: one is made for every imported command, and a tuple is made in C.)"""

    command_id: str
    type: str
    fingerprint: str
    target: str
    event_index: int  # index, in the saved batch, of the command's first event
    answer: dict[str, Any]


def store_env(url: str) -> dict[str, str]:
    """The eventsourcing environment for a database URL."""
    parts = urlsplit(url)
    if parts.scheme == "memory":
        return {"PERSISTENCE_MODULE": f"{__name__}:MemoryFactory"}
    if parts.scheme == "sqlite":
        path = unquote(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else ""
        if not path:
            raise ValueError(f"not a SQLite URL: {url!r} (expected sqlite:///path/to/file.db)")
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": "30",
            "APPLICATION_RECORDER_TOPIC": f"{__name__}:SQLiteLedgerRecorder",
        }
    if parts.scheme in ("postgresql", "postgres"):
        query = parse_qs(parts.query)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
            "POSTGRES_HOST": parts.hostname or "localhost",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_CONNECT_TIMEOUT": "5",
            "POSTGRES_LOCK_TIMEOUT": "10",
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "5",
            "POSTGRES_POOL_SIZE": query.get("pool_size", ["5"])[0],
            "POSTGRES_MAX_OVERFLOW": query.get("max_overflow", ["10"])[0],
            "APPLICATION_RECORDER_TOPIC": f"{__name__}:PostgresLedgerRecorder",
        }
        if "schema" in query:
            env["POSTGRES_SCHEMA"] = query["schema"][0]
        return env
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///…, postgresql://… or memory://")


def ensure_schema(url: str) -> None:
    """Create the PostgreSQL schema named in the URL, if any (the library needs it to exist)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        return
    schema = parse_qs(parts.query).get("schema", [None])[0]
    if not schema:
        return
    import psycopg

    with psycopg.connect(url.split("?", 1)[0], autocommit=True) as conn:
        conn.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(schema)))


_answer_json = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps(..., ensure_ascii=False), made once


def _command_params(stored_ids: Sequence[int], commands: Sequence[CommandRow]) -> list[tuple[Any, ...]]:
    rows = []
    for row in commands:
        position = stored_ids[row.event_index] if stored_ids else None
        answer = {**row.answer, "position": position}
        rows.append((row.command_id, row.type, row.fingerprint, row.target, position, _answer_json(answer)))
    return rows


class SQLiteLedgerRecorder(SQLiteApplicationRecorder):
    def __init__(self, datastore: Any, events_table_name: str = "stored_events") -> None:
        self.commands_table = events_table_name.replace("events", "commands")
        self.chain = SQLiteChain(events_table_name)  # the hash chain (api/chain.py)
        super().__init__(datastore, events_table_name)

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(),
                f"CREATE TABLE IF NOT EXISTS {self.commands_table} ("
                "command_id TEXT PRIMARY KEY, type TEXT NOT NULL, fingerprint TEXT NOT NULL, "
                "target TEXT NOT NULL, position INTEGER, answer TEXT NOT NULL)",
                self.chain.create_statement]

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent],
                       **kwargs: Any) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs) or []
        self.chain.append(c, stored_events, ids)
        commands = kwargs.get("commands") or ()
        if commands:
            c.executemany(f"INSERT INTO {self.commands_table} VALUES (?,?,?,?,?,?)",
                          _command_params(ids, commands))
        return ids

    def select_commands(self, command_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        ids = list(command_ids)
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                c.execute(f"SELECT * FROM {self.commands_table} WHERE command_id IN "
                          f"({','.join('?' * len(chunk))})", chunk)
                for row in c.fetchall():
                    found[row["command_id"]] = _row(row)
        return found


class PostgresLedgerRecorder(PostgresApplicationRecorder):
    """Writes a batch in one transaction with binary COPY: the events (their positions drawn from
    the events' sequence under the table lock, so in commit order as with the library's insert),
    their chain rows and their command rows. (The library's composite-type insert escapes every
    row as text, and arrays of parameters are built in Python: both slow for big batches; COPY
    rows are formatted in C.)"""

    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.commands_table = events_table_name.replace("_events", "_commands")
        schema = Identifier(self.datastore.schema)
        names = {"schema": schema, "events": Identifier(self.events_table_name),
                 "commands": Identifier(self.commands_table)}
        self.sql_create_statements.append(SQL(
            "CREATE TABLE IF NOT EXISTS {schema}.{commands} (command_id text PRIMARY KEY, "
            "type text NOT NULL, fingerprint text NOT NULL, target text NOT NULL, position bigint, "
            "answer text NOT NULL)"
        ).format(**names))
        self.chain = PostgresChain(self.datastore.schema, events_table_name)  # the hash chain (api/chain.py)
        self.sql_create_statements.append(self.chain.create_statement)
        # The batch's positions, drawn from the events' sequence once the table is locked, with
        # the chain's head before the first of them (api/chain.py).
        self.reserve_positions_statement = SQL(
            "WITH drawn AS (SELECT ARRAY(SELECT nextval(pg_get_serial_sequence(%s, 'notification_id')) "
            "FROM generate_series(1, %s)) AS ids) SELECT drawn.ids, head.* FROM drawn, LATERAL ({head}) AS head"
        ).format(head=self.chain.head_query(SQL("(SELECT min(i) FROM unnest(drawn.ids) AS i)")))
        self.events_name = f'"{self.datastore.schema}"."{self.events_table_name}"'
        self.copy_events_statement = SQL(
            "COPY {schema}.{events} (notification_id, originator_id, originator_version, topic, state) "
            "FROM STDIN (FORMAT BINARY)").format(**names)
        self.copy_commands_statement = SQL(
            "COPY {schema}.{commands} (command_id, type, fingerprint, target, position, answer) "
            "FROM STDIN (FORMAT BINARY)").format(**names)
        self.insert_commands_statement = SQL(  # api/logstore.py loads backups with it
            "INSERT INTO {schema}.{commands} SELECT * FROM "
            "unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::bigint[], %b::text[])"
        ).format(**names)
        self.select_commands_statement = SQL(
            "SELECT * FROM {schema}.{commands} WHERE command_id = ANY(%s)"
        ).format(**names)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return super().insert_events(stored_events, **kwargs)
        commands = kwargs.get("commands") or ()
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            try:
                # One round trip opens the transaction, takes the lock and draws the positions
                # (then one per COPY and the commit): on a busy machine each costs a wakeup.
                with conn.pipeline():
                    curs.execute("BEGIN")
                    self._lock_table(curs)
                    self._notify_channel(curs)
                    curs.execute(self.reserve_positions_statement,
                                 (self.events_name, len(stored_events)), prepare=True)
                head = curs.fetchone()
                assert head is not None
                ids = sorted(head["ids"])
                with curs.copy(self.copy_events_statement) as copy:
                    copy.set_types(_EVENT_TYPES)
                    write = copy.write_row
                    for position, event in zip(ids, stored_events, strict=True):
                        write((position, event.originator_id, event.originator_version, event.topic, event.state))
                self.chain.append(curs, stored_events, ids, head)
                if commands:
                    with curs.copy(self.copy_commands_statement) as copy:
                        copy.set_types(_COMMAND_TYPES)
                        write = copy.write_row
                        for row in _command_params(ids, commands):
                            write(row)
                curs.execute("COMMIT")
            except BaseException:
                with suppress(Exception):  # a broken connection: the pool discards it
                    conn.rollback()
                raise
        return ids

    def select_commands(self, command_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_commands_statement, (list(command_ids),))
            return {row["command_id"]: _row(row) for row in curs.fetchall()}


_EVENT_TYPES = ["int8", "uuid", "int8", "text", "bytea"]
_COMMAND_TYPES = ["text", "text", "text", "text", "int8", "text"]


def _row(row: Any) -> dict[str, Any]:
    return {"command_id": row["command_id"], "type": row["type"], "fingerprint": row["fingerprint"],
            "target": row["target"], "position": row["position"], "answer": json.loads(row["answer"])}


class MemoryLedgerRecorder(POPOApplicationRecorder):
    def __init__(self) -> None:
        super().__init__()
        self.commands: dict[str, dict[str, Any]] = {}
        self.chain = MemoryChain()  # the hash chain (api/chain.py)

    def _insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        commands = kwargs.get("commands") or ()
        with self._database_lock:
            if any(row.command_id in self.commands for row in commands):
                raise IntegrityError("command id already recorded")
            self._assert_uniqueness(stored_events, **kwargs)
            last_before = len(self._stored_events) or None
            ids = self._update_table(stored_events, **kwargs) or []
            self.chain.append(stored_events, ids, last_before)
            for params in _command_params(ids, commands):
                command_id, kind, fingerprint, target, position, answer = params
                self.commands[command_id] = {"command_id": command_id, "type": kind, "fingerprint": fingerprint,
                                             "target": target, "position": position, "answer": json.loads(answer)}
            return ids

    def select_commands(self, command_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return {cid: self.commands[cid] for cid in command_ids if cid in self.commands}


class MemoryFactory(POPOFactory):
    def application_recorder(self) -> ApplicationRecorder:
        return MemoryLedgerRecorder()
