"""Replay speed (issue 6): replaying a year of 3,000 people (about 900,000 events) under another
scheme version, beside just reading and decoding the same events from the same store, measured in
the same run; and the replay's peak memory.

    .venv/bin/python scripts/bench_replay.py [--pg postgresql://…] [--stores sqlite,postgresql]
                                             [--departments 100 --staff 29 --events 900000] [--repeat 3]

The store: the demo year (api/cli/demo.py, weekly business ratings, monthly innovation and reform
ratings; 100 departments × 30 people = 3,000 appraised people, about 620,000 commands), made denser
with weekly innovation ratings for the first weeks of the year by the same raters until the log
holds about `--events` events, then a corrected scheme `bianban@2` (staff weights 0.4/0.6, the
implementation target 90, absences −2, staff rater shares 0.2 / 0.5 / 0.5). Importing it takes
minutes; the store is kept (SQLite: var/bench/replay-*.db, PostgreSQL: schema bench_replay_*) and
reused by the next run with the same parameters (`--fresh` rebuilds it).

Every measurement runs in a fresh process (nothing cached, its own peak memory), alternating:
- read:   `projections.events.read_events` over the whole log, every event decoded (the baseline);
- replay: `projections.replays.replay` — one fold of the log, the year computed under bianban@2
          (the replay), then under its own binding (the current results) and the report. The
          replay figure is fold + replayed computation; the full report time is printed beside it.
Both run with the cyclic garbage collector paused, as the replay does. Figures are the best of
`--repeat` runs; the acceptance: replay ≤ 2 × read, peak memory under 1 GiB.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import math
import os
import random
import resource
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.cli.demo import demo_commands  # noqa: E402
from api.ledger import AppraisalLedger  # noqa: E402
from domain.scheme import builtin_document  # noqa: E402
from domain.times import OFFICE_TZ as TZ  # noqa: E402
from scripts.benchlib import build_store, pg_store_url, safe_url  # noqa: E402

YEAR = 2025
SCHEME = "bianban@2"
GIB = 1 << 30
LAST_COMMAND = "bench-scheme-v2"


# --- the store ------------------------------------------------------------------------------------


def corrected_scheme() -> dict[str, Any]:
    """bianban v2: the four corrections of tests/unit/test_replay.py, on a copy of v1."""
    document = copy.deepcopy(builtin_document("bianban"))
    document.update({"version": 2, "supersedes": 1, "reason": "bench: corrected weights, threshold, points"})
    document["composition"]["staff"] = {"department": "0.4", "individual": "0.6"}
    document["raters"]["staff"] = {"self": "0.2", "others": {"in_charge": "0.5", "department_head": "0.5"}}
    document["department"][0]["rules"][0]["target"] = "90"
    document["individual"][1]["rules"][0]["points_each"] = "-2"
    return document


def extra_ratings(commands: list[dict[str, Any]], weeks: int, seed: int = 7) -> list[dict[str, Any]]:
    """Weekly innovation ratings (periods 2025-W01…) by every rater the demo has rate innovation."""
    raters: dict[str, list[tuple[str, str]]] = {}
    for command in commands:
        if command["type"] == "rating.record" and command["leaf"] == "innovation":
            pair = (command["rater"], command["rater_role"])
            slots = raters.setdefault(command["appraisal"], [])
            if pair not in slots:
                slots.append(pair)
    rng = random.Random(seed)
    extra: list[dict[str, Any]] = []
    for week in range(1, weeks + 1):
        thursday = date.fromisocalendar(YEAR, week, 4)
        at = datetime.combine(thursday, datetime.min.time(), TZ) + timedelta(hours=10)
        for appraisal, slots in raters.items():
            for rater, role in slots:
                extra.append({"type": "rating.record", "id": f"bench-{len(extra) + 1:07d}", "actor": rater,
                              "at": (at + timedelta(seconds=len(extra) % 20000)).isoformat(),
                              "appraisal": appraisal, "leaf": "innovation", "period": f"{YEAR}-W{week:02d}",
                              "rater": rater, "rater_role": role, "score": f"{rng.randint(600, 990) / 10:.1f}"})
    return extra


def commands_for(departments: int, staff: int, events: int) -> list[dict[str, Any]]:
    commands = demo_commands(YEAR, departments=departments, staff_per_department=staff, periods="weekly")
    per_week = len(extra_ratings(commands, 1))
    weeks = max(0, min(52, math.ceil((events - len(commands)) / per_week))) if per_week else 0
    publish = {"type": "scheme.publish", "id": LAST_COMMAND, "actor": "admin",
               "at": f"{YEAR + 1}-01-06T09:00:00+08:00", "document": corrected_scheme()}
    return [*commands, *extra_ratings(commands, weeks), publish]


# --- one measurement, in its own process ------------------------------------------------------------


def measure(kind: str, url: str) -> dict[str, Any]:
    from projections.events import read_events
    from projections.replays import replay

    ledger = AppraisalLedger(url)
    gc.disable()
    cpu, wall = time.process_time(), time.perf_counter()
    figures: dict[str, Any] = {}
    if kind == "read":
        figures["events"] = sum(1 for _ in read_events(ledger))
        figures["read_s"] = time.perf_counter() - wall
        figures["read_cpu_s"] = time.process_time() - cpu
    else:
        timings: dict[str, float] = {}
        report = replay(ledger, YEAR, SCHEME, timings=timings)
        figures.update({f"{name}_s": value for name, value in timings.items()})
        figures["replay_s"] = timings["fold"] + timings["replayed"]
        figures["replay_cpu_s"] = timings["fold_cpu"] + timings["replayed_cpu"]
        figures["full_report_s"] = time.perf_counter() - wall
        figures["people"] = len(report["people"])
        figures["summary"] = {k: v for k, v in report["summary"].items() if k != "largest_moves"}
    figures["cpu_s"] = time.process_time() - cpu
    figures["peak_rss_bytes"] = peak_memory()
    ledger.close()
    return figures


def peak_memory() -> int:
    """This process's peak resident memory. VmHWM, not ru_maxrss: on Linux a child's ru_maxrss
    starts from its parent's resident size at fork, and the parent here held the whole import."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_measure(kind: str, url: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--measure", kind, "--db", url], capture_output=True,
                          text=True, timeout=3600, env={**os.environ, "PYTHONHASHSEED": "0"})
    if done.returncode != 0:
        raise SystemExit(f"{kind} measurement failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_store(name: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    print(f"{name}: {safe_url(url)}", flush=True)
    figures: dict[str, Any] = {"store": build_store(
        url, LAST_COMMAND, lambda: commands_for(args.departments, args.staff, args.events))}
    reads, replays = [], []
    for _ in range(args.repeat):
        reads.append(run_measure("read", url))
        replays.append(run_measure("replay", url))
    read = min(reads, key=lambda r: r["read_s"])
    replayed = min(replays, key=lambda r: r["replay_s"])
    full = min(r["full_report_s"] for r in replays)
    peak = max(r["peak_rss_bytes"] for r in replays)
    ratio = replayed["replay_s"] / read["read_s"]
    read_cpu = min(r["read_cpu_s"] for r in reads)
    cpu_ratio = min(r["replay_cpu_s"] for r in replays) / read_cpu
    figures.update({
        "events": read["events"], "people": replayed["people"],
        "read_s": round(read["read_s"], 2), "fold_s": round(replayed["fold_s"], 2),
        "replayed_compute_s": round(replayed["replayed_s"], 2), "replay_s": round(replayed["replay_s"], 2),
        "current_compute_s": round(replayed["current_s"], 2), "report_s": round(replayed["report_s"], 2),
        "full_report_s": round(full, 2), "ratio": round(ratio, 3), "target_ratio": 2.0,
        "full_report_ratio": round(full / read["read_s"], 3),
        "read_cpu_s": round(read_cpu, 2), "replay_cpu_s": round(min(r["replay_cpu_s"] for r in replays), 2),
        "cpu_ratio": round(cpu_ratio, 3),
        "peak_rss_mib": round(peak / (1 << 20)), "peak_rss_read_mib": round(max(r["peak_rss_bytes"] for r in reads) / (1 << 20)),
        "target_peak_mib": 1024, "runs": {"read": reads, "replay": replays},
        "summary": replayed["summary"],
    })
    verdict = "meets" if ratio <= 2.0 else "misses"
    memory = "under" if peak < GIB else "over"
    print(f"  {read['events']:,} events, {replayed['people']:,} people; best of {args.repeat}")
    print(f"  read+decode {read['read_s']:.2f}s | replay {replayed['replay_s']:.2f}s "
          f"(fold {replayed['fold_s']:.2f}s + compute under {SCHEME} {replayed['replayed_s']:.2f}s) "
          f"→ ratio {ratio:.2f} ({verdict} the 2× target); CPU time {cpu_ratio:.2f}×")
    print(f"  full report {full:.2f}s (+ current results {replayed['current_s']:.2f}s, "
          f"comparison {replayed['report_s']:.2f}s) = {full / read['read_s']:.2f}× read")
    print(f"  peak memory of the replay process {peak / (1 << 20):,.0f} MiB ({memory} 1 GiB); "
          f"the reading process {figures['peak_rss_read_mib']:,} MiB")
    return figures


def pg_url(base: str, args: argparse.Namespace, fresh: bool) -> str:
    return pg_store_url(base, f"bench_replay_{args.departments}_{args.staff}_{args.events}", fresh)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", help="PostgreSQL URL of a database to keep the bench schema in")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--departments", type=int, default=100)
    parser.add_argument("--staff", type=int, default=29)
    parser.add_argument("--events", type=int, default=900_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="rebuild the stores")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--measure", choices=["read", "replay"], help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.db)))
        return

    stores = args.stores.split(",")
    print(f"replay benchmark: year {YEAR}, {args.departments} departments × {args.staff + 1} people, "
          f"about {args.events:,} events; replay under {SCHEME}; best of {args.repeat}", flush=True)
    figures: dict[str, Any] = {}
    if "sqlite" in stores:
        path = ROOT / "var" / "bench" / f"replay-{args.departments}x{args.staff}-{args.events}.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        if args.fresh and path.exists():
            path.unlink()
        figures["sqlite"] = bench_store("SQLite", f"sqlite:///{path}", args)
    if "postgresql" in stores and args.pg:
        figures["postgresql"] = bench_store("PostgreSQL", pg_url(args.pg, args, args.fresh), args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
