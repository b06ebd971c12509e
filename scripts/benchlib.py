"""Shared by the benchmarks that need a big year in a store (scripts/bench_readmodels.py,
scripts/bench_replay.py): build it once, reuse it after."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from api.ledger import AppraisalLedger


def build_store(url: str, last_command: str, commands: Callable[[], list[dict[str, Any]]]) -> dict[str, Any]:
    """Import the bench year unless the store holds it already (its last command is recorded); an
    interrupted import resumes, since the ledger skips command ids it has already accepted."""
    ledger = AppraisalLedger(url)
    try:
        if ledger.commands([last_command]):
            return {"reused": True, "events": ledger.event_count()}
        year = commands()
        print(f"  importing {len(year):,} commands into {safe_url(url)} (minutes) …", flush=True)
        started = time.perf_counter()
        ledger.submit(year, batch_size=1000)
        elapsed = time.perf_counter() - started
        count = ledger.event_count()
    finally:
        ledger.close()
    print(f"  imported {len(year):,} commands → {count:,} events in {elapsed:.0f}s "
          f"({len(year) / elapsed:,.0f} commands/s)", flush=True)
    return {"reused": False, "commands": len(year), "events": count, "import_s": round(elapsed, 1)}


def safe_url(url: str) -> str:
    """A store's URL without its credentials, for printing."""
    return url.split("@")[-1] if "@" in url else url


def pg_store_url(base: str, schema: str, fresh: bool) -> str:
    """The URL of a kept bench schema in the PostgreSQL database `base` (dropped first if `fresh`)."""
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        if fresh:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    return f"{base}{'&' if '?' in base else '?'}schema={schema}"
