"""Import speed: commands per second through the ledger, beside raw batched inserts of the same
number of rows into a plain table, measured in the same run on the same store (issue: the spine).

    .venv/bin/python scripts/bench_import.py --pg postgresql://… [--departments 10 --staff 29]

The import runs as `appraisal import` runs it: decided by one process per core (up to 4: see
api/parallel.py), and, beside it in the same run, in one process (`--processes 1`).

The raw baseline inserts one row per command — (uuid, integer, text, the command's JSON as bytes)
— with executemany in batches of the import's batch size, one transaction per batch: what a
hand-written loader with no validation, no events and no idempotency would do. Each figure is the
best of `--repeat` runs on a fresh table or schema.
"""

from __future__ import annotations

import argparse
import gc
import json
import secrets
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.demo import demo_commands  # noqa: E402
from api.ledger import AppraisalLedger, _cpus  # noqa: E402
from api.parallel import decider_count  # noqa: E402


def raw_rows(commands: list[dict[str, Any]]) -> list[tuple[str, int, str, bytes]]:
    return [(str(uuid.uuid4()), index, command["type"], json.dumps(command, ensure_ascii=False).encode())
            for index, command in enumerate(commands)]


def raw_sqlite(path: str, rows: list[tuple[str, int, str, bytes]], batch: int) -> float:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE raw (originator_id TEXT, version INTEGER, topic TEXT, state BLOB, "
                 "PRIMARY KEY (originator_id, version))")
    conn.commit()
    started = time.perf_counter()
    for start in range(0, len(rows), batch):
        conn.executemany("INSERT INTO raw VALUES (?,?,?,?)", rows[start:start + batch])
        conn.commit()
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def raw_postgres(url: str, schema: str, rows: list[tuple[str, int, str, bytes]], batch: int) -> float:
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.raw (id bigserial, originator_id uuid, version bigint, "
                     "topic text, state bytea, PRIMARY KEY (originator_id, version))")
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cur:
            for start in range(0, len(rows), batch):
                cur.executemany(f"INSERT INTO {schema}.raw (originator_id, version, topic, state) "
                                "VALUES (%s, %s, %s, %s)", rows[start:start + batch])
                conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.commit()
    return elapsed


def ledger_import(url: str, commands: list[dict[str, Any]], batch: int, processes: int | None = None) -> float:
    ledger = AppraisalLedger(url)
    started = time.perf_counter()
    ledger.submit(commands, batch_size=batch, processes=processes)
    elapsed = time.perf_counter() - started
    assert ledger.event_count() >= len(commands)
    ledger.close()
    return elapsed


def best_each(runs: int, measures: list[Callable[[], float]]) -> list[float]:
    """The best time of each measure over `runs` rounds, each round running them all in turn
    (so that a slow spell of the machine falls on all of them)."""
    times: list[list[float]] = [[] for _ in measures]
    for _ in range(runs):
        for measure, taken in zip(measures, times, strict=True):
            gc.collect()
            taken.append(measure())
    return [min(taken) for taken in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", help="PostgreSQL URL of a database to create throwaway schemas in")
    parser.add_argument("--departments", type=int, default=10)
    parser.add_argument("--staff", type=int, default=29)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    commands = demo_commands(2025, departments=args.departments, staff_per_department=args.staff,
                             periods="weekly")
    rows = raw_rows(commands)
    n = len(commands)
    print(f"import benchmark: {n:,} commands (demo year, weekly ratings, "
          f"{args.departments} departments x {args.staff + 1} people), batches of {args.batch}, "
          f"best of {args.repeat}; deciding processes: {decider_count(None, _cpus(), n)}")
    figures: dict[str, Any] = {"commands": n, "batch": args.batch}
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(1000))
        raw, ours, alone = best_each(args.repeat, [
            lambda: raw_sqlite(f"{tmp}/raw{next(counter)}.db", rows, args.batch),
            lambda: ledger_import(f"sqlite:///{tmp}/ledger{next(counter)}.db", commands, args.batch),
            lambda: ledger_import(f"sqlite:///{tmp}/ledger{next(counter)}.db", commands, args.batch, 1)])
        figures["sqlite"] = _report("SQLite", n, raw, ours, alone, target=0.2)
    if args.pg:
        raw, ours, alone = best_each(args.repeat, [
            lambda: raw_postgres(args.pg, f"raw_{secrets.token_hex(4)}", rows, args.batch),
            lambda: _pg_import(args.pg, commands, args.batch),
            lambda: _pg_import(args.pg, commands, args.batch, 1)])
        figures["postgresql"] = _report("PostgreSQL", n, raw, ours, alone, target=0.35)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))


def _pg_import(base: str, commands: list[dict[str, Any]], batch: int, processes: int | None = None) -> float:
    import psycopg

    schema = f"bench_{secrets.token_hex(4)}"
    url = f"{base}?schema={schema}"
    try:
        return ledger_import(url, commands, batch, processes)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _report(store: str, n: int, raw: float, ours: float, alone: float, target: float) -> dict[str, float]:
    raw_rate, our_rate, alone_rate = n / raw, n / ours, n / alone
    ratio = our_rate / raw_rate
    verdict = "meets" if ratio >= target else "below"
    print(f"  {store:<10} raw inserts {raw_rate:>10,.0f} rows/s   ledger import {our_rate:>8,.0f} commands/s   "
          f"ratio {ratio:.3f} ({verdict} the {target}x target)\n"
          f"  {'':<10} {'':<33} in one process {alone_rate:>8,.0f} commands/s   ratio {alone_rate / raw_rate:.3f}")
    return {"raw_rows_per_s": round(raw_rate), "commands_per_s": round(our_rate), "ratio": round(ratio, 4),
            "one_process_commands_per_s": round(alone_rate), "one_process_ratio": round(alone_rate / raw_rate, 4),
            "target": target}


if __name__ == "__main__":
    main()
