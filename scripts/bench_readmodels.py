"""Read-model speed (issue 3), measured in one run on one store:
(a) raw:     read and decode every event of the log (`projections.events.read_events`), events/s;
(b) rebuild: `ReadModelProjection(ledger).rebuild()` from zero, events/s, and its ratio to (a)
             (target: at least 0.25×);
(c) lag:     the worker (`appraisal project`, its own process) following the log while a writer
             thread submits rating commands at a fixed rate: the lag in events (newest position −
             tracking position) sampled throughout, and for every command the time from its
             acceptance to its position being processed; p50 / p99 / max.

    .venv/bin/python scripts/bench_readmodels.py [--pg postgresql://…] [--stores sqlite,postgresql]
        [--departments 100 --staff 29] [--rate 200 --seconds 20] [--repeat 1] [--profile]

The store: the demo year (api/cli/demo.py) with weekly business ratings, `--departments` departments
of `--staff` staff and a head (100 × 30 = 3,000 people, about 620,000 commands). Importing it takes
minutes; it is kept (SQLite: var/bench/readmodels-*.db, PostgreSQL: schema bench_readmodels_*) and
reused by the next run with the same parameters (`--fresh` imports it again). The write load adds
ratings to it (replacements of existing ones), so a reused store grows a little each run.

(a) and (b) each run in a fresh process (nothing cached), alternating, best of `--repeat`. The
rebuild figure is the `rebuild()` call as `appraisal project --rebuild` makes it: in one process,
without folding the log up to the tracking row first (the construction is reported beside it). With `--profile` (or when the rebuild misses its target) the rebuild runs once more, in
one process, under cProfile and the top costs are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.cli.demo import demo_commands  # noqa: E402
from api.ledger import AppraisalLedger  # noqa: E402
from scripts.benchlib import build_store, pg_store_url, safe_url  # noqa: E402

YEAR = 2025
TARGET = 0.25
APPRAISAL = Path(sys.executable).with_name("appraisal")


# --- the store ------------------------------------------------------------------------------------


def year_commands(args: argparse.Namespace) -> list[dict[str, Any]]:
    return demo_commands(YEAR, departments=args.departments, staff_per_department=args.staff, periods="weekly")


# --- (a) and (b): one measurement, in its own process ---------------------------------------------


def measure(kind: str, url: str) -> dict[str, Any]:
    from projections.events import read_events
    from projections.projection import ReadModelProjection

    ledger = AppraisalLedger(url)
    figures: dict[str, Any] = {}
    cpu = time.process_time()
    if kind == "raw":
        started = time.perf_counter()
        figures["events"] = sum(1 for _ in read_events(ledger))
        figures["seconds"] = time.perf_counter() - started
    elif kind == "rebuild":
        started = time.perf_counter()
        # As `appraisal project --rebuild` does: no fold up to the tracking row first (the rebuild folds from zero).
        projection = ReadModelProjection(ledger, resume=False)
        figures["construct_s"] = time.perf_counter() - started
        started = time.perf_counter()
        figures["events"] = projection.rebuild()
        figures["seconds"] = time.perf_counter() - started
        projection.close()
    else:  # profile
        import cProfile
        import io
        import pstats

        projection = ReadModelProjection(ledger, resume=False)
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        figures["events"] = projection.rebuild()
        profiler.disable()
        figures["seconds"] = time.perf_counter() - started
        projection.close()
        for order in ("tottime", "cumulative"):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(18)
            figures[f"top_{order}"] = out.getvalue()
    figures["cpu_s"] = time.process_time() - cpu
    figures["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    ledger.close()
    return figures


def run_measure(kind: str, url: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--measure", kind, "--db", url],
                          capture_output=True, text=True, timeout=3600, env={**os.environ, "PYTHONHASHSEED": "0"})
    if done.returncode != 0:
        raise SystemExit(f"{kind} measurement failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- (c) catch-up lag under a steady write load ----------------------------------------------------


def rating_load(commands: list[dict[str, Any]], count: int, seed: int) -> list[dict[str, Any]]:
    """`count` replacement ratings: existing (appraisal, leaf, period, rater) with another score,
    a day after the original, in random order (every appraisal of the year gets some)."""
    rng = random.Random(seed)
    ratings = [c for c in commands if c["type"] == "rating.record"]
    load = []
    for number in range(count):
        original = rng.choice(ratings)
        at = min(datetime.fromisoformat(original["at"]) + timedelta(days=1),
                 datetime.fromisoformat(f"{YEAR}-12-31T17:00:00+08:00"))
        load.append({**original, "id": f"bench-rm-{seed}-{number:06d}", "at": at.isoformat(),
                     "score": f"{rng.randint(600, 990) / 10:.1f}", "comment": "bench"})
    return load


class Tracker(threading.Thread):
    """Polls the tracking position (every `poll` s) and the newest log position, recording both."""

    def __init__(self, url: str, poll: float = 0.01) -> None:
        super().__init__(daemon=True)
        from projections.reading import ReadModels

        self.views, self.ledger, self.poll = ReadModels(url), AppraisalLedger(url), poll
        self.stop = threading.Event()
        self.seen: list[tuple[float, int]] = []  # (time, tracking position) at each change
        self.lags: list[int] = []  # newest position − tracking position, every sample

    def position(self) -> int:
        return self.views.position()

    def run(self) -> None:
        last = -1
        while not self.stop.is_set():
            newest = self.ledger.recorder.max_notification_id() or 0
            position = self.position()
            now = time.perf_counter()
            if position != last:
                self.seen.append((now, position))
                last = position
            self.lags.append(max(0, newest - position))
            self.stop.wait(self.poll)
        self.views.close()
        self.ledger.close()

    def processed_at(self, position: int) -> float | None:
        for moment, reached in self.seen:
            if reached >= position:
                return moment
        return None


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def lag_under_load(url: str, commands: list[dict[str, Any]], args: argparse.Namespace,
                   log_path: Path) -> dict[str, Any]:
    from projections.reading import ReadModels

    ledger = AppraisalLedger(url)
    views = ReadModels(url)
    total = int(args.rate * args.seconds)
    load = rating_load(commands, total + 1, seed=int(time.time()))
    ledger.submit(load[:1])  # warm the writer's caches; the worker must process it before the load
    with log_path.open("wb") as log:
        started = time.perf_counter()
        worker = subprocess.Popen([str(APPRAISAL), "project", "--db", url, "--interval", str(args.interval)],
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            # A server's writer has its aggregates cached; a cold one would rebuild each appraisal
            # from the store on first touch (and measure that, not the read models): warm it while
            # the worker starts.
            warming = time.perf_counter()
            for key in sorted({command["appraisal"] for command in load}):
                ledger.appraisal(key)
            warm = time.perf_counter() - warming
            ready = _wait(lambda: views.position() >= ledger.event_count(), 1800)
            startup = time.perf_counter() - started
            if not ready:
                raise SystemExit(f"the worker did not catch up in 30 minutes; see {log_path}")
            print(f"  worker started and caught up in {startup:.1f}s (resume = fold up to the tracking "
                  f"row, then the year rendered once); the writer's cache warmed in {warm:.1f}s", flush=True)

            tracker = Tracker(url)
            tracker.start()
            accepted: list[tuple[float, int]] = []  # (acceptance time, log position)
            begin = time.perf_counter()
            sent = calls = 0
            longest = 0.0
            while sent < total:  # the commands due by now, in one submit (a busy writer batches)
                due = min(total, int((time.perf_counter() - begin) * args.rate) + 1)
                if due <= sent:
                    time.sleep(max(0.0, begin + due / args.rate - time.perf_counter()))
                    continue
                submitted_at = time.perf_counter()
                outcomes = ledger.submit(load[1 + sent:1 + due])
                now = time.perf_counter()
                longest = max(longest, now - submitted_at)
                accepted += [(now, int(o.answer["position"])) for o in outcomes]
                sent, calls = due, calls + 1
            writing = time.perf_counter() - begin
            last = accepted[-1][1]
            drained = _wait(lambda: views.position() >= last, 600)
            drain = time.perf_counter() - begin - writing
            time.sleep(0.05)
            tracker.stop.set()
            tracker.join(5)
        finally:
            worker.send_signal(signal.SIGINT)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(10)
    ledger.close()
    views.close()
    lags_s = []
    for moment, position in accepted:
        reached = tracker.processed_at(position)
        if reached is not None:
            lags_s.append(max(0.0, reached - moment))
    return {
        "rate_target": args.rate, "seconds_target": args.seconds, "commands": sent,
        "rate_achieved": round(sent / writing, 1), "submits": calls, "longest_submit_s": round(longest, 2),
        "worker_startup_s": round(startup, 1), "writer_warm_s": round(warm, 1), "tracking_moves": len(tracker.seen) - 1,
        "drained": drained, "drain_after_load_s": round(drain, 2),
        "lag_events": {"p50": percentile(tracker.lags, 50), "p99": percentile(tracker.lags, 99),
                       "max": max(tracker.lags) if tracker.lags else None, "samples": len(tracker.lags)},
        "lag_s": {"p50": round(percentile(lags_s, 50), 3), "p99": round(percentile(lags_s, 99), 3),
                  "max": round(max(lags_s), 3) if lags_s else None,
                  "mean": round(statistics.fmean(lags_s), 3) if lags_s else None, "measured": len(lags_s)},
        "poll_interval_s": args.interval,
    }


def _wait(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# --- one store ------------------------------------------------------------------------------------


def bench_store(name: str, url: str, args: argparse.Namespace, commands: list[dict[str, Any]]) -> dict[str, Any]:
    print(f"{name}: {safe_url(url)}", flush=True)
    figures: dict[str, Any] = {"store": build_store(url, commands[-1]["id"], lambda: commands)}
    if "rebuild" in args.parts:
        figures.update(rebuild_figures(url, args))
    if "lag" in args.parts and args.seconds > 0:
        figures["lag"] = lag_figures(name, url, args, commands)
    return figures


def rebuild_figures(url: str, args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    raws, rebuilds = [], []
    for _ in range(args.repeat):
        raws.append(run_measure("raw", url))
        rebuilds.append(run_measure("rebuild", url))
    raw = min(raws, key=lambda r: r["seconds"])
    rebuild = min(rebuilds, key=lambda r: r["seconds"])
    raw_rate, rebuild_rate = raw["events"] / raw["seconds"], rebuild["events"] / rebuild["seconds"]
    ratio = rebuild_rate / raw_rate
    figures.update({
        "events": raw["events"],
        "raw": {"seconds": round(raw["seconds"], 2), "events_per_s": round(raw_rate),
                "peak_rss_mib": raw["peak_rss_mib"]},
        "rebuild": {"seconds": round(rebuild["seconds"], 2), "events_per_s": round(rebuild_rate),
                    "construct_s": round(rebuild["construct_s"], 2), "peak_rss_mib": rebuild["peak_rss_mib"],
                    "ratio_to_raw": round(ratio, 3), "target": TARGET, "cpu_s": round(rebuild["cpu_s"], 2)},
        "runs": {"raw": raws, "rebuild": rebuilds},
    })
    verdict = "meets" if ratio >= TARGET else "misses"
    print(f"  {raw['events']:,} events; best of {args.repeat}")
    print(f"  (a) raw read+decode   {raw['seconds']:7.2f}s  {raw_rate:>9,.0f} events/s")
    print(f"  (b) rebuild           {rebuild['seconds']:7.2f}s  {rebuild_rate:>9,.0f} events/s  "
          f"ratio {ratio:.3f} ({verdict} the {TARGET}× target); CPU {rebuild['cpu_s']:.1f}s")
    print(f"      + constructing the projection first (no fold: the rebuild folds from zero): {rebuild['construct_s']:.2f}s; "
          f"peak memory {rebuild['peak_rss_mib']:,} MiB")
    if args.profile or ratio < TARGET:
        profile = run_measure("profile", url)
        figures["profile"] = {k: v for k, v in profile.items() if k.startswith("top_")}
        print("  rebuild under cProfile, top costs by own time:")
        print(_indent(profile["top_tottime"]))
        print("  … and by cumulative time:")
        print(_indent(profile["top_cumulative"]))
    return figures


def lag_figures(name: str, url: str, args: argparse.Namespace, commands: list[dict[str, Any]]) -> dict[str, Any]:
    lag = lag_under_load(url, commands, args, ROOT / "var" / "bench" / f"readmodels-worker-{name.lower()}.log")
    print(f"  (c) lag under {lag['rate_achieved']:.0f} rating commands/s (target {args.rate}/s) for "
          f"{args.seconds:.0f}s, worker polling {args.interval}s (SQLite) / LISTEN (PostgreSQL), "
          f"{lag['submits']:,} submits (longest {lag['longest_submit_s']:.1f}s); tracking moved {lag['tracking_moves']:,} times:")
    print(f"      events behind   p50 {lag['lag_events']['p50']:>7,}  p99 {lag['lag_events']['p99']:>7,}  "
          f"max {lag['lag_events']['max']:>7,}  ({lag['lag_events']['samples']:,} samples)")
    print(f"      accepted → processed  p50 {lag['lag_s']['p50']:.2f}s  p99 {lag['lag_s']['p99']:.2f}s  "
          f"max {lag['lag_s']['max']:.2f}s  ({lag['lag_s']['measured']:,} commands); "
          f"drained {lag['drain_after_load_s']:.1f}s after the load stopped")
    return lag


def _indent(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join("    " + line[:160] for line in lines[start:])


def pg_url(base: str, args: argparse.Namespace, fresh: bool) -> str:
    return pg_store_url(base, f"bench_readmodels_{args.departments}_{args.staff}", fresh)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", help="PostgreSQL URL of a database to keep the bench schema in")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--departments", type=int, default=100)
    parser.add_argument("--staff", type=int, default=29)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--rate", type=float, default=200.0, help="rating commands per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the write load runs (0: skip)")
    parser.add_argument("--interval", type=float, default=0.1, help="the worker's polling interval (SQLite)")
    parser.add_argument("--parts", default="rebuild,lag", help="rebuild (with raw), lag, or both")
    parser.add_argument("--profile", action="store_true", help="profile the rebuild even when it meets its target")
    parser.add_argument("--fresh", action="store_true", help="import the stores again")
    parser.add_argument("--json", type=Path, default=ROOT / "var" / "bench" / "readmodels.json")
    parser.add_argument("--measure", choices=["raw", "rebuild", "profile"], help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.db)))
        return

    stores = args.stores.split(",")
    commands = year_commands(args)
    print(f"read-model benchmark: year {YEAR}, {args.departments} departments × {args.staff + 1} people, "
          f"{len(commands):,} commands (weekly ratings); best of {args.repeat}", flush=True)
    figures: dict[str, Any] = {"departments": args.departments, "people": args.departments * (args.staff + 1),
                               "commands": len(commands)}
    if "sqlite" in stores:
        path = ROOT / "var" / "bench" / f"readmodels-{args.departments}x{args.staff}.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        if args.fresh:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        figures["sqlite"] = bench_store("SQLite", f"sqlite:///{path}", args, commands)
    if "postgresql" in stores and args.pg:
        figures["postgresql"] = bench_store("PostgreSQL", pg_url(args.pg, args, args.fresh), args, commands)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2))
    print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
