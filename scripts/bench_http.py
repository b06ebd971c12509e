"""Rating writes over HTTP on PostgreSQL, beside a raw-insert endpoint of the same shape, measured in
the same run (issue 4).

    .venv/bin/python scripts/bench_http.py --pg postgresql://… [--connections 16 --departments 10 --staff 29]

Starts `appraisal serve` (uvicorn, one process) on loopback against a fresh schema holding a demo
organisation and its open appraisals, with the raw baseline mounted
(`APPRAISAL_BENCH_RAW_ENDPOINT=1`). 16 client connections (keep-alive, asyncio) post valid ratings,
each with its own command id, by the raters SCORING.md §5 allows (the leader in charge, the
department head, the staff member themself), over weekly periods:

- `POST /appraisals/{id}/ratings`: authentication, validation, the domain's rules, events, the
  command-id table, the hash chain, one transaction (a plain `def` route on a worker thread:
  `AppraisalLedger.submit_one`);
- `POST /bench/raw/appraisals/{id}/ratings`: the same middleware, authentication and body
  validation, then one INSERT of the body as JSON into a plain table on the same connection pool
  (a plain `def` endpoint on a worker thread, as one would write it by hand).

The load comes from `wrk` (C, one thread, `--connections` keep-alive connections, a Lua script
making each request's body and command id; installed from Debian by `scripts/bench`), so that the
client takes as little of the machine's two cores as possible; `--client httpx` uses a Python
asyncio client instead (much heavier: it competes with the server for the CPU).

Each endpoint is measured in alternating rounds after a warm-up, first at full load (each
connection sends its next request as soon as the last is answered); the best round of each is
reported: requests/s and p50/p99 latency as the clients saw it. Then (`--paced`, default 0.5) both
endpoints are offered the same fixed rate, half the raw endpoint's best, and the worse round's
latency is reported. Target: ledger >= 0.5x raw at full load, and at 0.5x raw's rate the ledger
keeps up with p99 < 50 ms. (At full load a closed loop's latency is connections / throughput for any
service; it is printed too, but it measures capacity, not the wait at a given load.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from api.cli.demo import demo_commands  # noqa: E402
from api.http.auth import Credentials  # noqa: E402
from api.ledger import AppraisalLedger  # noqa: E402

SETUP_TYPES = {"scheme.publish", "org.department", "org.person", "appraisal.open"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(url: str, departments: int, staff: int) -> list[tuple[str, str, str]]:
    """Load the organisation and open the appraisals; return (token, appraisal, role) per rater."""
    setup = [c for c in demo_commands(2025, departments=departments, staff_per_department=staff)
             if c["type"] in SETUP_TYPES]
    ledger = AppraisalLedger(url)
    try:
        ledger.submit(setup)
        org = ledger.organisation()
        assert org is not None
        credentials = Credentials(ledger)
        tokens: dict[str, str] = {}

        def token(person: str) -> str:
            if person not in tokens:
                tokens[person] = credentials.create(person, (), created_by="bench")[0]
            return tokens[person]

        raters = []
        for person_id, person in sorted(org.people.items()):
            if person["position"] != "staff":
                continue
            department = org.departments[person["department"]]
            appraisal = f"2025:{person_id}"
            raters.append((token(department["in_charge"]), appraisal, "in_charge"))
            raters.append((token(org.head_of(person["department"]) or ""), appraisal, "department_head"))
            raters.append((token(person_id), appraisal, "self"))
        return raters
    finally:
        ledger.close()


async def measure(base: str, path: str, raters: list[tuple[str, str, str]], requests: int,
                  connections: int, tag: str) -> dict[str, float]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = iter(range(requests))
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    async def client(number: int, http: httpx.AsyncClient) -> None:
        for i in counter:
            token, appraisal, role = raters[(i * 7 + number) % len(raters)]
            week = 1 + (i // len(raters)) % 52
            body = {"id": f"{tag}-{i}", "leaf": "business", "period": f"2025-W{week:02d}", "rater_role": role,
                    "score": str(60 + (i * 13) % 41)}  # a rater's business time: the server's clock
            started = time.perf_counter()
            response = await http.post(path.format(appraisal=appraisal), json=body,
                                       headers={"Authorization": f"Bearer {token}"})
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(n, http) for n in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    ok = statuses.get(201, 0)
    if ok != requests:
        raise SystemExit(f"{path}: {statuses} (expected {requests} × 201)")
    return {"requests": requests, "seconds": round(elapsed, 3), "rps": round(requests / elapsed, 1),
            "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2)}


WRK_SCRIPT = """
local raters = {%(raters)s}
local path = %(path)s
local tag = %(tag)s
local threads = 0
local stride = %(stride)d
local counter = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
request = function()
  counter = counter + 1
  local i = counter * 16 + tid
  local r = raters[(counter * stride) %% #raters + 1]
  local week = 1 + math.floor(counter / #raters) %% 52
  local body = string.format('{"id":"%%s-%%d-%%d","leaf":"business","period":"2025-W%%02d",' ..
    '"rater_role":"%%s","score":"%%d"}', tag, tid, counter, week, r[3], 60 + (i * 13) %% 41)
  return wrk.format("POST", string.format(path, r[2]),
    {["Authorization"] = "Bearer " .. r[1], ["Content-Type"] = "application/json"}, body)
end
%(pace)s
done = function(summary, latency, requests)
  io.write(string.format('WRKJSON {"requests": %%d, "duration_us": %%d, "non2xx": %%d, "errors": %%d, ' ..
    '"p50_us": %%d, "p99_us": %%d, "max_us": %%d}\\n', summary.requests, summary.duration,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
"""


# A fixed offered rate (`--paced`, `--offered`): every request (on whichever connection is free) takes the next slot
# of one schedule, 1/rate apart, as wrk2 does; a connection waits for its slot before sending. When
# the server falls behind, slots are taken at once and the achieved rate shows it.
WRK_PACE = """
local ffi = require("ffi")
ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } bench_timespec; int clock_gettime(int, bench_timespec *); ]]
local now_ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, now_ts)
  return tonumber(now_ts.tv_sec) * 1000 + tonumber(now_ts.tv_nsec) / 1e6
end
local interval_ms = %(interval_ms)r
local next_slot = nil
function delay()
  local now = now_ms()
  if next_slot == nil then next_slot = now end
  next_slot = next_slot + interval_ms
  local wait = next_slot - now
  if wait < 0 then return 0 end
  return math.floor(wait)
end
"""


def server_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of the server process and its worker processes so far."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def lua(value: str) -> str:
    return json.dumps(value)  # a JSON string of ASCII is a valid Lua string literal


def measure_wrk(base: str, path: str, raters: list[tuple[str, str, str]], seconds: float,
                connections: int, tag: str, rate: float | None = None) -> dict[str, float]:
    """One round of `wrk` against one endpoint, as fast as it answers or at a fixed offered `rate`
    (requests/s); every answer must be a 2xx."""
    # Consecutive requests go to raters far apart (a stride prime to their number), so the requests
    # in flight mostly rate different appraisals, as in an office; some still meet on one appraisal.
    stride = next(s for s in range(int(len(raters) * 0.618), len(raters) * 2) if math.gcd(s, len(raters)) == 1)
    table = ",".join(f"{{{lua(t)},{lua(a)},{lua(r)}}}" for t, a, r in raters)
    pace = WRK_PACE % {"interval_ms": 1000.0 / rate} if rate else ""
    script = WRK_SCRIPT % {"stride": stride, "raters": table, "pace": pace,
                           "path": lua(path.replace("{appraisal}", "%s")), "tag": lua(tag)}
    script_path = ROOT / "var" / "bench" / "http-load.lua"
    script_path.write_text(script)
    done = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{round(seconds)}s", "--timeout", "30s",
                           "-s", str(script_path), base], capture_output=True, text=True, check=True)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no figures:\n{done.stdout}\n{done.stderr}")
    figures = json.loads(line.removeprefix("WRKJSON "))
    if figures["non2xx"] or figures["errors"]:
        raise SystemExit(f"{path}: {figures} (every answer must be 201)")
    elapsed = figures["duration_us"] / 1e6
    return {"requests": figures["requests"], "seconds": round(elapsed, 3),
            "rps": round(figures["requests"] / elapsed, 1), "p50_ms": round(figures["p50_us"] / 1000, 2),
            "p99_ms": round(figures["p99_us"] / 1000, 2), "max_ms": round(figures["max_us"] / 1000, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", required=True, help="PostgreSQL URL of a database to create a throwaway schema in")
    parser.add_argument("--requests", type=int, default=3000, help="requests per round and endpoint")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="server processes (appraisal serve --workers)")
    # The import bench's office: 10 departments of 29 staff and a head. (With a small one, say 6 x 7,
    # about 3 of 16 requests in flight rate an appraisal another is rating, and wait for it: commands
    # on one appraisal are decided one after another.)
    parser.add_argument("--departments", type=int, default=10)
    parser.add_argument("--staff", type=int, default=29)
    parser.add_argument("--client", choices=["wrk", "httpx"], default="wrk" if shutil.which("wrk") else "httpx",
                        help="the load generator (default: wrk when installed)")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each wrk round")
    parser.add_argument("--paced", type=float, default=0.5, help=(
        "then offer both endpoints this fraction of the raw endpoint's best rate (wrk only; 0: skip) and "
        "measure latency at that load"))
    parser.add_argument("--offered", type=float, help="offer this many requests/s instead (to compare runs)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    separator = "&" if "?" in args.pg else "?"
    log_path = ROOT / "var" / "bench" / "http-server.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    servers: list[tuple[subprocess.Popen[bytes], str, Any]] = []  # (process, schema, log)

    def start(name: str, **env: str) -> tuple[subprocess.Popen[bytes], str, list[tuple[str, str, str]]]:
        """A server on a fresh schema of its own (demo organisation, open appraisals): process, base URL, raters."""
        schema = f"bench_http_{secrets.token_hex(4)}"
        url = f"{args.pg}{separator}schema={schema}&pool_size={args.connections + 4}&max_overflow=4"
        raters = prepare(url, args.departments, args.staff)
        port = free_port()
        log = log_path.with_name(log_path.name.replace("server", name)).open("w")  # noqa: SIM115 - closed below
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("appraisal")), "serve", "--port", str(port),
             # as in production: the read models are kept by their own worker (`appraisal
             # project`), not by a thread competing with the writes
             "--projection", "none", "--workers", str(args.workers)],
            env={**os.environ, "APPRAISAL_DB": url, "APPRAISAL_BENCH_RAW_ENDPOINT": "1",
                 "APPRAISAL_LOG_FORMAT": "json", "APPRAISAL_TOKEN_CACHE_SECONDS": "2", **env},
            stdout=log, stderr=log)
        servers.append((server, schema, log))
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    return server, base, raters
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"the server did not start; see {log.name}")
            time.sleep(0.2)

    try:
        server, base, raters = start("server")
        ledger_path, raw_path = "/appraisals/{appraisal}/ratings", "/bench/raw/appraisals/{appraisal}/ratings"

        def one_round(path: str, tag: str, warm: bool = False, rate: float | None = None) -> dict[str, float]:
            process, url, people = server, base, raters
            cpu = server_cpu_seconds(process.pid)
            if args.client == "wrk":
                figures = measure_wrk(url, path, people, 3 if warm else args.seconds, args.connections, tag, rate)
            else:
                requests = min(500, args.requests) if warm else args.requests
                figures = asyncio.run(measure(url, path, people, requests, args.connections, tag))
            figures["server_cpu_ms"] = round((server_cpu_seconds(process.pid) - cpu) / figures["requests"] * 1000, 3)
            return figures

        one_round(raw_path, "warm-raw", warm=True)
        one_round(ledger_path, "warm-ledger", warm=True)
        rounds: dict[str, list[dict[str, float]]] = {"raw": [], "ledger": []}
        for number in range(args.rounds):
            rounds["raw"].append(one_round(raw_path, f"raw{number}"))
            rounds["ledger"].append(one_round(ledger_path, f"ledger{number}"))
        paced: dict[str, list[dict[str, float]]] = {"raw": [], "ledger": []}
        offered = args.offered or round(args.paced * max(r["rps"] for r in rounds["raw"]), 1)
        if args.paced and args.client == "wrk":
            for number in range(args.rounds):
                paced["raw"].append(one_round(raw_path, f"raw-paced{number}", rate=offered))
                paced["ledger"].append(one_round(ledger_path, f"ledger-paced{number}", rate=offered))
    finally:
        import psycopg

        for process, schema, log in servers:
            process.terminate()
            process.wait(timeout=30)
            log.close()
            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    best = {name: max(runs, key=lambda r: r["rps"]) for name, runs in rounds.items()}
    ratio = best["ledger"]["rps"] / best["raw"]["rps"]
    for name in ("raw", "ledger"):
        figure = best[name]
        print(f"{name:7s} {figure['rps']:8.1f} requests/s   p50 {figure['p50_ms']:6.2f} ms   "
              f"p99 {figure['p99_ms']:6.2f} ms   server CPU {figure['server_cpu_ms']:.2f} ms/request   "
              f"({figure['requests']} requests, {args.connections} connections, {args.workers} server process(es))")
    print(f"ledger/raw {ratio:.2f} at full load (target >= 0.50)")
    # Latency at the target's load: both endpoints offered the same fixed rate, half the raw
    # endpoint's best. (At full load a closed loop's latency is connections / rate, whatever the
    # service: it says how fast, not how long a request waits at a given load.) The worse round counts.
    at_load: dict[str, dict[str, float]] = {}
    for name, runs in paced.items():
        if runs:
            at_load[name] = max(runs, key=lambda r: r["p99_ms"])
            print(f"{name:7s} offered {offered:6.1f}/s: achieved " +
                  ", ".join(f"{r['rps']:.1f}/s p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms" for r in runs))
    sustained = bool(at_load) and at_load["ledger"]["rps"] >= 0.97 * offered
    met = ratio >= 0.5 and sustained and at_load["ledger"]["p99_ms"] < 50
    if at_load:
        print(f"ledger at {args.paced:.2f}x raw's rate: {'sustained' if sustained else 'NOT sustained'}, "
              f"p99 {at_load['ledger']['p99_ms']:.2f} ms (target < 50 ms); target {'met' if met else 'NOT met'}")
    figures: dict[str, Any] = {"client": args.client, "connections": args.connections, "workers": args.workers,
                               "raters": len(raters), **best,
                               "ratio": round(ratio, 3), "rounds": rounds,
                               "paced": {"fraction": args.paced, "offered_rps": offered, "rounds": paced,
                                         "worst": at_load},
                               "target": {"ratio": 0.5, "p99_ms": 50, "p99_at": f"{args.paced}x raw's rate"},
                               "met": met}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
