"""The storage fixtures in tests/conftest.py do what the other tests rely on."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from tests.conftest import PG_URL_ENV, REQUIRE_PG_ENV, fresh_pg_schema, postgres_base_url

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

only_postgres = pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)], indirect=True
)


def split_schema(url: str) -> tuple[str, str]:
    """`postgresql://...?schema=s` -> (`postgresql://...`, `s`): libpq rejects `schema`."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    schemas = [value for key, value in query if key == "schema"]
    assert len(schemas) == 1, f"expected one schema= parameter in {url!r}"
    rest = urlencode([(key, value) for key, value in query if key != "schema"])
    return urlunsplit(parts._replace(query=rest)), schemas[0]


def connect_in_schema(url: str) -> tuple[psycopg.Connection, str]:
    base, schema = split_schema(url)
    conn = psycopg.connect(base, autocommit=True)
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    return conn, schema


def tables_in(conn: psycopg.Connection, schema: str) -> list[str]:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1",
        (schema,),
    ).fetchall()
    return [name for (name,) in rows]


def schema_exists(conn: psycopg.Connection, schema: str) -> bool:
    row = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    assert row is not None
    return row[0] == 1


def test_db_url_gives_empty_writable_storage(db_url: str, tmp_path: Path) -> None:
    if db_url.startswith("sqlite:///"):
        check_sqlite_file_in(tmp_path, db_url)
    else:
        check_empty_postgres_schema(db_url)


def check_sqlite_file_in(tmp_path: Path, db_url: str) -> None:
    path = Path(db_url.removeprefix("sqlite:///"))
    assert path.is_absolute()
    assert path.parent == tmp_path
    assert not path.exists()
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.execute("CREATE TABLE probe (name TEXT)")
            conn.execute("INSERT INTO probe VALUES ('sqlite')")
        assert conn.execute("SELECT name FROM probe").fetchall() == [("sqlite",)]
    finally:
        conn.close()
    assert path.is_file()


def check_empty_postgres_schema(db_url: str) -> None:
    assert db_url.startswith("postgresql://")
    conn, schema = connect_in_schema(db_url)
    with conn:
        assert schema.startswith("t_") and len(schema) == len("t_") + 12
        assert conn.execute("SELECT current_schema()").fetchone() == (schema,)
        assert tables_in(conn, schema) == []
        conn.execute("CREATE TABLE probe (name text)")
        conn.execute("INSERT INTO probe VALUES ('postgres')")
        assert conn.execute("SELECT name FROM probe").fetchall() == [("postgres",)]
        assert tables_in(conn, schema) == ["probe"]
        assert "probe" not in tables_in(conn, "public")


def test_only_the_postgres_param_is_marked_postgres(
    db_url: str, request: pytest.FixtureRequest
) -> None:
    marked = request.node.get_closest_marker("postgres") is not None
    assert marked == db_url.startswith("postgresql://")


def test_pg_url_is_marked_postgres(pg_url: str, request: pytest.FixtureRequest) -> None:
    assert pg_url.startswith("postgresql://")
    assert request.node.get_closest_marker("postgres") is not None


@only_postgres
def test_two_fixtures_in_one_test_get_different_schemas(db_url: str, pg_url: str) -> None:
    first, first_schema = connect_in_schema(db_url)
    second, second_schema = connect_in_schema(pg_url)
    with first, second:
        assert first_schema != second_schema
        assert schema_exists(first, first_schema) and schema_exists(first, second_schema)
        first.execute("CREATE TABLE probe (n int)")
        assert tables_in(second, second_schema) == []
        second.execute("CREATE TABLE probe (n int)")
        first.execute("INSERT INTO probe VALUES (1)")
        assert second.execute("SELECT count(*) FROM probe").fetchone() == (0,)


@pytest.mark.parametrize("run", ["first", "second"])
def test_each_test_gets_its_own_schema(
    run: str, pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    conn, schema = connect_in_schema(pg_url)
    with conn:
        assert tables_in(conn, schema) == [], "schema is shared with another test"
        conn.execute("CREATE TABLE probe (run text)")
        conn.execute("INSERT INTO probe VALUES (%s)", (run,))
    # Claim the name in a directory every xdist worker of this run sees: a second
    # test handed the same schema finds the claim already there.
    basetemp = tmp_path_factory.getbasetemp()
    run_dir = basetemp.parent if os.environ.get("PYTEST_XDIST_WORKER") else basetemp
    claims = run_dir / "schema-claims"
    claims.mkdir(exist_ok=True)
    with open(claims / schema, "x") as claim:
        claim.write(run)


def test_fresh_schema_is_dropped_with_its_tables() -> None:
    base_url = postgres_base_url()
    with fresh_pg_schema(base_url) as url:
        conn, schema = connect_in_schema(url)
        with conn:
            conn.execute("CREATE TABLE probe (n int)")
            assert schema_exists(conn, schema)
    with psycopg.connect(base_url, autocommit=True) as conn:
        assert not schema_exists(conn, schema)


@pytest.mark.parametrize(
    ("require", "expected"), [("", "1 skipped"), ("1", "1 error")], ids=["optional", "required"]
)
def test_missing_server_url_skips_or_fails(require: str, expected: str, tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    postgres: test server\n")
    (tmp_path / "conftest.py").write_text(CONFTEST.read_text())
    (tmp_path / "test_needs_pg.py").write_text("def test_it(pg_url):\n    pass\n")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in (PG_URL_ENV, REQUIRE_PG_ENV, "PYTEST_ADDOPTS")
        and not key.startswith("PYTEST_XDIST")
    }
    if require:
        env[REQUIRE_PG_ENV] = require
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-q", "-rs"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert expected in result.stdout, result.stdout + result.stderr
    assert PG_URL_ENV in result.stdout
