"""Years (issue 19): many years of a large office, and the memory the read side needs for them.

N years (default 10) of an office (default 100 departments × 29 staff: 3,000 people), each year
generated (api/cli/demo.py: monthly ratings by every rater group, measurements, counted items,
deductions, vetoes, appeals) and closed by a publication and a finalization, imported year by year
into a fresh store (SQLite and/or PostgreSQL). Each step runs as its own process, as in production,
and its peak RSS is the kernel's account of it (`os.wait4`; `serve`: VmHWM):
- import of each year (`appraisal import`): seconds, peak RSS;
- the worker after each year (`appraisal project --once`: resumes from its tracking row, catches up
  with the year just imported): seconds, peak RSS;
- a rebuild from zero (`appraisal project --rebuild`) after the first year and after the last (and
  after every year with `--rebuild-every`): seconds, peak RSS;
- `appraisal serve` after the first year and after the last: started, caught up (its projection
  thread resumes from the tracking row), then 16 concurrent readers (`--readers`) ask for the
  latest year's results and explanations: p50/p99 per endpoint, and the server's peak RSS.

    .venv/bin/python scripts/bench_years.py [--years 10] [--departments 100 --staff 29]
        [--stores sqlite,postgresql --pg postgresql://…] [--code DIR] [--json var/bench/years.json]
        [--quick]

`--quick`: the first and the last year only, in a third of the time (the worker's catch-up of a
year is most of it): the years between are imported alone, and their read models made by one
rebuild before the last year is imported (its figures: "rebuild" on the year before the last).

`--code DIR` runs the commands from another checkout of the code (e.g. `git archive` of an earlier
commit unpacked in DIR), so that a run of the code before a change sits beside the code after it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.cli.demo import demo_commands, write_jsonl  # noqa: E402
from scripts.benchlib import pg_store_url, safe_url  # noqa: E402

FIRST = 2016


def year_commands(year: int, first: bool, departments: int, staff: int) -> list[dict[str, Any]]:
    """One generated year, published in January and finalized two weeks later. The same seed every
    year: the same organisation (set up in the first year only), new ratings."""
    commands = demo_commands(year, departments=departments, staff_per_department=staff, seed=FIRST)
    if not first:
        commands = [c for c in commands if not c["type"].startswith(("org.", "scheme."))]
    commands.append({"type": "year.publish", "id": f"years-{year}-publish", "actor": "admin",
                     "at": f"{year + 1}-01-06T09:00:00+08:00", "year": year})
    commands.append({"type": "year.finalize", "id": f"years-{year}-finalize", "actor": "admin",
                     "at": f"{year + 1}-01-20T09:00:00+08:00", "year": year})
    return commands


class Runner:
    """Runs `appraisal …` as a process of its own, from this checkout or from `--code`."""

    def __init__(self, url: str, code: Path | None) -> None:
        self.url = url
        self.env = {**os.environ, "APPRAISAL_DB": url, "APPRAISAL_LOG_FORMAT": "json",
                    "APPRAISAL_CHECKPOINT_DIR": str(ROOT / "var" / "bench" / "checkpoints")}
        if code is not None:
            self.env["PYTHONPATH"] = str(code)
        self.cwd = str(code or ROOT)

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "api.cli.main", *args]

    def run(self, *args: str) -> dict[str, Any]:
        """Run to the end: wall seconds, CPU seconds (user + system: what survives a busy machine)
        and peak RSS (MiB); raises on a failure."""
        started = time.perf_counter()
        process = subprocess.Popen(self.argv(*args), env=self.env, cwd=self.cwd,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        stderr: list[bytes] = []
        reader = threading.Thread(target=lambda: stderr.append(process.stderr.read()))  # type: ignore[union-attr]
        reader.start()
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        reader.join()
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode:
            raise RuntimeError(f"appraisal {' '.join(args)} failed ({process.returncode}): "
                               f"{b''.join(stderr).decode(errors='replace')[-2000:]}")
        return {"s": round(elapsed, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
                "rss_mib": round(usage.ru_maxrss / 1024)}

    def output(self, *args: str) -> str:
        return subprocess.run(self.argv(*args), env=self.env, cwd=self.cwd, check=True,
                              capture_output=True, text=True).stdout.strip()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def vm(pid: int, name: str) -> int:
    """VmHWM (peak) or VmRSS of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return round(int(line.split()[1]) / 1024)
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle(pid: int, timeout: float = 600) -> None:
    """Wait until a process has used less than 0.1 s of CPU in a second (a server that has
    finished folding the log in its projection thread), so that readers do not measure that."""
    deadline = time.monotonic() + timeout
    before = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(1)
        now = cpu_seconds(pid)
        if now - before < 0.1:
            return
        before = now


def serve_and_read(runner: Runner, year: int, people: list[str], readers: int, rounds: int,
                   events: int) -> dict[str, Any]:
    """Start `serve`, wait until its projection has caught up with the log (`events`), then let
    `readers` threads ask `rounds` times each for the year's results and an explanation."""
    import httpx

    token = runner.output("token", "create", "--person", "p-S1", "--grant", "inspector", "--by", "bench",
                          "--note", "bench years")
    port = free_port()
    started = time.perf_counter()
    server = subprocess.Popen(runner.argv("serve", "--port", str(port), "--projection", "background"),
                              env=runner.env, cwd=runner.cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            while True:
                if server.poll() is not None:
                    raise RuntimeError("serve stopped")
                try:
                    health = client.get("/health").json()
                    if int(health.get("position") or health.get("read_position") or 0) >= events:
                        break
                except (httpx.HTTPError, ValueError):
                    pass
                time.sleep(0.5)
        idle(server.pid)  # its projection thread has folded the log up to the tracking row
        ready = time.perf_counter() - started
        caught_up = vm(server.pid, "VmHWM")
        latencies: dict[str, list[float]] = {"results": [], "explanation": []}
        lock = threading.Lock()

        def reader(number: int) -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
                for index in range(rounds):
                    person = people[(number * rounds + index) % len(people)]
                    for name, path in (("results", f"/years/{year}/results"),
                                       ("explanation", f"/appraisals/{year}:{person}/explanation")):
                        began = time.perf_counter()
                        answer = client.get(path)
                        took = time.perf_counter() - began
                        answer.raise_for_status()
                        with lock:
                            latencies[name].append(took * 1000)

        threads = [threading.Thread(target=reader, args=(n,)) for n in range(readers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        figures: dict[str, Any] = {"ready_s": round(ready, 1), "rss_caught_up_mib": caught_up,
                                   "rss_peak_mib": vm(server.pid, "VmHWM")}
        for name, values in latencies.items():
            values.sort()
            figures[f"{name}_p50_ms"] = round(statistics.median(values), 1)
            figures[f"{name}_p99_ms"] = round(values[min(len(values) - 1, int(len(values) * 0.99))], 1)
        return figures
    finally:
        server.terminate()
        server.wait(timeout=30)


def event_count(url: str) -> int:
    from api.ledger import AppraisalLedger

    ledger = AppraisalLedger(url)
    try:
        return int(ledger.event_count())
    finally:
        ledger.close()


def bench_store(name: str, url: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    runner = Runner(url, args.code)
    rows: list[dict[str, Any]] = []
    figures: dict[str, Any] = {"store": name, "years": rows}
    last = FIRST + args.years - 1
    for year in range(FIRST, last + 1):
        commands = year_commands(year, year == FIRST, args.departments, args.staff)
        path = work / f"year-{year}.jsonl"
        write_jsonl(path, commands)
        people = sorted({c["subject"] for c in commands
                         if c["type"] == "appraisal.open" and c["subject"].startswith("p-")})
        row: dict[str, Any] = {"year": year, "commands": len(commands)}
        row["import"] = runner.run("import", str(path))
        row["events"] = event_count(url)
        if args.quick and year not in (FIRST, last):
            if year == last - 1:  # the read models of every year but the last, at once
                row["rebuild"] = runner.run("project", "--rebuild")
            row["load"] = round(os.getloadavg()[0], 1)
            rows.append(row)
            print(f"  {name} {year}: {json.dumps({k: v for k, v in row.items() if k != 'year'})}", flush=True)
            continue
        row["worker"] = runner.run("project", "--once")
        if year in (FIRST, last) or args.rebuild_every:
            row["rebuild"] = runner.run("project", "--rebuild")
        if year in (FIRST, last) and args.readers:
            row["serve"] = serve_and_read(runner, year, people, args.readers, args.rounds, row["events"])
        row["load"] = round(os.getloadavg()[0], 1)  # the machine is shared: beside every figure
        rows.append(row)
        print(f"  {name} {year}: {json.dumps({k: v for k, v in row.items() if k != 'year'})}", flush=True)
    return figures


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| store | year | events | import s (CPU s) / MiB | worker s (CPU s) / MiB | rebuild s (CPU s) / MiB | serve MiB | "
             "results p50/p99 ms | explanation p50/p99 ms | load |", "|---|---|---|---|---|---|---|---|---|---|"]
    for store in results:
        for row in store["years"]:
            serve = row.get("serve") or {}

            def pair(part: str, row: dict[str, Any] = row) -> str:
                value = row.get(part)
                return f"{value['s']} ({value.get('cpu_s', '?')}) / {value['rss_mib']}" if value else ""

            lines.append(
                f"| {store['store']} | {row['year']} | {row['events']:,} | {pair('import')} | {pair('worker')} | "
                f"{pair('rebuild')} | {serve.get('rss_peak_mib', '')} | "
                + (f"{serve['results_p50_ms']} / {serve['results_p99_ms']} | "
                   f"{serve['explanation_p50_ms']} / {serve['explanation_p99_ms']} |" if serve else "| |")
                + f" {row.get('load', '')} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--departments", type=int, default=100)
    parser.add_argument("--staff", type=int, default=29)
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--pg", help="PostgreSQL URL of a database for the bench schema")
    parser.add_argument("--readers", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=20, help="requests of each kind per reader")
    parser.add_argument("--rebuild-every", action="store_true", help="rebuild after every year")
    parser.add_argument("--quick", action="store_true",
                        help="measure the first and the last year only (the years between: imported alone)")
    parser.add_argument("--code", type=Path, help="run the commands from this checkout of the code")
    parser.add_argument("--json", type=Path, default=ROOT / "var" / "bench" / "years.json")
    parser.add_argument("--table", type=Path, help="only print the table of an earlier run's JSON")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(args.table.read_text())["results"]))
        return
    tag = f"{args.departments}x{args.staff}x{args.years}"
    work = ROOT / "var" / "bench" / f"years-{tag}{'-' + args.code.name if args.code else ''}"
    work.mkdir(parents=True, exist_ok=True)
    results = []
    for name in args.stores.split(","):
        if name == "sqlite":
            path = work / "years.db"
            for leftover in work.glob("years.db*"):
                leftover.unlink()
            url = f"sqlite:///{path}"
        elif name == "postgresql":
            if not args.pg:
                print("  postgresql: skipped (no --pg)")
                continue
            url = pg_store_url(args.pg, f"bench_years_{args.departments}_{args.staff}", fresh=True)
        else:
            raise SystemExit(f"unknown store {name}")
        print(f"  {name}: {args.years} years of {args.departments} departments × {args.staff} staff "
              f"into {safe_url(url)}", flush=True)
        results.append(bench_store(name, url, args, work))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results},
                                    indent=2))
    print(table(results))


if __name__ == "__main__":
    main()
