"""Verification speed: events per second through `appraisal verify` (recompute every leaf and chain
hash, build the Merkle root), beside the raw rate of reading the same rows, in the same run on the
same store (issue 5).

    .venv/bin/python scripts/bench_verify.py [--pg postgresql://…] [--events 900000]

The log: a demo year (weekly ratings) recorded once through the ledger in memory, then its stored
events copied under fresh aggregate ids until the log holds `--events` events, written through the
ledger's own recorder (`insert_events`, batches of 5,000: the chain rows go in with each batch, as
in an import). The raw baseline reads the same event rows with the same server-side cursor and page
size and does nothing with them. Each figure is the best of `--repeat` runs.
"""

from __future__ import annotations

import argparse
import gc
import json
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import NAMESPACE_URL, uuid5

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eventsourcing.persistence import StoredEvent  # noqa: E402

from api.cli.demo import demo_commands  # noqa: E402
from api.integrity.verification import PAGE, verify  # noqa: E402
from api.ledger import AppraisalLedger  # noqa: E402
from api.store.logstore import LogStore, log_store  # noqa: E402

BATCH = 5000


def template() -> list[StoredEvent]:
    ledger = AppraisalLedger("memory://")
    ledger.submit(demo_commands(2025, departments=4, staff_per_department=9, periods="weekly"))
    return list(ledger.recorder._stored_events)  # type: ignore[attr-defined]


def synthetic(events: list[StoredEvent], total: int) -> Iterator[list[StoredEvent]]:
    """Batches of copies of `events`, each copy under its own aggregate ids, `total` in all."""
    batch: list[StoredEvent] = []
    produced, copy = 0, 0
    while produced < total:
        ids: dict[Any, Any] = {}
        for event in events:
            if produced >= total:
                break
            oid = ids.get(event.originator_id)
            if oid is None:
                oid = ids[event.originator_id] = uuid5(NAMESPACE_URL, f"{event.originator_id}/{copy}")
            batch.append(StoredEvent(oid, event.originator_version, event.topic, event.state))
            produced += 1
            if len(batch) == BATCH:
                yield batch
                batch = []
        copy += 1
    if batch:
        yield batch


def build(ledger: AppraisalLedger, events: list[StoredEvent], total: int) -> float:
    started = time.perf_counter()
    for batch in synthetic(events, total):
        ledger.recorder.insert_events(batch)
    return time.perf_counter() - started


def raw_read(store: LogStore) -> tuple[float, int]:
    started = time.perf_counter()
    count = 0
    for rows in store.raw_pages(PAGE):
        count += len(rows)
    return time.perf_counter() - started, count


def verification(store: LogStore) -> tuple[float, int]:
    started = time.perf_counter()
    verdict = verify(store)
    elapsed = time.perf_counter() - started
    assert verdict.ok, verdict.message
    return elapsed, verdict.walked.size


def best(runs: int, measure: Callable[[], tuple[float, int]]) -> tuple[float, int]:
    results = []
    for _ in range(runs):
        gc.collect()
        results.append(measure())
    return min(results)


def run_store(name: str, url: str, events: list[StoredEvent], total: int, repeat: int) -> dict[str, Any]:
    ledger = AppraisalLedger(url)
    try:
        written = build(ledger, events, total)
        store = log_store(ledger.recorder)
        raw, count = best(repeat, lambda: raw_read(store))
        checked, size = best(repeat, lambda: verification(store))
    finally:
        ledger.close()
    assert count == size == total, (count, size, total)
    raw_rate, verify_rate = total / raw, total / checked
    print(f"  {name:<10} write (ledger recorder, chain included) {total / written:>9,.0f} events/s   "
          f"raw read {raw_rate:>9,.0f} rows/s   verify {verify_rate:>9,.0f} events/s   "
          f"ratio {verify_rate / raw_rate:.2f}")
    return {"events": total, "write_events_per_s": round(total / written), "raw_rows_per_s": round(raw_rate),
            "verify_events_per_s": round(verify_rate), "ratio": round(verify_rate / raw_rate, 3),
            "raw_seconds": round(raw, 2), "verify_seconds": round(checked, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", help="PostgreSQL URL of a database to create a throwaway schema in")
    parser.add_argument("--events", type=int, default=900_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    events = template()
    print(f"verify benchmark: {args.events:,} events (copies of a demo year of {len(events):,} events, "
          f"mean state {sum(len(e.state) for e in events) / len(events):.0f} bytes), pages of {PAGE:,}, "
          f"best of {args.repeat}")
    figures: dict[str, Any] = {"events": args.events, "page": PAGE}
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            figures["sqlite"] = run_store("SQLite", f"sqlite:///{tmp}/verify.db", events, args.events, args.repeat)
    if args.pg:
        import psycopg

        schema = f"bench_{secrets.token_hex(4)}"
        try:
            figures["postgresql"] = run_store("PostgreSQL", f"{args.pg}?schema={schema}", events, args.events,
                                              args.repeat)
        finally:
            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
