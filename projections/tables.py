"""The read models' tables: their layout (and its version), the audit table's indexes, the
tracking rows, and the events set aside (see the package's docstring)."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from projections.db import ViewDB

NAME = "readmodels"
VERSION = 5  # of the tables' layout: a projection finding another version rebuilds them from zero
TABLES = ("rm_year_results", "rm_explanations", "rm_breakdowns", "rm_placements", "rm_person_history",
          "rm_department_history", "rm_appeals", "rm_audit", "rm_publications", "rm_setaside")
YEAR_TABLES = ("rm_year_results", "rm_explanations", "rm_breakdowns", "rm_placements", "rm_person_history",
               "rm_department_history", "rm_appeals")


REPLACED = "_replaced"  # the live tables a rebuild's swap replaced, until they are dropped

def create_tables(tx: Any, suffix: str = "", *, indexes: bool = True) -> None:
    """The tables (with `suffix`: a rebuild's fresh ones, whose audit indexes are made after the
    bulk load, once, under their live names: see `rebuild`)."""
    tx.serialize_ddl()
    s = suffix
    tx.execute(f"CREATE TABLE IF NOT EXISTS rm_year_results{s} (year INTEGER PRIMARY KEY, scheme TEXT NOT NULL, "
               "status TEXT NOT NULL, document TEXT NOT NULL, digest TEXT NOT NULL)")
    tx.execute(f"CREATE TABLE IF NOT EXISTS rm_explanations{s} (appraisal TEXT PRIMARY KEY, year INTEGER NOT NULL, "
               "subject TEXT NOT NULL, document TEXT NOT NULL, digest TEXT NOT NULL)")
    tx.execute(f"CREATE TABLE IF NOT EXISTS rm_breakdowns{s} (appraisal TEXT NOT NULL, version INTEGER NOT NULL, "
               "year INTEGER NOT NULL, subject TEXT NOT NULL, document TEXT NOT NULL, digest TEXT NOT NULL, "
               "PRIMARY KEY (appraisal, version))")
    tx.execute(f"CREATE TABLE IF NOT EXISTS rm_placements{s} (appraisal TEXT PRIMARY KEY, year INTEGER NOT NULL, "
               "explanation TEXT NOT NULL, breakdown TEXT NOT NULL, digest TEXT NOT NULL)")
    tx.execute(f"CREATE TABLE IF NOT EXISTS rm_person_history{s} (person TEXT NOT NULL, year INTEGER NOT NULL, "
               "scheme TEXT NOT NULL, status TEXT NOT NULL, department TEXT, position TEXT, total TEXT NOT NULL, "
               "individual TEXT NOT NULL, rank INTEGER, tier INTEGER, grade TEXT, coefficient TEXT, "
               "vetoed INTEGER NOT NULL, incomplete INTEGER NOT NULL, PRIMARY KEY (person, year))")
    tx.execute(f"CREATE TABLE IF NOT EXISTS rm_department_history{s} (department TEXT NOT NULL, "
               "year INTEGER NOT NULL, scheme TEXT NOT NULL, status TEXT NOT NULL, score TEXT NOT NULL, "
               "rank INTEGER NOT NULL, staffing_cut INTEGER, incomplete INTEGER NOT NULL, "
               "PRIMARY KEY (department, year))")
    tx.execute(f"CREATE TABLE IF NOT EXISTS rm_appeals{s} (appeal TEXT PRIMARY KEY, appraisal TEXT NOT NULL, "
               "year INTEGER NOT NULL, appellant TEXT NOT NULL, target TEXT NOT NULL, target_kind TEXT NOT NULL, "
               "grounds TEXT NOT NULL, filed_at TEXT NOT NULL, due TEXT NOT NULL, decided_at TEXT, outcome TEXT, "
               "decided_by TEXT, reason TEXT)")
    tx.execute(f"CREATE TABLE IF NOT EXISTS rm_audit{s} (position INTEGER PRIMARY KEY, aggregate TEXT NOT NULL, "
               "version INTEGER NOT NULL, event TEXT NOT NULL, command_id TEXT NOT NULL, actor TEXT NOT NULL, "
               "at TEXT NOT NULL, recorded_at TEXT NOT NULL, backdated INTEGER NOT NULL, detail TEXT NOT NULL, "
               "figures TEXT NOT NULL)")
    if indexes and not tx.index_names(f"rm_audit{s}"):
        create_audit_indexes(tx, f"rm_audit{s}")
    tx.execute(f"CREATE TABLE IF NOT EXISTS rm_publications{s} (year INTEGER NOT NULL, version INTEGER NOT NULL, "
               "at TEXT NOT NULL, recorded_at TEXT NOT NULL, digest TEXT NOT NULL, document TEXT NOT NULL, "
               "PRIMARY KEY (year, version))")
    tx.execute(f"CREATE TABLE IF NOT EXISTS rm_setaside{s} (position INTEGER NOT NULL, aggregate TEXT NOT NULL, "
               "topic TEXT NOT NULL, stage TEXT NOT NULL, error TEXT NOT NULL, first_seen TEXT NOT NULL, "
               "code TEXT NOT NULL, PRIMARY KEY (position, aggregate))")
    tx.execute("CREATE TABLE IF NOT EXISTS rm_tracking (name TEXT PRIMARY KEY, position INTEGER NOT NULL)")


AUDIT_INDEXES = (("by_aggregate", "aggregate, position"), ("by_actor", "actor, position"),
                 ("by_backdated", "backdated, position"))
# The audit table's indexes are named by generation: a rebuild's fresh table takes the names its
# live table does not use (an index keeps its name when its table is renamed).
INDEX_GENERATIONS = ("", "_b")


def create_audit_indexes(tx: Any, table: str = "rm_audit", generation: str = "") -> None:
    for index, columns in AUDIT_INDEXES:
        tx.execute(f"CREATE INDEX IF NOT EXISTS rm_audit{generation}_{index} ON {table} ({columns})")


def free_index_generation(names: set[str]) -> str:
    """The generation of audit index names that none of `names` has."""
    return next(g for g in INDEX_GENERATIONS if not any(f"rm_audit{g}_{index}" in names for index, _ in AUDIT_INDEXES))


def set_aside(db: ViewDB) -> list[dict[str, Any]]:
    """The events set aside (rm_setaside), in log order; none before the tables exist."""
    if not db.table_exists("rm_setaside"):
        return []
    return db.query("SELECT position, aggregate, topic, stage, error, first_seen, code FROM rm_setaside "
                    "ORDER BY position, aggregate")


def code_version() -> str:
    """The version of this code, as a set-aside row records it."""
    try:
        package = metadata.version("appraisal-ledger")
    except metadata.PackageNotFoundError:
        package = "unknown"
    return f"{package} layout {VERSION}"
