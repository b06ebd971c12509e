"""CPU per request at an office's peak, per endpoint, for this tree beside another commit: a figure
that survives a noisy machine, where latencies do not.

    .venv/bin/python scripts/bench_cpu.py --pg postgresql://… [--old fdc4e4d] [--requests 300] [--rounds 2]

The office of `scripts/bench http-peak` (`bench_compare.office`: 10 departments of 29 staff and a
head, its monthly year imported, read models built, a token per person) is built once, by this
tree. Each tree in turn serves it as in production (`appraisal serve --projection none`, one
process, with `appraisal project` beside it), the trees alternating round by round. For each
endpoint of the http-peak mix (the same callers), on one keep-alive connection, one after another:
`--requests` requests to warm up (tokens, aggregates, connections), then the same requests again,
measured: the CPU time of the server process (every thread: /proc/PID/task/*/schedstat), of the
worker, and of PostgreSQL (its processes' utime+stime), divided by the requests. The mix's mean
weights the endpoints as http-peak offers them (50 commands/s, 200 reads/s); one process serves
at most 1 / (mean CPU per request) requests a second on one core. Least of the rounds per tree.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from scripts.bench_compare import CLI, READS, WRITE, YEAR, Tree, drop_schema, schema_url, unpack  # noqa: E402
from scripts.bench_http import free_port  # noqa: E402

WRITES, READS_PER_S = 50.0, 200.0
SHARES = {WRITE: WRITES / (WRITES + READS_PER_S),
          **{endpoint: share * READS_PER_S / (WRITES + READS_PER_S) for endpoint, share, _ in READS}}


def threads_ns(pid: int) -> int:
    """CPU time (ns) of every thread of `pid` (its threads live as long as it)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
    return total


def postgres_ns(port: int) -> int:
    """CPU time (ns) of the PostgreSQL server listening on `port`: its postmaster and children."""
    master = None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError):
            continue
        if args and args[0].endswith(b"postgres") and str(port).encode() in args:
            master = int(pid)
            break
    if master is None:
        return 0
    hz = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(pid) == master or int(fields[1]) == master:
            total += (int(fields[11]) + int(fields[12])) * 1_000_000_000 // hz
    return total


def measure(tree: Tree, url: str, people: dict[str, Any], requests: int, pg_port: int, logs: Path) -> dict[str, Any]:
    port = free_port()
    env = {**tree.env, "APPRAISAL_DB": url, "APPRAISAL_LOG_FORMAT": "json"}
    worker_log, server_log = (logs / f"cpu-{tree.name}-worker.log").open("w"), (logs / f"cpu-{tree.name}-server.log").open("w")
    worker = subprocess.Popen([sys.executable, "-c", CLI, "project"], cwd=tree.path, env=env,
                              stdout=worker_log, stderr=subprocess.STDOUT)
    server = subprocess.Popen([sys.executable, "-c", CLI, "serve", "--port", str(port), "--projection", "none"],
                              cwd=tree.path, env=env, stdout=server_log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"{tree.name}: the server did not start; see {logs}")
            time.sleep(0.3)
        staff, raters = people["staff"], people["raters"]
        stride = 7919  # as bench_compare.schedule: consecutive requests meet different appraisals
        figures: dict[str, Any] = {}
        with httpx.Client(base_url=base, timeout=60) as client:
            def send(endpoint: str, i: int) -> httpx.Response:
                if endpoint == WRITE:
                    token, appraisal, role = raters[(i * stride) % len(raters)]
                    body = {"id": f"cpu-{secrets.token_hex(6)}-{i}", "leaf": "business", "period": f"{YEAR}-{1 + i % 12:02d}",
                            "rater_role": role, "score": str(60 + (i * 13) % 41)}
                    return client.post(f"/appraisals/{appraisal}/ratings", json=body,
                                       headers={"Authorization": f"Bearer {token}"})
                role = next(r for e, _, r in READS if e == endpoint)
                token, appraisal, _ = staff[(i * stride) % len(staff)]
                token = token if role == "staff" else people[role]
                return client.get(endpoint.split(" ", 1)[1].replace("{a}", appraisal),
                                  headers={"Authorization": f"Bearer {token}"})

            for endpoint in SHARES:
                for i in range(requests):  # warm-up: the same requests
                    answer = send(endpoint, i)
                    if answer.status_code not in (200, 201):
                        raise SystemExit(f"{tree.name} {endpoint}: {answer.status_code} {answer.text[:300]}")
                before = threads_ns(server.pid), threads_ns(worker.pid), postgres_ns(pg_port)
                for i in range(requests):
                    send(endpoint, i)
                if endpoint == WRITE:
                    time.sleep(1)  # the worker catches up with the ratings
                after = threads_ns(server.pid), threads_ns(worker.pid), postgres_ns(pg_port)
                figures[endpoint] = {name: (a - b) / 1e6 / requests
                                     for name, a, b in zip(("server_ms", "worker_ms", "postgres_ms"), after, before, strict=True)}
    finally:
        for process in (server, worker):
            process.terminate()
        for process in (server, worker):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        worker_log.close()
        server_log.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", required=True, help="PostgreSQL URL of a database to create a throwaway schema in")
    parser.add_argument("--old", default="fdc4e4d", help="the commit to compare with")
    parser.add_argument("--requests", type=int, default=300, help="requests per endpoint, after as many to warm up")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    pg_port = int(httpx.URL(args.pg).port or 5432)
    logs = ROOT / "var" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    new_ref = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
    print(f"  old: {args.old}; new: this tree at {new_ref}; load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    schema = f"cpu_{secrets.token_hex(3)}"
    url = schema_url(args.pg, schema)
    runs: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
    with tempfile.TemporaryDirectory(prefix="appraisal-cpu-") as tmp:
        trees = [Tree("old", unpack(args.old, Path(tmp))), Tree("new", ROOT)]
        try:
            people = trees[1].measure("office", url, json.dumps({"departments": 10, "staff": 29}))
            for number in range(args.rounds):
                for tree in trees if number % 2 == 0 else trees[::-1]:
                    runs[tree.name].append(measure(tree, url, people, args.requests, pg_port, logs))
                    mean = sum(SHARES[e] * f["server_ms"] for e, f in runs[tree.name][-1].items())
                    print(f"  round {number + 1} {tree.name:>3}: server {mean:.2f} ms a request (the mix); "
                          f"load average {os.getloadavg()[0]:.1f}", flush=True)
        finally:
            drop_schema(args.pg, schema)
    least = {name: {e: {k: min(run[e][k] for run in rounds) for k in rounds[0][e]} for e in SHARES}
             for name, rounds in runs.items()}
    print("\n| endpoint (share of the mix) | server CPU old | new | new/old | worker new | PostgreSQL new |")
    print("|---|---:|---:|---:|---:|---:|")
    for endpoint, share in SHARES.items():
        o, n = least["old"][endpoint], least["new"][endpoint]
        print(f"| {endpoint} ({share:.0%}) | {o['server_ms']:.2f} ms | {n['server_ms']:.2f} ms | "
              f"{n['server_ms'] / o['server_ms']:.2f} | {n['worker_ms']:.2f} ms | {n['postgres_ms']:.2f} ms |")
    means = {name: {k: sum(SHARES[e] * least[name][e][k] for e in SHARES) for k in ("server_ms", "worker_ms", "postgres_ms")}
             for name in least}
    o, n = means["old"], means["new"]
    print(f"| **the mix, mean** | **{o['server_ms']:.2f} ms** | **{n['server_ms']:.2f} ms** | "
          f"{n['server_ms'] / o['server_ms']:.2f} | {n['worker_ms']:.2f} ms | {n['postgres_ms']:.2f} ms |")
    for name, mean in means.items():
        print(f"  {name}: one server process serves at most {1000 / mean['server_ms']:.0f} requests/s on a core of its own; "
              f"the offered {WRITES + READS_PER_S:.0f}/s takes {(WRITES + READS_PER_S) * mean['server_ms'] / 1000:.2f} core "
              f"(server) + {(WRITES + READS_PER_S) * mean['worker_ms'] / 1000:.2f} (worker) + "
              f"{(WRITES + READS_PER_S) * mean['postgres_ms'] / 1000:.2f} (PostgreSQL)")
    print(f"  load average {os.getloadavg()[0]:.1f} at the end")
    if args.json:
        args.json.write_text(json.dumps({"old": args.old, "new": new_ref, "least": least, "means": means, "runs": runs},
                                        indent=2))


if __name__ == "__main__":
    main()
