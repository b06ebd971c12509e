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
    StoredEvent,
)
from eventsourcing.popo import POPOApplicationRecorder, POPOFactory
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder, SQLiteApplicationRecorder, SQLiteCursor
from psycopg.sql import SQL, Composable, Composed, Identifier, Literal

from api.store.chain import MemoryChain, PostgresChain, SQLiteChain

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


# SQLite copies the write-ahead log back into the database file once it holds this many pages
# (4 KiB each; SQLite's default is 1,000). A batch of commands writes about 500 pages, most of them
# at random places in the indexes of aggregate and command ids, and the copy rewrites them all: at
# the default, year ten's import of a 3,000-person office cost 1.31× year one's CPU, against 1.13–1.18×
# (issue 19, scripts/BENCHMARKS.md "years"). Each page is copied once however often it was written
# meanwhile. The log stays as durable: a commit is in the write-ahead log when it returns.
WAL_PAGES = 10_000


def wal_pages(conn: Any) -> None:
    """Set `WAL_PAGES` on a SQLite connection (a connection's own setting, for its commits)."""
    conn.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")


class SQLiteLedgerRecorder(LocalNewer, SQLiteApplicationRecorder):
    def __init__(self, datastore: Any, events_table_name: str = "stored_events") -> None:
        self.commands_table = events_table_name.replace("events", "commands")
        self.chain = SQLiteChain(events_table_name)  # the hash chain (api/store/chain.py)
        create = datastore.pool._create_connection  # the library's; every connection gets `WAL_PAGES`

        def created() -> Any:
            connection = create()
            wal_pages(connection._sqlite_conn)
            return connection

        datastore.pool._create_connection = created
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
    rows are formatted in C.) Every write goes this way, a single command's as an import's batch.
    (Stores made before issue 16 also hold a PL/pgSQL write function, `<events>_write_vN`, that
    chained single commands in SQL over the same bytes; nothing calls it any more, and it is left
    in place: a server of an earlier version still running beside this one may call it.)"""

    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.commands_table = events_table_name.replace("_events", "_commands")
        schema = Identifier(self.datastore.schema)
        # The COPY path (and the library's insert) take the log's lock (`_log_lock_statements`),
        # after the library's lock timeout.
        self.lock_table_statements = [self.lock_table_statements[0], *_log_lock_statements(
            schema=schema, events=Identifier(self.events_table_name))]
        names = {"schema": schema, "events": Identifier(self.events_table_name),
                 "commands": Identifier(self.commands_table)}
        self.sql_create_statements.append(SQL(
            "CREATE TABLE IF NOT EXISTS {schema}.{commands} (command_id text PRIMARY KEY, "
            "type text NOT NULL, fingerprint text NOT NULL, target text NOT NULL, position bigint, "
            "answer text NOT NULL)"
        ).format(**names))
        self.chain = PostgresChain(self.datastore.schema, events_table_name)  # the hash chain (api/store/chain.py)
        self.sql_create_statements.append(self.chain.create_statement)
        # The batch's positions, drawn from the events' sequence once the log is locked, with the
        # chain's head before the first of them (api/store/chain.py): the first by nextval, the rest by
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
        self.insert_commands_statement = SQL(  # api/store/logstore.py loads backups with it
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
        # Before any position is drawn (a refused write leaves no gap in the log): the read set's
        # check, and whether a command id is already recorded (a re-sent command).
        self.stale_read_statement = SQL(
            "SELECT EXISTS ({moved}) AS stale, "
            "EXISTS (SELECT 1 FROM {schema}.{commands} WHERE command_id = ANY(%s::text[])) AS resent"
        ).format(moved=_moved_on(SQL("%b::text::uuid[]"), SQL("%b::text::bigint[]"), **names), **names)

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

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return super().insert_events(stored_events, **kwargs)
        commands = kwargs.get("commands") or ()
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            try:
                # One round trip opens the transaction, takes the lock and checks the read set and
                # the command ids; one more draws the positions (then one per COPY and the commit).
                # A refused write has drawn no position: it leaves no gap in the log.
                read = _read_set(kwargs)
                with conn.pipeline():
                    curs.execute("BEGIN")
                    self._lock_table(curs)
                    self._notify_channel(curs)
                    curs.execute(self.stale_read_statement,
                                 (*_array_literals(read), _text_array([row.command_id for row in commands])))
                check = curs.fetchone()
                if check is None or check["stale"]:
                    raise IntegrityError(STALE_READ)
                if check["resent"]:
                    raise IntegrityError("command id already recorded")
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


def _log_lock_statements(*, schema: Composable, events: Composable) -> list[Composed]:
    """The log's write lock: every writer of the events takes it, and holds it until it commits,
    so that positions are given in commit order (a reader never passes a position that a later
    commit fills in).

    The events table in ROW EXCLUSIVE mode (an INSERT's own lock) and an advisory lock of the
    table: writers queue on the advisory lock, and an EXCLUSIVE lock of the table (the library's
    way, a backup being loaded, a server of an earlier version) still excludes them all. Not the
    table's EXCLUSIVE lock itself: autovacuum's SHARE UPDATE EXCLUSIVE lock conflicts with it, and
    every vacuum of the growing events table (about every minute under a steady load) held every
    write back for as long as it ran (tens of milliseconds each time)."""
    return [SQL("LOCK TABLE {schema}.{events} IN ROW EXCLUSIVE MODE").format(schema=schema, events=events),
            SQL("SELECT pg_advisory_xact_lock({space}, '{schema}.{events}'::regclass::oid::int)").format(
                schema=schema, events=events, space=LOG_LOCK_SPACE)]


# The first key of the log's advisory lock (the second is the events table's oid); two-key advisory
# locks never meet the one-key ones (`serialize_ddl`).
LOG_LOCK_SPACE = Literal(0x4C4F47)


def _moved_on(ids: Composable, versions: Composable, **names: Any) -> Composed:
    """An event of a read set's aggregates (`ids`, `versions`: SQL arrays) after the version read,
    for each aggregate that has one: the write is refused when there is any.

    One index probe per aggregate, under the log's lock: `LATERAL … LIMIT 1` is never flattened
    into a join. (As a plain join, the generic plan PostgreSQL keeps for a prepared statement was
    a merge join reading the events' whole primary-key index: every write cost time in proportion
    to the size of the log.)"""
    return SQL("SELECT 1 FROM unnest({ids}, {versions}) AS r(id, seen) CROSS JOIN LATERAL ("
               "SELECT 1 FROM {schema}.{events} AS e WHERE e.originator_id = r.id AND e.originator_version > r.seen "
               "LIMIT 1) AS later").format(
        ids=ids, versions=versions, schema=names["schema"], events=names["events"])


def _array_literals(read: dict[UUID, int]) -> tuple[str, str]:
    """A read set as two array literals (`{id,...}`, `{version,...}`): uuids and integers need no
    quoting, and a string is sent far more cheaply than a list the driver dumps element by element."""
    return "{" + ",".join(map(str, read)) + "}", "{" + ",".join(map(str, read.values())) + "}"


def _text_array(texts: Sequence[str]) -> str:
    """Texts as one array literal (`{"a","b\\"c"}`): each quoted, its backslashes and double quotes
    escaped (sent as one string, as `_array_literals`, not element by element)."""
    return "{" + ",".join('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"' for text in texts) + "}"


def _row(row: Any) -> dict[str, Any]:
    return {"command_id": row["command_id"], "type": row["type"], "fingerprint": row["fingerprint"],
            "target": row["target"], "position": row["position"], "answer": json.loads(row["answer"])}


class MemoryLedgerRecorder(LocalNewer, POPOApplicationRecorder):
    def __init__(self) -> None:
        super().__init__()
        self.commands: dict[str, dict[str, Any]] = {}
        self.chain = MemoryChain()  # the hash chain (api/store/chain.py)

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
