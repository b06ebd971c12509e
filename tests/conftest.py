"""Storage fixtures shared by every test that touches a database.

`db_url` runs a test twice: once on a SQLite file in the test's tmp_path and once
on a fresh PostgreSQL schema; `empty_url` is a second empty store of the same kind. `pg_url` gives only the PostgreSQL schema, for tests
that make sense on PostgreSQL alone.

PostgreSQL comes from `APPRAISAL_TEST_PG_URL` (scripts/test starts a throwaway
server and sets it). Without it the PostgreSQL tests are skipped, unless
`APPRAISAL_REQUIRE_PG=1`, where they fail: CI must never pass by skipping them.

This file imports nothing from the application, so it works while that is written.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

PG_URL_ENV = "APPRAISAL_TEST_PG_URL"
REQUIRE_PG_ENV = "APPRAISAL_REQUIRE_PG"

# An application connection left open or idle in a transaction would make the
# teardown DROP wait forever; fail the teardown instead of hanging the run.
DROP_LOCK_TIMEOUT = "30s"


def postgres_base_url() -> str:
    """The test server's URL; skips (or fails, when PostgreSQL is required) without one."""
    url = os.environ.get(PG_URL_ENV, "").strip()
    if url:
        return url
    if os.environ.get(REQUIRE_PG_ENV) == "1":
        pytest.fail(
            f"{REQUIRE_PG_ENV}=1 but {PG_URL_ENV} is not set; run the tests via scripts/test"
        )
    pytest.skip(f"{PG_URL_ENV} is not set; run via scripts/test to include PostgreSQL")


@contextmanager
def fresh_pg_schema(base_url: str) -> Iterator[str]:
    """Create an empty schema `t_<12 hex>`, yield `<base_url>?schema=<name>`, drop it after."""
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(base_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    separator = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{separator}schema={schema}"
    finally:
        with psycopg.connect(base_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(DROP_LOCK_TIMEOUT)))
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL for empty storage: a SQLite file in tmp_path, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/appraisal.db"
        return
    with fresh_pg_schema(postgres_base_url()) as url:
        yield url


@pytest.fixture
def empty_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A second, empty store of the same kind as `db_url`."""
    if db_url.startswith("sqlite:///"):
        yield f"sqlite:///{tmp_path}/restored.db"
        return
    with fresh_pg_schema(postgres_base_url()) as url:
        yield url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema only: `postgresql://...?schema=t_<hex>`."""
    with fresh_pg_schema(postgres_base_url()) as url:
        yield url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # db_url marks its postgres param itself; pg_url has no params to carry a mark.
    for item in items:
        if "pg_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
