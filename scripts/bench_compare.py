"""This tree beside an older commit (issue 16: one house), measured in the same run on the same
PostgreSQL: the machine is shared and noisy, so only figures taken side by side compare.

    .venv/bin/python scripts/bench_compare.py --pg postgresql://… [--old 0c87d93] [--parts import,rebuild,http]
        [--departments 100 --staff 29 --periods monthly] [--repeat 3] [--seconds 60 --writes 50 --reads 200]

The old tree is `git archive OLD` unpacked in a temporary directory; it runs on this tree's venv
with PYTHONPATH pointing at it (its dependencies are this tree's, less `fastapi-offline`). Every
measurement runs in a fresh process of its own tree (each checks that it imported that tree's
`api`), the trees alternating round by round so that a slow spell of the machine falls on both.

- import:  the commands of a generated year (api/cli/demo.py: `--departments` of `--staff` staff and a
           head, `--periods` ratings; 100 x 30 = 3,000 people, monthly: 140,331 commands), the same
           file for both trees, submitted by `AppraisalLedger.submit` in one process (the old tree's
           `processes=1`: its multi-process import is not what is compared) into a fresh schema,
           batches of 500; commands/s, best of `--repeat`.
- rebuild: every read model from zero (`ReadModelProjection(ledger, resume=False).rebuild()`, as
           `appraisal project --rebuild` runs it, one process) on each tree's last imported store;
           events/s, best of `--repeat`.
- http:    an office's peak, open loop: an office (`--http-departments` of `--staff` staff and a head,
           its monthly year imported, read models built) served by `appraisal serve --projection none`
           with `appraisal project` following beside it (as in production), offered `--writes`
           rating commands/s and `--reads` reads/s (a fixed mix of endpoints) for `--seconds`
           seconds after a warm-up. Every request has a scheduled send time (evenly spaced); its
           latency runs from that time to the end of its answer, so a server (or client) that falls
           behind is charged for the wait (no coordinated omission). p50/p99/max per endpoint.
           The load comes from a small asyncio HTTP/1.1 client in this process (keep-alive, a new
           connection whenever none is idle).
Targets: import and rebuild at least 0.9x the old figures; every endpoint's p99 under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
YEAR = 2025
CLI = ("import sys\ntry:\n    from api.cli.main import app\nexcept ImportError:\n    from api.cli import app\n"
       "sys.argv[0] = 'appraisal'; app()")
SETUP_TYPES = {"scheme.publish", "org.department", "org.person", "appraisal.open"}


# --- in a child process, on one tree ---------------------------------------------------------------

def located(*paths: str) -> Any:
    """The first of `module:name` that imports: the trees keep some things in different modules
    (issue 16 moved api's modules into sub-packages and split projections/readmodels.py)."""
    import importlib

    for path in paths:
        module, name = path.split(":")
        try:
            return getattr(importlib.import_module(module), name)
        except ModuleNotFoundError:
            continue
    raise ImportError(f"none of {paths}")


PROJECTION = ("projections.projection:ReadModelProjection", "projections.readmodels:ReadModelProjection")
DEMO = ("api.cli.demo:demo_commands", "api.demo:demo_commands")

def child(kind: str, tree: str, url: str, arg: str) -> dict[str, Any]:
    """One measurement on the tree at `tree` (first on sys.path through PYTHONPATH)."""
    import importlib
    import inspect

    # The venv's editable install maps the packages to this tree ahead of sys.path: drop that
    # finder, so that every package (api, projections, domain) comes from `tree`.
    sys.meta_path[:] = [finder for finder in sys.meta_path  # a class (setuptools' finder) or an instance
                        if "editable" not in str(getattr(finder, "__module__", type(finder).__module__)).lower()]
    for name in ("api", "projections", "domain"):
        here = Path(importlib.import_module(name).__file__ or "").resolve().parent.parent
        if here != Path(tree).resolve():
            raise SystemExit(f"imported {name} from {here}, not from {tree}")
    from api.ledger import AppraisalLedger

    figures: dict[str, Any] = {}
    if kind == "import":
        with open(arg, encoding="utf-8") as lines:
            commands = [json.loads(line) for line in lines]
        ledger = AppraisalLedger(url)
        one = {"processes": 1} if "processes" in inspect.signature(ledger.submit).parameters else {}
        cpu, started = time.process_time(), time.perf_counter()
        ledger.submit(commands, batch_size=500, **one)
        figures["seconds"] = time.perf_counter() - started
        figures["cpu_s"] = time.process_time() - cpu
        figures["commands"] = len(commands)
        figures["events"] = ledger.event_count()
        ledger.close()
    elif kind == "rebuild":
        ReadModelProjection = located(*PROJECTION)  # noqa: N806

        ledger = AppraisalLedger(url)
        projection = ReadModelProjection(ledger, resume=False)
        one = {"processes": 1} if "processes" in inspect.signature(projection.rebuild).parameters else {}
        cpu, started = time.process_time(), time.perf_counter()
        figures["events"] = projection.rebuild(**one)
        figures["seconds"] = time.perf_counter() - started
        figures["cpu_s"] = time.process_time() - cpu
        projection.close()
        ledger.close()
    elif kind == "office":
        figures = office(url, json.loads(arg))
    else:
        raise SystemExit(f"unknown measurement {kind}")
    return figures


def office(url: str, shape: dict[str, Any]) -> dict[str, Any]:
    """An office's year in the store, its read models caught up, and tokens: (token, appraisal,
    role) per rater, the staff's own tokens, an admin's and an inspector's."""
    from api.http.auth import Credentials
    from api.ledger import AppraisalLedger

    demo_commands = located(*DEMO)
    ReadModelProjection = located(*PROJECTION)  # noqa: N806

    ledger = AppraisalLedger(url)
    ledger.submit(demo_commands(YEAR, departments=shape["departments"], staff_per_department=shape["staff"]),
                  batch_size=500, **({"processes": 1} if "processes" in _params(ledger.submit) else {}))
    projection = ReadModelProjection(ledger)
    projection.catch_up()
    projection.close()
    org = ledger.organisation()
    credentials = Credentials(ledger)
    tokens: dict[str, str] = {}

    def token(person: str) -> str:
        if person not in tokens:
            tokens[person] = credentials.create(person, (), created_by="bench")[0]
        return tokens[person]

    raters, staff = [], []
    for person_id, person in sorted(org.people.items()):
        if person["position"] != "staff":
            continue
        department = org.departments[person["department"]]
        appraisal = f"{YEAR}:{person_id}"
        raters.append((token(department["in_charge"]), appraisal, "in_charge"))
        raters.append((token(org.head_of(person["department"]) or ""), appraisal, "department_head"))
        raters.append((token(person_id), appraisal, "self"))
        staff.append((token(person_id), appraisal, person_id))
    admin = credentials.create("hr-office", ("admin",), created_by="bench")[0]
    inspector = credentials.create("inspection", ("inspector",), created_by="bench")[0]
    ledger.close()
    return {"raters": raters, "staff": staff, "admin": admin, "inspector": inspector}


def _params(function: Any) -> Any:
    import inspect

    return inspect.signature(function).parameters


# --- the trees ------------------------------------------------------------------------------------

class Tree:
    def __init__(self, name: str, path: Path) -> None:
        self.name, self.path = name, path
        self.env = {**os.environ, "PYTHONPATH": str(path), "PYTHONHASHSEED": "0"}

    def measure(self, kind: str, url: str, arg: str = "") -> dict[str, Any]:
        done = subprocess.run([sys.executable, __file__, "--child", kind, "--tree", str(self.path), "--db", url,
                               "--arg", arg], capture_output=True, text=True, env=self.env, cwd=self.path,
                              timeout=7200)
        if done.returncode != 0:
            raise SystemExit(f"{self.name}: {kind} failed:\n{done.stderr[-4000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def start(self, args: list[str], url: str, log: Path) -> subprocess.Popen[bytes]:
        out = log.open("w")  # noqa: SIM115 - the child holds it; closed with the process
        return subprocess.Popen([sys.executable, "-c", CLI, *args], cwd=self.path, stdout=out, stderr=out,
                                env={**self.env, "APPRAISAL_DB": url, "APPRAISAL_LOG_FORMAT": "json"})


def unpack(ref: str, into: Path) -> Path:
    """The tree of commit `ref` (git archive) under `into`."""
    target = into / f"old-{ref}"
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", ref],
                             capture_output=True, check=True).stdout
    tar_path = into / "old.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(target, filter="data")
    tar_path.unlink()
    return target


def schema_url(base: str, schema: str) -> str:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{base}{'&' if '?' in base else '?'}schema={schema}"


def drop_schema(base: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


# --- import and rebuild ---------------------------------------------------------------------------

def import_and_rebuild(args: argparse.Namespace, trees: list[Tree], work: Path, parts: set[str]) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from api.cli.demo import demo_commands, write_jsonl  # this tree's

    commands_path = work / "year.jsonl"
    count = write_jsonl(commands_path, demo_commands(YEAR, departments=args.departments,
                                                     staff_per_department=args.staff, periods=args.periods))
    people = args.departments * (args.staff + 1)
    print(f"  a year of {people:,} people ({args.periods} ratings): {count:,} commands; best of {args.repeat}",
          flush=True)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {t.name: {"import": [], "rebuild": []} for t in trees}
    stores: dict[str, str] = {}
    for number in range(args.repeat):
        for tree in trees if number % 2 == 0 else trees[::-1]:
            old_schema = stores.get(tree.name)
            schema = f"cmp_{tree.name}_{secrets.token_hex(3)}"
            url = schema_url(args.pg, schema)
            figure = tree.measure("import", url, str(commands_path))
            runs[tree.name]["import"].append(figure)
            print(f"  round {number + 1} {tree.name:>4} import  {figure['commands'] / figure['seconds']:>9,.0f} "
                  f"commands/s ({figure['seconds']:.1f} s, {figure['events']:,} events)", flush=True)
            stores[tree.name] = schema
            if old_schema:
                drop_schema(args.pg, old_schema)
    if "rebuild" in parts:
        for number in range(args.repeat):
            for tree in trees if number % 2 == 0 else trees[::-1]:
                url = f"{args.pg}{'&' if '?' in args.pg else '?'}schema={stores[tree.name]}"
                figure = tree.measure("rebuild", url)
                runs[tree.name]["rebuild"].append(figure)
                print(f"  round {number + 1} {tree.name:>4} rebuild {figure['events'] / figure['seconds']:>9,.0f} "
                      f"events/s ({figure['seconds']:.1f} s, {figure['events']:,} events)", flush=True)
    for schema in stores.values():
        drop_schema(args.pg, schema)
    best: dict[str, dict[str, float]] = {}
    for tree in trees:
        imports, rebuilds = runs[tree.name]["import"], runs[tree.name]["rebuild"]
        best[tree.name] = {"import_commands_per_s": round(max(r["commands"] / r["seconds"] for r in imports)),
                           # CPU time moves less than wall time on a shared machine (the server's is not in it)
                           "import_cpu_us_per_command": round(min(r["cpu_s"] / r["commands"] for r in imports) * 1e6)}
        if rebuilds:
            best[tree.name]["rebuild_events_per_s"] = round(max(r["events"] / r["seconds"] for r in rebuilds))
            best[tree.name]["rebuild_cpu_us_per_event"] = round(min(r["cpu_s"] / r["events"] for r in rebuilds) * 1e6)
    return {"people": people, "periods": args.periods, "commands": count, "repeat": args.repeat,
            "best": best, "runs": runs}


# --- HTTP at an office's peak ---------------------------------------------------------------------

class Client:
    """A minimal HTTP/1.1 client over asyncio streams: keep-alive connections, a new one whenever
    none is idle, up to `most` (then a request waits for one: that wait counts in its latency,
    which runs from its scheduled time). A request that cannot connect or read counts as status 0.
    A connection that was idle may have been closed by the server meanwhile (uvicorn closes one
    idle for 5 s): when such a reused connection gives no byte of an answer, the request is sent
    again once on a new connection, as HTTP clients do (urllib3); the benchmark's commands carry
    ids, so sending one again is a no-op if it was accepted."""

    def __init__(self, host: str, port: int, most: int = 256) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.opened = 0
        self.free = asyncio.Semaphore(most)

    async def request(self, method: str, path: str, token: str, body: bytes | None = None) -> int:
        async with self.free:
            return await self._request(method, path, token, body)

    async def _request(self, method: str, path: str, token: str, body: bytes | None) -> int:
        reused = bool(self.idle)
        status = await self._exchange(method, path, token, body)
        if status is None and reused:  # the server closed it while it was idle: once more, on a new one
            status = await self._exchange(method, path, token, body, fresh=True)
        return status or 0

    async def _exchange(self, method: str, path: str, token: str, body: bytes | None, fresh: bool = False
                        ) -> int | None:
        """The status of one request and answer (0: it failed; None: not a byte of an answer came)."""
        try:
            if self.idle and not fresh:
                reader, writer = self.idle.pop()
            else:
                reader, writer = await asyncio.open_connection(self.host, self.port)
                self.opened += 1
        except OSError:
            return 0
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Authorization: Bearer {token}\r\nAccept: application/json\r\n")
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        status_line = b""
        try:
            writer.write(head.encode() + b"\r\n" + (body or b""))
            status_line = await reader.readline()
            if not status_line:
                writer.close()
                return None
            status = int(status_line.split()[1])
            length, chunked, close = 0, False, False
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                name, value = name.strip().lower(), value.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "transfer-encoding" and "chunked" in value:
                    chunked = True
                elif name == "connection" and value == "close":
                    close = True
            if chunked:
                while True:
                    size = int((await reader.readline()).split(b";")[0], 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            else:
                await reader.readexactly(length)
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            writer.close()
            return 0 if status_line else None
        if close:
            writer.close()
        else:
            self.idle.append((reader, writer))
        return status


READS = [  # (endpoint, share of the reads, who reads it)
    ("GET /appraisals/{a}/breakdown", 0.30, "staff"),
    ("GET /appraisals/{a}/explanation", 0.20, "staff"),
    ("GET /appraisals/{a}/history", 0.10, "staff"),
    ("GET /me", 0.10, "staff"),
    ("GET /years/2025/results", 0.10, "admin"),
    ("GET /years/2025/departments", 0.10, "admin"),
    ("GET /audit?appraisal={a}", 0.10, "inspector"),
]
WRITE = "POST /appraisals/{a}/ratings"


def schedule(seconds: float, writes: float, reads: float, people: dict[str, Any]) -> list[tuple[float, str, str, str, bytes | None]]:
    """(send time, endpoint, path, token, body) for every request, evenly spaced per kind."""
    plan: list[tuple[float, str, str, str, bytes | None]] = []
    raters, staff = people["raters"], people["staff"]
    stride = 7919  # a prime: consecutive requests meet different appraisals, as in an office
    for i in range(int(seconds * writes)):
        token, appraisal, role = raters[(i * stride) % len(raters)]
        month = 1 + i % 12
        body = {"id": f"cmp-{secrets.token_hex(6)}-{i}", "leaf": "business", "period": f"{YEAR}-{month:02d}",
                "rater_role": role, "score": str(60 + (i * 13) % 41)}
        plan.append((i / writes, WRITE, f"/appraisals/{appraisal}/ratings", token,
                     json.dumps(body).encode()))
    # the reads: a repeating deck of the mix, its order spread evenly
    deck: list[tuple[str, str]] = []
    for endpoint, share, role in READS:
        deck += [(endpoint, role)] * round(share * 20)
    deck = [deck[(k * 7) % len(deck)] for k in range(len(deck))]
    for i in range(int(seconds * reads)):
        endpoint, role = deck[i % len(deck)]
        token, appraisal, _ = staff[(i * stride) % len(staff)]
        if role != "staff":
            token = people[role]
        path = endpoint.split(" ", 1)[1].replace("{a}", appraisal)
        plan.append((i / reads + 0.5 / reads, endpoint, path, token, None))
    plan.sort(key=lambda item: item[0])
    return plan


async def offer(base_port: int, plan: list[tuple[float, str, str, str, bytes | None]], warm: float
                ) -> dict[str, list[tuple[float, int]]]:
    """Send each request at its time; (latency from the scheduled time, status) per endpoint,
    leaving out those scheduled in the first `warm` seconds."""
    client = Client("127.0.0.1", base_port)
    loop = asyncio.get_running_loop()
    results: dict[str, list[tuple[float, int]]] = {}
    tasks = []
    start = loop.time() + 0.2

    async def fire(at: float, endpoint: str, path: str, token: str, body: bytes | None) -> None:
        status = await client.request(endpoint.split(" ", 1)[0], path, token, body)
        if at - start >= warm:
            results.setdefault(endpoint, []).append((loop.time() - at, status))

    for offset, endpoint, path, token, body in plan:
        at = start + offset
        delay = at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(fire(at, endpoint, path, token, body)))
    # What has not been answered 30 s after the last send counts as a failure (status 0) at that time.
    done, pending = await asyncio.wait(tasks, timeout=30)
    for task in pending:
        task.cancel()
    results["_unanswered"] = [(0.0, len(pending))]
    results["_connections"] = [(0.0, client.opened)]
    return results


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def http_peak(args: argparse.Namespace, trees: list[Tree]) -> dict[str, Any]:
    import httpx

    sys.path.insert(0, str(ROOT))
    from scripts.bench_http import free_port

    logs = ROOT / "var" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    shape = {"departments": args.http_departments, "staff": args.staff}
    people_count = args.http_departments * (args.staff + 1)
    print(f"  an office of {people_count} people; offered {args.writes:g} commands/s + {args.reads:g} reads/s "
          f"for {args.seconds:g} s after {args.warm:g} s of warm-up; {args.server_workers} server "
          f"process(es)", flush=True)
    figures: dict[str, Any] = {}
    for tree in trees:
        schema = f"cmp_http_{tree.name}_{secrets.token_hex(3)}"
        url = schema_url(args.pg, schema)
        people = tree.measure("office", url, json.dumps(shape))
        port = free_port()
        processes = [tree.start(["project"], url, logs / f"compare-{tree.name}-worker.log"),
                     tree.start(["serve", "--port", str(port), "--projection", "none",
                                 "--workers", str(args.server_workers)], url,
                                logs / f"compare-{tree.name}-server.log")]
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                    raise SystemExit(f"{tree.name}: the server did not start; see {logs}/compare-{tree.name}-*.log")
                time.sleep(0.3)
            plan = schedule(args.warm + args.seconds, args.writes, args.reads, people)
            wall = time.perf_counter()
            results = asyncio.run(offer(port, plan, args.warm))
            wall = time.perf_counter() - wall
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
            drop_schema(args.pg, schema)
        connections = results.pop("_connections")[0][1]
        unanswered = results.pop("_unanswered")[0][1]
        table: dict[str, dict[str, Any]] = {}
        for endpoint in [WRITE] + [r[0] for r in READS]:
            answers = results.get(endpoint, [])
            latencies = [latency * 1000 for latency, _ in answers] or [float("nan")]
            ok = 201 if endpoint == WRITE else 200
            table[endpoint] = {"requests": len(answers), "not_ok": sum(1 for _, s in answers if s != ok),
                               "p50_ms": round(percentile(latencies, 50), 1), "p99_ms": round(percentile(latencies, 99), 1),
                               "max_ms": round(max(latencies), 1)}
        figures[tree.name] = {"endpoints": table, "connections_opened": connections,
                              "unanswered_after_30s": unanswered, "wall_s": round(wall, 1)}
        print(f"  {tree.name}: {sum(t['requests'] for t in table.values()):,} requests answered, "
              f"{unanswered} unanswered 30 s after the last send, {connections} connections opened, "
              f"{wall:.0f} s", flush=True)
        for endpoint, row in table.items():
            print(f"    {endpoint:<34} {row['requests']:>6} p50 {row['p50_ms']:>7.1f} ms  p99 {row['p99_ms']:>7.1f} ms  "
                  f"max {row['max_ms']:>7.1f} ms  not 2xx {row['not_ok']}", flush=True)
    return {"people": people_count, "writes_per_s": args.writes, "reads_per_s": args.reads,
            "server_workers": args.server_workers,
            "seconds": args.seconds, "warm_s": args.warm, "trees": figures}


# --- the table ------------------------------------------------------------------------------------

def report(figures: dict[str, Any], trees: list[Tree]) -> None:
    old, new = trees[0].name, trees[1].name
    print(f"\n| measure | {old} ({figures['old_ref']}) | {new} ({figures['new_ref']}) | new/old | target |")
    print("|---|---:|---:|---:|---|")
    verdicts = []
    if "import" in figures:
        best = figures["import"]["best"]
        for key, label in (("import_commands_per_s", "import, one process (commands/s)"),
                           ("rebuild_events_per_s", "read-model rebuild (events/s)")):
            if key in best[old]:
                ratio = best[new][key] / best[old][key]
                verdicts.append(ratio >= 0.9)
                print(f"| {label}, best of {figures['import']['repeat']} | {best[old][key]:,} | {best[new][key]:,} | "
                      f"{ratio:.2f} | >= 0.90 {'met' if ratio >= 0.9 else 'NOT met'} |")
        for key, label in (("import_cpu_us_per_command", "import: this process's CPU per command (µs)"),
                           ("rebuild_cpu_us_per_event", "rebuild: CPU per event (µs)")):
            if key in best[old]:
                print(f"| {label}, least of {figures['import']['repeat']} | {best[old][key]:,} | {best[new][key]:,} | "
                      f"{best[new][key] / best[old][key]:.2f} | (lower is better) |")
    if "http" in figures:
        trees_http = figures["http"]["trees"]
        for endpoint in trees_http[new]["endpoints"]:
            o, n = trees_http[old]["endpoints"][endpoint], trees_http[new]["endpoints"][endpoint]
            met = n["p99_ms"] < 50 and n["not_ok"] == 0 and not trees_http[new]["unanswered_after_30s"]
            verdicts.append(met)
            print(f"| {endpoint} p50 / p99 (ms) | {o['p50_ms']} / {o['p99_ms']} | {n['p50_ms']} / {n['p99_ms']} | "
                  f"| p99 < 50 {'met' if met else 'NOT met'} |")
    print(f"targets {'met' if all(verdicts) else 'NOT all met'}")
    figures["met"] = all(verdicts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", help="PostgreSQL URL of a database to create throwaway schemas in")
    parser.add_argument("--old", default="0c87d93", help="the commit to compare with (before issue 16)")
    parser.add_argument("--parts", default="import,rebuild,http")
    parser.add_argument("--departments", type=int, default=100)
    parser.add_argument("--staff", type=int, default=29)
    parser.add_argument("--periods", choices=["monthly", "weekly"], default="monthly")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--http-departments", type=int, default=10, help="the office of the HTTP load")
    parser.add_argument("--writes", type=float, default=50.0, help="rating commands/s offered")
    parser.add_argument("--reads", type=float, default=200.0, help="reads/s offered")
    parser.add_argument("--server-workers", type=int, default=1,
                        help="`appraisal serve --workers` of the HTTP part (several processes: production on PostgreSQL)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warm", type=float, default=5.0, help="seconds of load before the measured ones")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--tree", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--arg", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.tree, args.db, args.arg)))
        return
    if not args.pg:
        parser.error("--pg is required")
    parts = set(args.parts.split(","))
    new_ref = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "api", "projections", "domain"],
                           capture_output=True, text=True, check=True).stdout.strip()
    figures: dict[str, Any] = {"old_ref": args.old, "new_ref": new_ref + ("+changes" if dirty else ""),
                               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                               "machine": machine()}
    print(f"  old: {args.old} (git archive, PYTHONPATH); new: this tree at {figures['new_ref']}; {figures['machine']}",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="appraisal-compare-") as tmp:
        work = Path(tmp)
        trees = [Tree("old", unpack(args.old, work)), Tree("new", ROOT)]
        if parts & {"import", "rebuild"}:
            figures["import"] = import_and_rebuild(args, trees, work, parts)
            if args.json:  # kept should a later part fail
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(figures, indent=2))
        if "http" in parts:
            figures["http"] = http_peak(args, trees)
    report(figures, trees)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))


def machine() -> str:
    """CPUs, their model and the load average, for the record."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU")
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({model}), load average {load} at the start"


if __name__ == "__main__":
    main()
