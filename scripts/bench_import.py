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
import os
import resource
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

from api.demo import demo_commands  # noqa: E402
from api.ledger import AppraisalLedger  # noqa: E402
from api.parallel import decider_count  # noqa: E402
from api.processes import cpus  # noqa: E402


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


CPU: dict[str, list[tuple[float, float, float | None]]] = {}  # label -> (this process, its children, the server) a run


def ledger_import(url: str, commands: list[dict[str, Any]], batch: int, processes: int | None = None,
                  label: str = "", server: Callable[[], float | None] = lambda: None) -> float:
    """One import's wall time; its CPU (this process, the processes it started, the server's when
    readable) is kept in CPU[label]."""
    ledger = AppraisalLedger(url)
    cpu, children, served = time.process_time(), _children_cpu(), server()
    started = time.perf_counter()
    ledger.submit(commands, batch_size=batch, processes=processes)
    elapsed = time.perf_counter() - started
    served_after = server()
    CPU.setdefault(label, []).append((time.process_time() - cpu, _children_cpu() - children,
                                      None if served is None or served_after is None else served_after - served))
    assert ledger.event_count() >= len(commands)
    ledger.close()
    return elapsed


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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
          f"best of {args.repeat}; deciding processes: {decider_count(None, cpus(), n)}")
    figures: dict[str, Any] = {"commands": n, "batch": args.batch}
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(1000))
        raw, ours, alone = best_each(args.repeat, [
            lambda: raw_sqlite(f"{tmp}/raw{next(counter)}.db", rows, args.batch),
            lambda: ledger_import(f"sqlite:///{tmp}/ledger{next(counter)}.db", commands, args.batch,
                                  label="sqlite shared"),
            lambda: ledger_import(f"sqlite:///{tmp}/ledger{next(counter)}.db", commands, args.batch, 1,
                                  label="sqlite alone")])
        figures["sqlite"] = _report("SQLite", n, raw, ours, alone, target=0.2)
    if args.pg:
        server = server_cpu(args.pg)
        raw, ours, alone = best_each(args.repeat, [
            lambda: raw_postgres(args.pg, f"raw_{secrets.token_hex(4)}", rows, args.batch),
            lambda: _pg_import(args.pg, commands, args.batch, label="postgresql shared", server=server),
            lambda: _pg_import(args.pg, commands, args.batch, 1, label="postgresql alone", server=server)])
        figures["postgresql"] = _report("PostgreSQL", n, raw, ours, alone, target=0.35)
    print("  CPU per command (median of the runs): this process + the others it started + the server")
    for label, runs in CPU.items():
        mine = statistics.median(run[0] for run in runs) / n * 1e6
        theirs = statistics.median(run[1] for run in runs) / n * 1e6
        served_runs = [run[2] for run in runs if run[2] is not None]
        served = statistics.median(served_runs) / n * 1e6 if len(served_runs) == len(runs) else None
        total = mine + theirs + (served or 0.0)
        print(f"  {label:<18} {mine:.0f} + {theirs:.0f} + {'n/a' if served is None else f'{served:.0f}'} "
              f"= {total:.0f} µs")
        figures.setdefault("cpu_us_per_command", {})[label] = {
            "importing": round(mine), "started": round(theirs),
            "server": None if served is None else round(served), "total": round(total)}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))


def _pg_import(base: str, commands: list[dict[str, Any]], batch: int, processes: int | None = None,
               label: str = "", server: Callable[[], float | None] = lambda: None) -> float:
    import psycopg

    schema = f"bench_{secrets.token_hex(4)}"
    url = f"{base}?schema={schema}"
    try:
        return ledger_import(url, commands, batch, processes, label, server)
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
