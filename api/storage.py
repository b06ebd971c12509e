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
from typing import Any, NamedTuple, cast
from urllib.parse import parse_qs, unquote, urlencode, urlsplit
from uuid import UUID

import orjson
import psycopg
from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    InterfaceError,
    OperationalError,
    StoredEvent,
)
from eventsourcing.popo import POPOApplicationRecorder, POPOFactory
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder, SQLiteApplicationRecorder, SQLiteCursor
from eventsourcing.utils import retry
from psycopg.sql import SQL, Composable, Composed, Identifier, Literal

from api.chain import MemoryChain, PostgresChain, SQLiteChain, _check_head

DEFAULT_DB = "sqlite:///./appraisal.db"
SMALL_BATCH = 16  # events: up to this many go by the PostgreSQL write function, more by COPY


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
            # libpq's own query parameters name a socket directory or port too (?host=/run/pg&port=5433)
            "POSTGRES_HOST": query.get("host", [parts.hostname or "localhost"])[0],
            "POSTGRES_PORT": query.get("port", [str(parts.port or 5432)])[0],
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

    with psycopg.connect(pg_conninfo(url), autocommit=True) as conn:
        conn.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(schema)))


APP_PARAMETERS = ("schema", "pool_size", "max_overflow")  # ours; the rest of a URL's query is libpq's


def serialize_ddl(cursor: Any, schema: str) -> None:
    """Inside a transaction that creates tables in `schema` on PostgreSQL: wait for any other such
    transaction to end first. `CREATE TABLE IF NOT EXISTS` is not safe against a concurrent twin
    (the loser fails on the catalog's unique index), and processes open a new store at the same
    time: `appraisal serve --workers N`, a server beside `appraisal project`."""
    cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"appraisal-ledger ddl {schema}",))


def pg_conninfo(url: str) -> str:
    """A PostgreSQL URL for psycopg: without this application's parameters (`schema`, pool sizes),
    with libpq's (`host`, `port`, `sslmode`, ...)."""
    base, _, query = url.partition("?")
    kept = [(key, value) for key, values in parse_qs(query).items() if key not in APP_PARAMETERS
            for value in values]
    return f"{base}?{urlencode(kept)}" if kept else base


def _answer_json(answer: dict[str, Any]) -> str:
    """A command's answer as stored: compact JSON, UTF-8 as is (the answers of earlier versions,
    written with json.dumps' spaces, read back the same)."""
    return orjson.dumps(answer).decode()


def _command_params(stored_ids: Sequence[int], commands: Sequence[CommandRow]) -> list[tuple[Any, ...]]:
    rows = []
    for row in commands:
        position = stored_ids[row.event_index] if stored_ids else None
        answer = {**row.answer, "position": position}
        rows.append((row.command_id, row.type, row.fingerprint, row.target, position, _answer_json(answer)))
    return rows


STALE_READ = "stale read: an aggregate the decisions read has changed since"


def _read_set(kwargs: dict[str, Any]) -> dict[UUID, int]:
    """The `read` of a write: every aggregate its decisions read or changed, at the version they
    started from (0: it did not exist). The store refuses the write when any has moved on, and a
    refused write leaves no gap in the log's positions (PostgreSQL checks before drawing them;
    SQLite's rollback gives them back)."""
    return kwargs.get("read") or {}


class LocalNewer:
    """`select_newer` of the local stores (SQLite, memory), where a query costs no round trip."""

    def select_newer(self, after: dict[UUID, int], command_ids: Sequence[str]
                     ) -> tuple[dict[UUID, list[StoredEvent]], dict[str, dict[str, Any]]]:
        recorder: Any = self
        events = {}
        for aggregate_id, version in after.items():
            newer = list(recorder.select_events(aggregate_id, gt=version))
            if newer:
                events[aggregate_id] = newer
        return events, recorder.select_commands(command_ids) if command_ids else {}


class SQLiteLedgerRecorder(LocalNewer, SQLiteApplicationRecorder):
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
        ids = self._insert_rows(c, stored_events)
        # The read set, checked once the insert holds the database's write lock (a read first
        # would open a snapshot that a concurrent commit, a projection's, makes unwritable). The
        # transaction's rollback gives back the positions taken: no gap.
        read = _read_set(kwargs)
        if read:
            started = {aggregate_id.hex: version for aggregate_id, version in read.items()}
            for event in stored_events:  # ours, just inserted
                started[cast(UUID, event.originator_id).hex] = event.originator_version
            # One index probe per aggregate ("a version after the one read?"), not its maximum:
            # a grouped max() reads every version of every aggregate, a cost that grew with the log.
            pairs = list(started.items())
            for start in range(0, len(pairs), 500):
                chunk = pairs[start:start + 500]
                c.execute(f"WITH r(id, v) AS (VALUES {','.join(['(?,?)'] * len(chunk))}) SELECT 1 FROM r "
                          f"WHERE EXISTS (SELECT 1 FROM {self.events_table_name} AS e "
                          "WHERE e.originator_id = r.id AND e.originator_version > r.v) LIMIT 1",
                          [value for pair in chunk for value in pair])
                if c.fetchone() is not None:
                    raise IntegrityError(STALE_READ)
        self.chain.append(c, stored_events, ids)
        commands = kwargs.get("commands") or ()
        if commands:
            c.executemany(f"INSERT INTO {self.commands_table} VALUES (?,?,?,?,?,?)",
                          _command_params(ids, commands))
        return ids

    def _insert_rows(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent]) -> list[int]:
        """The events in one `executemany` (the library's aggregate recorder's insert: its
        application recorder runs a statement per event to read each rowid). Their positions
        follow from the last one: the write lock is held from the first row on, and a new rowid is
        one more than the table's largest."""
        if not stored_events:
            return []
        SQLiteAggregateRecorder._insert_events(self, c, stored_events)
        c.execute("SELECT last_insert_rowid()")
        last = c.fetchone()[0]
        return list(range(last - len(stored_events) + 1, last + 1))

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
    rows are formatted in C.) A small batch (up to `SMALL_BATCH` events: single commands over
    HTTP) is written instead by one call of the store's write function: one round trip."""

    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.commands_table = events_table_name.replace("_events", "_commands")
        schema = Identifier(self.datastore.schema)
        # The library's insert and the COPY path take the log's lock as the write function does
        # (`_log_lock`), after the library's lock timeout.
        self.lock_table_statements = [self.lock_table_statements[0], *_log_lock_statements(
            schema=schema, events=Identifier(self.events_table_name))]
        names = {"schema": schema, "events": Identifier(self.events_table_name),
                 "commands": Identifier(self.commands_table)}
        self.sql_create_statements.append(SQL(
            "CREATE TABLE IF NOT EXISTS {schema}.{commands} (command_id text PRIMARY KEY, "
            "type text NOT NULL, fingerprint text NOT NULL, target text NOT NULL, position bigint, "
            "answer text NOT NULL)"
        ).format(**names))
        self.chain = PostgresChain(self.datastore.schema, events_table_name)  # the hash chain (api/chain.py)
        self.sql_create_statements.append(self.chain.create_statement)
        # The batch's positions, drawn from the events' sequence once the log is locked, with the
        # chain's head before the first of them (api/chain.py): the first by nextval, the rest by
        # moving the sequence on past them at once (every writer draws under the log's lock, so
        # no other draw comes between; a nextval per event cost 6 µs each, 3 ms a batch of 500).
        self.reserve_positions_statement = SQL(
            "WITH sequence AS (SELECT pg_get_serial_sequence(%s, 'notification_id') AS name), "
            "first AS (SELECT name, nextval(name) AS id FROM sequence), "
            "drawn AS (SELECT ARRAY(SELECT generate_series(id, setval(name, id + %s - 1))) AS ids FROM first) "
            "SELECT drawn.ids, head.* FROM drawn, LATERAL ({head}) AS head"
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
        # One index range per aggregate (`LATERAL … OFFSET 0` is never flattened into a join: as a
        # join, a prepared statement's generic plan was a merge join walking the whole index).
        self.select_newer_statement = SQL(
            "SELECT e.originator_id, e.originator_version, e.topic, e.state "
            "FROM unnest(%b::uuid[], %b::bigint[]) AS k(id, after) CROSS JOIN LATERAL ("
            "SELECT * FROM {schema}.{events} AS e WHERE e.originator_id = k.id AND e.originator_version > k.after "
            "OFFSET 0) AS e ORDER BY e.originator_id, e.originator_version"
        ).format(**names)
        # Small batches (single commands over HTTP) are written by one call of a function of the
        # store (`_write_function`): one round trip instead of a COPY's several. (v3: planned
        # without sequential scans; v4: checks the read set; v5: checks it by one index probe per
        # aggregate; v6: takes the log's lock as `_log_lock` says. A store made by an earlier
        # version gets v6 beside the old function on its next start.)
        self.write_function = Identifier(f"{events_table_name}_write_v6")
        self.sql_create_statements.append(_write_function(
            schema=schema, function=self.write_function, events=Identifier(self.events_table_name),
            chain=Identifier(self.chain.table), commands=Identifier(self.commands_table),
            channel=Identifier(self.channel_name), lock_timeout=int(self.datastore.lock_timeout)))
        self.write_statement = SQL(
            "SELECT {schema}.{function}(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[], "
            "%b::text[], %b::text[], %b::text[], %b::text[], %b::int[], %b::text[], "
            "%b::text::uuid[], %b::text::bigint[]) AS positions"
        ).format(schema=schema, function=self.write_function).as_bytes(None)
        # One event and its command (most HTTP commands): the same function, called with scalars,
        # which the driver sends much more cheaply than one-element arrays.
        self.write_one_statement = SQL(
            "SELECT {schema}.{function}(ARRAY[%b::uuid], ARRAY[%b::bigint], ARRAY[%b::text], ARRAY[%b::bytea], "
            "ARRAY[%b::text], ARRAY[%b::text], ARRAY[%b::text], ARRAY[%b::text], ARRAY[0], ARRAY[%b::text], "
            "%b::text::uuid[], %b::text::bigint[]) AS positions"
        ).format(schema=schema, function=self.write_function).as_bytes(None)
        # The read set's check in the COPY path (the write function makes the same one).
        self.stale_read_statement = SQL("SELECT EXISTS ({moved}) AS stale").format(
            moved=_moved_on(SQL("%b::text::uuid[]"), SQL("%b::text::bigint[]"), **names))

    def create_table(self) -> None:
        """The library's `create_table` (types, then tables, functions and indexes), in one
        transaction serialised against other processes creating the same store (`serialize_ddl`):
        a type that is already there is skipped inside a savepoint."""
        with self.datastore.transaction(commit=True) as curs:
            serialize_ddl(curs, self.datastore.schema)
            for statement in self.sql_create_statements:
                if "CREATE TYPE" in statement.as_string():
                    with suppress(psycopg.errors.DuplicateObject), curs.connection.transaction():
                        curs.execute(statement, prepare=False)
            self._create_table(curs)
        self.datastore.register_type_adapters()

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return super().insert_events(stored_events, **kwargs)
        commands = kwargs.get("commands") or ()
        if len(stored_events) <= SMALL_BATCH:
            return self._call_write_function(stored_events, commands, _read_set(kwargs))
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            try:
                # One round trip opens the transaction, takes the lock and draws the positions
                # (then one per COPY and the commit): on a busy machine each costs a wakeup.
                # (With a read set, it is checked before any position is drawn: a refused write
                # leaves no gap in the log.)
                read = _read_set(kwargs)
                with conn.pipeline():
                    curs.execute("BEGIN")
                    self._lock_table(curs)
                    self._notify_channel(curs)
                    if read:
                        curs.execute(self.stale_read_statement, _array_literals(read))
                    else:
                        curs.execute(self.reserve_positions_statement,
                                     (self.events_name, len(stored_events)), prepare=True)
                if read:
                    stale = curs.fetchone()
                    if stale is None or stale["stale"]:
                        raise IntegrityError(STALE_READ)
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

    def _call_write_function(self, stored_events: Sequence[StoredEvent], commands: Sequence[CommandRow],
                             read: dict[UUID, int]) -> list[int]:
        """One statement, one round trip, one transaction: the write function locks the log,
        checks the chain's head and the read set, inserts the events, chains them and records the
        commands."""
        statement, params = self._write_call(stored_events, commands, read)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            try:
                curs.execute(statement, params, prepare=True)
            except psycopg.errors.RaiseException as error:
                _check_refusal(error)
                raise
            result = curs.fetchone()
        assert result is not None
        return list(result["positions"])

    def _write_call(self, stored_events: Sequence[StoredEvent], commands: Sequence[CommandRow],
                    read: dict[UUID, int]) -> tuple[bytes, tuple[Any, ...]]:
        """The write function's statement and parameters for a batch."""
        if len(stored_events) == 1 and len(commands) == 1:
            (event,), (row,) = stored_events, commands
            statement = self.write_one_statement
            params: tuple[Any, ...] = (
                event.originator_id, event.originator_version, event.topic, event.state, row.command_id,
                row.type, row.fingerprint, row.target, _answer_prefix(row.answer), *_array_literals(read))
        else:
            statement = self.write_statement
            params = (
                [e.originator_id for e in stored_events], [e.originator_version for e in stored_events],
                [e.topic for e in stored_events], [e.state for e in stored_events],
                [row.command_id for row in commands], [row.type for row in commands],
                [row.fingerprint for row in commands], [row.target for row in commands],
                [row.event_index for row in commands], [_answer_prefix(row.answer) for row in commands],
                *_array_literals(read),
            )
        return statement, params

    def select_newer(self, after: dict[UUID, int], command_ids: Sequence[str]
                     ) -> tuple[dict[UUID, list[StoredEvent]], dict[str, dict[str, Any]]]:
        """In one round trip: the events of several aggregates after the given versions (in
        version order, by aggregate: only those that have any), and the rows of the given command ids."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs, conn.cursor() as found:
            if command_ids:
                with conn.pipeline() as pipeline:
                    curs.execute(self.select_newer_statement, (list(after), list(after.values())), prepare=True)
                    found.execute(self.select_commands_statement, (list(command_ids),), prepare=True)
                    pipeline.sync()
                    rows, commands = curs.fetchall(), {row["command_id"]: _row(row) for row in found.fetchall()}
            else:
                curs.execute(self.select_newer_statement, (list(after), list(after.values())), prepare=True)
                rows, commands = curs.fetchall(), {}
        events: dict[UUID, list[StoredEvent]] = {}
        for row in rows:
            events.setdefault(row["originator_id"], []).append(StoredEvent(
                originator_id=row["originator_id"], originator_version=row["originator_version"],
                topic=row["topic"], state=bytes(row["state"])))
        return events, commands

    def select_commands(self, command_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_commands_statement, (list(command_ids),))
            return {row["command_id"]: _row(row) for row in curs.fetchall()}


_EVENT_TYPES = ["int8", "uuid", "int8", "text", "bytea"]
_COMMAND_TYPES = ["text", "text", "text", "text", "int8", "text"]


def _log_lock(*, schema: Composable, events: Composable) -> Composed:
    """The log's write lock: every writer of the events takes it, and holds it until it commits,
    so that positions are given in commit order (a reader never passes a position that a later
    commit fills in).

    The events table in ROW EXCLUSIVE mode (an INSERT's own lock) and an advisory lock of the
    table: writers queue on the advisory lock, and an EXCLUSIVE lock of the table (the library's
    way, a backup being loaded, a server of an earlier version) still excludes them all. Not the
    table's EXCLUSIVE lock itself: autovacuum's SHARE UPDATE EXCLUSIVE lock conflicts with it, and
    every vacuum of the growing events table (about every minute under a steady load) held every
    write back for as long as it ran (tens of milliseconds each time)."""
    return SQL("; ").join(_log_lock_statements(schema=schema, events=events, call="PERFORM"))


def _log_lock_statements(*, schema: Composable, events: Composable, call: str = "SELECT") -> list[Composed]:
    """`_log_lock` as two statements (`call`: SELECT, or PL/pgSQL's PERFORM)."""
    return [SQL("LOCK TABLE {schema}.{events} IN ROW EXCLUSIVE MODE").format(schema=schema, events=events),
            SQL("{call} pg_advisory_xact_lock({space}, '{schema}.{events}'::regclass::oid::int)").format(
                schema=schema, events=events, call=SQL(call), space=LOG_LOCK_SPACE)]


# The first key of the log's advisory lock (the second is the events table's oid); two-key advisory
# locks never meet the one-key ones (`serialize_ddl`).
LOG_LOCK_SPACE = Literal(0x4C4F47)


def _check_refusal(error: psycopg.errors.RaiseException) -> None:
    """The write function refused a write because the chain's head is not the last event: say
    which (`_check_head` raises); any other refusal is the caller's to raise."""
    if error.diag.message_primary == "chain-broken":
        chain_position, last_event = (int(x) or None for x in (error.diag.message_detail or "0 0").split())
        _check_head(chain_position, last_event, (last_event or 0) + 1)


def _moved_on(ids: Composable, versions: Composable, **names: Any) -> Composed:
    """An event of a read set's aggregates (`ids`, `versions`: SQL arrays) after the version read,
    for each aggregate that has one: the write is refused when there is any (the write function
    and the COPY path).

    One index probe per aggregate, under the log's lock: `LATERAL … LIMIT 1` is never flattened
    into a join. (As a plain join, the generic plan PostgreSQL keeps for a prepared statement or a
    function's statement was a merge join reading the events' whole primary-key index: every write
    cost time in proportion to the size of the log.)"""
    return SQL("SELECT 1 FROM unnest({ids}, {versions}) AS r(id, seen) CROSS JOIN LATERAL ("
               "SELECT 1 FROM {schema}.{events} AS e WHERE e.originator_id = r.id AND e.originator_version > r.seen "
               "LIMIT 1) AS later").format(
        ids=ids, versions=versions, schema=names["schema"], events=names["events"])


def _array_literals(read: dict[UUID, int]) -> tuple[str, str]:
    """A read set as two array literals (`{id,...}`, `{version,...}`): uuids and integers need no
    quoting, and a string is sent far more cheaply than a list the driver dumps element by element."""
    return "{" + ",".join(map(str, read)) + "}", "{" + ",".join(map(str, read.values())) + "}"


def _answer_prefix(answer: dict[str, Any]) -> str:
    """A command's answer as JSON, open at its end for the log position the write function adds:
    `_command_params`' text exactly, once the position and "}" are appended."""
    text = _answer_json({key: value for key, value in answer.items() if key != "position"})
    return text[:-1] + ("," if text != "{}" else "") + '"position":'


def _write_function(**names: Any) -> Composed:
    """The PostgreSQL write function: one call per batch, in one transaction. Under the log's lock
    (`_log_lock`, so that positions are given in commit order) it checks that the chain's head is
    the last event, inserts the events, extends the hash chain exactly as `api.chain.extend` does
    (leaf = SHA-256(0x00 || canonical(e)), hash_n = SHA-256(hash_{n-1} || leaf_n)), and records the
    command rows with their log positions.
    Created once per schema (concurrent starts race harmlessly).

    It is planned with `enable_seqscan = off`. Its statements are planned once per session and
    kept: planned while a new store's tables are small, the command-id check became a sequential
    scan of the commands table and stayed one as the table grew (about 1 ms per call after a few
    thousand commands, with the log locked meanwhile). Every statement here has an index to use."""
    body = SQL("""
DECLARE
    last_event bigint;
    head_position bigint;
    head bytea;
    positions bigint[];
    hashes bytea[];
    topic bytea;
BEGIN
    SET LOCAL lock_timeout = '{lock_timeout}s';
    {log_lock};
    NOTIFY {channel};
    SELECT max(notification_id) INTO last_event FROM {schema}.{events};
    SELECT position, hash INTO head_position, head FROM {schema}.{chain} ORDER BY position DESC LIMIT 1;
    IF head_position IS DISTINCT FROM last_event THEN
        RAISE EXCEPTION 'chain-broken' USING DETAIL =
            coalesce(head_position, 0)::text || ' ' || coalesce(last_event, 0)::text;
    END IF;
    -- The decisions' read set: refused when an aggregate they read has moved on since.
    IF EXISTS ({moved}) THEN
        RAISE EXCEPTION '{stale}' USING ERRCODE = 'unique_violation';
    END IF;
    -- A re-sent command id is refused before the insert takes positions (no gap in the log).
    IF EXISTS (SELECT 1 FROM {schema}.{commands} WHERE command_id = ANY(c_ids)) THEN
        RAISE EXCEPTION 'command id already recorded' USING ERRCODE = 'unique_violation';
    END IF;
    WITH inserted AS (
        INSERT INTO {schema}.{events} (originator_id, originator_version, topic, state)
        SELECT * FROM unnest(e_ids, e_versions, e_topics, e_states)
        RETURNING notification_id)
    SELECT array_agg(notification_id ORDER BY notification_id) INTO positions FROM inserted;
    head := coalesce(head, decode(repeat('00', 32), 'hex'));
    hashes := array_fill(NULL::bytea, ARRAY[array_length(positions, 1)]);
    FOR i IN 1 .. array_length(positions, 1) LOOP
        topic := convert_to(e_topics[i], 'UTF8');
        head := sha256(head || sha256(
            decode('00', 'hex') || int8send(positions[i]) || int4send(16) || uuid_send(e_ids[i])
            || int8send(e_versions[i]) || int4send(length(topic)) || topic
            || int4send(length(e_states[i])) || e_states[i]));
        hashes[i] := head;
    END LOOP;
    INSERT INTO {schema}.{chain} (position, hash) SELECT * FROM unnest(positions, hashes);
    INSERT INTO {schema}.{commands} (command_id, type, fingerprint, target, position, answer)
    SELECT c.id, c.kind, c.print, c.target, positions[c.first + 1],
           c.answer || positions[c.first + 1]::text || chr(125)
    FROM unnest(c_ids, c_types, c_prints, c_targets, c_firsts, c_answers)
         AS c(id, kind, print, target, first, answer);
    RETURN positions;
END""").format(stale=SQL(STALE_READ), moved=_moved_on(SQL("r_ids"), SQL("r_versions"), **names),
                log_lock=_log_lock(schema=names["schema"], events=names["events"]), **names)
    return SQL(
        "DO $do$ BEGIN "
        "CREATE FUNCTION {schema}.{function}(e_ids uuid[], e_versions bigint[], e_topics text[], "
        "e_states bytea[], c_ids text[], c_types text[], c_prints text[], c_targets text[], c_firsts int[], "
        "c_answers text[], r_ids uuid[], r_versions bigint[]) RETURNS bigint[] LANGUAGE plpgsql "
        "SET enable_seqscan = off AS $fn${body}$fn$; "
        "EXCEPTION WHEN duplicate_function OR unique_violation THEN NULL; END $do$"
    ).format(schema=names["schema"], function=names["function"], body=body)


def _row(row: Any) -> dict[str, Any]:
    return {"command_id": row["command_id"], "type": row["type"], "fingerprint": row["fingerprint"],
            "target": row["target"], "position": row["position"], "answer": json.loads(row["answer"])}


class MemoryLedgerRecorder(LocalNewer, POPOApplicationRecorder):
    def __init__(self) -> None:
        super().__init__()
        self.commands: dict[str, dict[str, Any]] = {}
        self.chain = MemoryChain()  # the hash chain (api/chain.py)

    def _insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        commands = kwargs.get("commands") or ()
        with self._database_lock:
            if any(row.command_id in self.commands for row in commands):
                raise IntegrityError("command id already recorded")
            for aggregate_id, version in _read_set(kwargs).items():
                if max(self._stored_events_index.get(str(aggregate_id)) or [0]) > version:
                    raise IntegrityError(STALE_READ)
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
