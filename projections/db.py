"""The read models' tables live in the same store as the event log; this is the thin SQL layer they
use on both stores (`?` placeholders; PostgreSQL gets `%s` and its schema from the URL)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from api.store.storage import pg_conninfo, serialize_ddl, wal_pages


class ViewDB:
    """One connection to the store, for the read models (a writer, or a reader)."""

    kind = ""

    def transaction(self) -> Any:
        raise NotImplementedError

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def table_exists(self, name: str) -> bool:
        raise NotImplementedError


class SQLiteViewDB(ViewDB):
    kind = "sqlite"

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        wal_pages(self.conn)

    @contextmanager
    def transaction(self) -> Iterator[_Cursor]:
        cursor = self.conn.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            yield _Cursor(cursor, lambda sql: sql)
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(row) for row in self.conn.execute(sql, tuple(params)).fetchall()]

    def table_exists(self, name: str) -> bool:
        return bool(self.query("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", [name]))

    def close(self) -> None:
        self.conn.close()


class PostgresViewDB(ViewDB):
    kind = "postgres"

    def __init__(self, url: str) -> None:
        import psycopg
        from psycopg.rows import dict_row

        parts = urlsplit(url)
        self.schema = parse_qs(parts.query).get("schema", ["public"])[0]
        self.conn = psycopg.connect(pg_conninfo(url), autocommit=True, row_factory=dict_row,
                                    connect_timeout=5)
        self.conn.execute(f'SET search_path TO "{self.schema}"')

    @contextmanager
    def transaction(self) -> Iterator[_Cursor]:
        with self.conn.transaction(), self.conn.cursor() as cursor:
            yield _Cursor(cursor, _pg, self.schema)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.conn.cursor() as cursor:
            cursor.execute(_pg(sql), tuple(params))
            return list(cursor.fetchall()) if cursor.description else []

    def table_exists(self, name: str) -> bool:
        return bool(self.query("SELECT 1 FROM information_schema.tables WHERE table_schema = ? "
                               "AND table_name = ?", [self.schema, name]))

    def close(self) -> None:
        self.conn.close()


def _pg(sql: str) -> str:
    return sql.replace("?", "%s")


class _Cursor:
    def __init__(self, cursor: Any, translate: Any, schema: str | None = None) -> None:
        self.cursor = cursor
        self.translate = translate
        self.schema = schema  # PostgreSQL's

    def serialize_ddl(self) -> None:
        """Before creating tables: wait for another process doing the same (PostgreSQL;
        `api.store.storage.serialize_ddl`). SQLite serialises writers itself."""
        if self.schema is not None:
            serialize_ddl(self.cursor, self.schema)

    def index_names(self, table: str) -> set[str]:
        """The names of the indexes made on `table` (not its primary key's)."""
        if self.schema is None:  # SQLite
            self.cursor.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                                "AND sql IS NOT NULL", (table,))
            return {row[0] for row in self.cursor.fetchall()}
        self.cursor.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = %s "
                            "AND indexname NOT LIKE '%%_pkey%%'", (self.schema, table))
        return {row["indexname"] for row in self.cursor.fetchall()}

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        self.cursor.execute(self.translate(sql), tuple(params))
        return int(self.cursor.rowcount)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.cursor.executemany(self.translate(sql), [tuple(row) for row in rows])

    def append_rows(self, table: str, width: int, rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows of `width` text and integer values into `table`, in its column order. On
        SQLite the whole page goes in as one JSON text, unpacked by one statement (`json_each`):
        SQLite does the work in one call without Python's lock, where a row at a time hands the
        lock back and forth with whatever thread folds meanwhile (a rebuild's)."""
        if not rows:
            return
        if self.schema is not None:  # PostgreSQL
            self.executemany(f"INSERT INTO {table} VALUES ({','.join('?' * width)})", rows)
            return
        values = ", ".join(f"value ->> {column}" for column in range(width))
        self.cursor.execute(f"INSERT INTO {table} SELECT {values} FROM json_each(?)", (orjson.dumps(rows).decode(),))


def open_view_db(url: str) -> ViewDB:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return SQLiteViewDB(unquote(url[len("sqlite:///"):]))
    if parts.scheme in ("postgresql", "postgres"):
        return PostgresViewDB(url)
    raise ValueError(f"read models need a SQLite or PostgreSQL store, not {url!r}")
