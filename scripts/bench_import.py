"""Import speed: commands per second through the ledger, beside raw batched inserts of the same
number of rows into a plain table, measured in the same run on the same store (issue: the spine).

    .venv/bin/python scripts/bench_import.py --pg postgresql://… [--departments 10 --staff 29]

The import runs as `appraisal import` runs it, in one process.

The raw baseline inserts one row per command — (uuid, integer, text, the command's JSON as bytes)
— with executemany in batches of the import's batch size, one transaction per batch: what a
hand-written loader with no validation, no events and no idempotency would do. Each figure is the
best of `--repeat` runs on a fresh table or schema.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.cli.demo import demo_commands  # noqa: E402
from api.ledger import AppraisalLedger  # noqa: E402


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


CPU: dict[str, list[tuple[float, float | None]]] = {}  # label -> (this process, the server) a run


def ledger_import(url: str, commands: list[dict[str, Any]], batch: int,
                  label: str = "", server: Callable[[], float | None] = lambda: None) -> float:
    """One import's wall time; its CPU (this process, the server's when readable) is kept in CPU[label]."""
    ledger = AppraisalLedger(url)
    cpu, served = time.process_time(), server()
    started = time.perf_counter()
    ledger.submit(commands, batch_size=batch)
    elapsed = time.perf_counter() - started
    served_after = server()
    CPU.setdefault(label, []).append((time.process_time() - cpu,
                                      None if served is None or served_after is None else served_after - served))
    assert ledger.event_count() >= len(commands)
    ledger.close()
    return elapsed


def server_cpu(url: str) -> Callable[[], float | None]:
    """The CPU seconds a local PostgreSQL server has used so far (the postmaster, its backends,
    and those that have ended), read from /proc; None where that cannot be read."""
    import psycopg

    try:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SHOW data_directory").fetchone()
        postmaster = int((Path(row[0]) / "postmaster.pid").read_text().split()[0]) if row else 0
    except (OSError, ValueError, psycopg.Error):
        return lambda: None
    tick = os.sysconf("SC_CLK_TCK")

    def read() -> float | None:
        total = 0
        try:
            for stat in Path("/proc").glob("[0-9]*/stat"):
                with suppress(OSError):
                    fields = stat.read_text().rsplit(")", 1)[1].split()
                    pid, ppid = int(stat.parent.name), int(fields[1])
                    if pid == postmaster:  # its own time and that of its children which have ended
                        total += sum(int(x) for x in fields[11:15])
                    elif ppid == postmaster:
                        total += int(fields[11]) + int(fields[12])
        except OSError:
            return None
        return total / tick

    return read if read() else lambda: None


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
          f"best of {args.repeat}")
    figures: dict[str, Any] = {"commands": n, "batch": args.batch}
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(1000))
        raw, ours = best_each(args.repeat, [
            lambda: raw_sqlite(f"{tmp}/raw{next(counter)}.db", rows, args.batch),
            lambda: ledger_import(f"sqlite:///{tmp}/ledger{next(counter)}.db", commands, args.batch,
                                  label="sqlite")])
        figures["sqlite"] = _report("SQLite", n, raw, ours, target=0.2)
    if args.pg:
        server = server_cpu(args.pg)
        raw, ours = best_each(args.repeat, [
            lambda: raw_postgres(args.pg, f"raw_{secrets.token_hex(4)}", rows, args.batch),
            lambda: _pg_import(args.pg, commands, args.batch, label="postgresql", server=server)])
        figures["postgresql"] = _report("PostgreSQL", n, raw, ours, target=0.35)
    print("  CPU per command (median of the runs): this process + the server")
    for label, runs in CPU.items():
        mine = statistics.median(run[0] for run in runs) / n * 1e6
        served_runs = [run[1] for run in runs if run[1] is not None]
        served = statistics.median(served_runs) / n * 1e6 if len(served_runs) == len(runs) else None
        total = mine + (served or 0.0)
        print(f"  {label:<18} {mine:.0f} + {'n/a' if served is None else f'{served:.0f}'} = {total:.0f} µs")
        figures.setdefault("cpu_us_per_command", {})[label] = {
            "importing": round(mine), "server": None if served is None else round(served), "total": round(total)}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))


def _pg_import(base: str, commands: list[dict[str, Any]], batch: int,
               label: str = "", server: Callable[[], float | None] = lambda: None) -> float:
    import psycopg

    schema = f"bench_{secrets.token_hex(4)}"
    url = f"{base}?schema={schema}"
    try:
        return ledger_import(url, commands, batch, label, server)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _report(store: str, n: int, raw: float, ours: float, target: float) -> dict[str, float]:
    raw_rate, our_rate = n / raw, n / ours
    ratio = our_rate / raw_rate
    verdict = "meets" if ratio >= target else "below"
    print(f"  {store:<10} raw inserts {raw_rate:>10,.0f} rows/s   ledger import {our_rate:>8,.0f} commands/s   "
          f"ratio {ratio:.3f} ({verdict} the {target}x target)")
    return {"raw_rows_per_s": round(raw_rate), "commands_per_s": round(our_rate), "ratio": round(ratio, 4),
            "target": target}


if __name__ == "__main__":
    main()
