"""The single-command write path (HTTP): concurrent writes share transactions (group commit)
without one batch's clash refusing another, and a command decided after another process wrote
sees what it wrote (the one-round-trip refresh of the aggregates it reads)."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from api.ledger import AppraisalLedger
from api.store.groupcommit import GroupCommit
from api.store.storage import WAL_PAGES, CommandRow
from tests.builders.worked_example import build


@dataclass
class FakeEvent:
    originator_id: uuid.UUID
    originator_version: int


class FakeStore:
    """A `put` that numbers events, records each call, and can be held or made to fail."""

    def __init__(self) -> None:
        self.calls: list[list[Any]] = []
        self.next = 1
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()
        self.refuse: set[uuid.UUID] = set()
        self.lock = threading.Lock()

    def put(self, events: list[Any], rows: list[CommandRow], read: dict[Any, int] | None = None) -> list[int]:
        self.entered.set()
        self.hold.wait(10)
        with self.lock:
            self.calls.append(list(events))
            if any(e.originator_id in self.refuse for e in events):
                raise IntegrityError("refused by the store")
            positions = list(range(self.next, self.next + len(events)))
            self.next += len(events)
            return positions


def _batch(aggregate: uuid.UUID, version: int, count: int = 1, command: str | None = None
           ) -> tuple[list[Any], list[CommandRow]]:
    events = [FakeEvent(aggregate, version + i) for i in range(count)]
    rows = [CommandRow(command or f"c-{aggregate}-{version}", "rating.record", "f", "t", 0, {})]
    return events, rows


def _in_thread(commit: GroupCommit, batch: tuple[list[Any], list[CommandRow]], out: dict[str, Any],
               name: str) -> threading.Thread:
    def run() -> None:
        try:
            out[name] = commit.write(*batch)
        except Exception as error:  # noqa: BLE001 - the test looks at it
            out[name] = error

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _wait_queued(commit: GroupCommit, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(commit._queue) < count:
        assert time.monotonic() < deadline, "the writers did not queue"
        time.sleep(0.001)


def test_writes_queued_behind_a_write_go_together_each_with_its_own_positions() -> None:
    store = FakeStore()
    commit = GroupCommit(store.put)
    store.hold.clear()
    out: dict[str, Any] = {}
    first = _in_thread(commit, _batch(uuid.uuid4(), 1, count=2), out, "first")
    assert store.entered.wait(10)
    others = [_in_thread(commit, _batch(uuid.uuid4(), 1, count=n), out, f"w{n}") for n in (1, 2, 3)]
    _wait_queued(commit, 3)
    store.hold.set()
    for thread in [first, *others]:
        thread.join(10)
    assert out["first"] == [1, 2]
    assert [len(call) for call in store.calls] == [2, 6]  # the three queued batches in one transaction
    assert commit.groups == 1
    written = sorted(p for name in ("w1", "w2", "w3") for p in out[name])
    assert written == [3, 4, 5, 6, 7, 8]
    assert [len(out[f"w{n}"]) for n in (1, 2, 3)] == [1, 2, 3]


def test_a_batch_clashing_inside_a_group_is_refused_alone() -> None:
    store = FakeStore()
    commit = GroupCommit(store.put)
    store.hold.clear()
    out: dict[str, Any] = {}
    shared = uuid.uuid4()
    first = _in_thread(commit, _batch(uuid.uuid4(), 1), out, "first")
    assert store.entered.wait(10)
    a = _in_thread(commit, _batch(shared, 5, command="c-a"), out, "a")
    _wait_queued(commit, 1)
    b = _in_thread(commit, _batch(shared, 5, command="c-b"), out, "b")  # decided from the same version
    _wait_queued(commit, 2)
    c = _in_thread(commit, _batch(uuid.uuid4(), 1, command="c-a"), out, "c")  # a command id sent twice
    _wait_queued(commit, 3)
    store.hold.set()
    for thread in (first, a, b, c):
        thread.join(10)
    assert out["a"] == [2]
    assert isinstance(out["b"], IntegrityError)
    assert isinstance(out["c"], IntegrityError)
    assert [len(call) for call in store.calls] == [1, 1]


def test_when_a_group_fails_each_batch_is_written_on_its_own() -> None:
    store = FakeStore()
    commit = GroupCommit(store.put)
    store.hold.clear()
    out: dict[str, Any] = {}
    bad = uuid.uuid4()
    store.refuse.add(bad)
    first = _in_thread(commit, _batch(uuid.uuid4(), 1), out, "first")
    assert store.entered.wait(10)
    good = _in_thread(commit, _batch(uuid.uuid4(), 1), out, "good")
    _wait_queued(commit, 1)
    refused = _in_thread(commit, _batch(bad, 1), out, "refused")
    _wait_queued(commit, 2)
    store.hold.set()
    for thread in (first, good, refused):
        thread.join(10)
    assert out["first"] == [1]
    assert out["good"] == [2]
    assert isinstance(out["refused"], IntegrityError)
    assert [len(call) for call in store.calls] == [1, 2, 1, 1]  # the group, then each on its own
    assert commit.groups == 0


def test_concurrent_commands_all_recorded_once_in_shared_transactions(db_url: str) -> None:
    ledger = AppraisalLedger(db_url)
    try:
        ledger.submit(build()[:12])  # the organisation and the three appraisals
        raters = [("p-A", "2025:p-A", "self"), ("p-L1", "2025:p-A", "in_charge"),
                  ("p-H1", "2025:p-A", "department_head"), ("p-H1", "2025:p-H1", "self"),
                  ("p-L1", "2025:p-H1", "in_charge"), ("p-S1", "2025:p-H1", "superior")]
        errors: list[BaseException] = []
        barrier = threading.Barrier(len(raters))

        def rate(rater: str, appraisal: str, role: str) -> None:
            barrier.wait()
            try:
                for month in range(1, 11):
                    ledger.submit_one({"type": "rating.record", "id": f"{rater}-{appraisal}-{month}",
                                       "appraisal": appraisal, "leaf": "business", "period": f"2025-{month:02d}",
                                       "rater_role": role, "score": "80", "at": "2025-12-20T10:00:00+08:00"},
                                      actor=rater)
            except BaseException as error:  # noqa: BLE001
                errors.append(error)

        threads = [threading.Thread(target=rate, args=r) for r in raters]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        ids = [f"{r}-{a}-{m}" for r, a, _ in raters for m in range(1, 11)]
        found = ledger.commands(ids)
        assert sorted(found) == sorted(ids)
        assert len({row["position"] for row in found.values()}) == len(ids)
        facts = ledger.appraisal("2025:p-A").facts  # type: ignore[union-attr]
        assert len(facts.ratings) == 30
    finally:
        ledger.close()


def test_a_command_sees_what_another_process_wrote_since_it_last_looked(db_url: str) -> None:
    first, second = AppraisalLedger(db_url), AppraisalLedger(db_url)
    try:
        first.submit(build()[:12])
        rating = {"type": "rating.record", "appraisal": "2025:p-A", "leaf": "business", "rater_role": "in_charge",
                  "score": "80", "at": "2025-12-20T10:00:00+08:00"}
        first.submit_one({**rating, "id": "r-1", "period": "2025-01"}, actor="p-L1")  # caches org and p-A
        # Another process: a rating of p-A, a new person and their appraisal.
        second.submit_one({**rating, "id": "r-2", "period": "2025-02"}, actor="p-L1")
        second.submit([{"type": "org.person", "id": "o-N", "actor": "admin", "person": "p-N", "name": "新员",
                        "position": "staff", "department": "d-01"},
                       {"type": "appraisal.open", "id": "o-N2", "actor": "admin", "year": 2025, "subject": "p-N",
                        "scheme": {"id": "bianban", "version": 1}}])
        # The first decides on top of them: p-A's newer version, the new person, the new appraisal.
        first.submit_one({**rating, "id": "r-3", "period": "2025-03"}, actor="p-L1")
        answer = first.submit_one({**rating, "id": "r-4", "period": "2025-03", "appraisal": "2025:p-N",
                                   "rater_role": "self"}, actor="p-N").answer
        assert answer["status"] == "accepted"
        facts = first.appraisal("2025:p-A").facts  # type: ignore[union-attr]
        assert sorted(r.period for r in facts.ratings) == ["2025-01", "2025-02", "2025-03"]
    finally:
        first.close()
        second.close()


def test_postgres_urls_keep_libpq_parameters_and_drop_ours() -> None:
    from api.store.storage import pg_conninfo, store_env

    url = "postgresql://postgres@/dev?host=/tmp/devpg&port=55432&schema=s1&pool_size=20"
    assert pg_conninfo(url) == "postgresql://postgres@/dev?host=%2Ftmp%2Fdevpg&port=55432"
    env = store_env(url)
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_SCHEMA"]) == ("/tmp/devpg", "55432", "s1")
    assert pg_conninfo("postgresql://u:p@h:5/db?schema=x") == "postgresql://u:p@h:5/db"
    assert store_env("postgresql://u:p@h:5/db")["POSTGRES_HOST"] == "h"


def test_a_store_reached_through_a_socket_directory(pg_url: str) -> None:
    """`?host=<socket directory>` as libpq takes it (the throwaway servers of scripts/ listen on one)."""
    from urllib.parse import urlsplit

    parts = urlsplit(pg_url)
    if parts.hostname not in ("localhost", "127.0.0.1"):
        pytest.skip("the test server is not on this machine")
    import psycopg

    with psycopg.connect(pg_url.split("?", 1)[0]) as conn:
        directory = conn.execute("SHOW unix_socket_directories").fetchone()[0].split(",")[0].strip()
    if not directory:
        pytest.skip("the server has no socket directory")
    url = (f"postgresql://{parts.username or 'postgres'}@/{parts.path.lstrip('/')}?host={directory}"
           f"&port={parts.port or 5432}&{parts.query}")
    ledger = AppraisalLedger(url)
    try:
        ledger.submit(build()[:3])
        assert ledger.event_count() >= 3
    finally:
        ledger.close()


def test_a_server_process_freezes_its_startup_objects_and_collects_rarely() -> None:
    import subprocess
    import sys

    code = ("import gc; from api.server.app import settle_collector; settle_collector(); "
            "print(gc.get_threshold()[0], gc.get_freeze_count() > 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["50000", "True"]


def test_the_chain_runs_on_across_bulk_batches_and_single_commands(db_url: str) -> None:
    """Bulk batches (an import's), single commands, a batch of many ratings, interleaved: one write
    path, and the whole log verifies."""
    from api.integrity.verification import verify
    from api.store.logstore import log_store

    ledger = AppraisalLedger(db_url)
    try:
        ledger.submit(build())  # the worked example: one batch of many events
        rating = {"type": "rating.record", "appraisal": "2025:p-A", "leaf": "business", "rater_role": "in_charge",
                  "score": "81", "at": "2025-12-20T10:00:00+08:00"}
        for month in range(1, 4):
            ledger.submit_one({**rating, "id": f"one-{month}", "period": f"2025-{month:02d}"}, actor="p-L1")
        many = [{**rating, "id": f"many-{n}", "period": f"2025-{n % 12 + 1:02d}", "actor": "p-L1"} for n in range(21)]
        ledger.submit(many)
        ledger.submit_one({**rating, "id": "one-last", "period": "2025-11"}, actor="p-L1")
        verdict = verify(log_store(ledger.recorder))
        assert verdict.ok, verdict.message
        assert verdict.walked.size == ledger.event_count()
    finally:
        ledger.close()


@pytest.mark.parametrize("command_id", ["resent-1", 'a "quoted", {braced} \\ back-slashed, NULL id', "NULL",
                                        " 科室 考核 "])
def test_a_re_sent_command_id_refused_by_the_store_leaves_no_gap_in_the_log(db_url: str, command_id: str) -> None:
    """A command id already recorded is refused before any position is drawn (PostgreSQL draws
    positions from a sequence that a rollback does not give back): the next write goes on at the
    next position. Any text is an id."""
    from eventsourcing.persistence import StoredEvent

    ledger = AppraisalLedger(db_url)
    try:
        recorder = ledger.recorder
        row = CommandRow(command_id, "rating.record", "f", "t", 0, {"status": "accepted"})
        first = recorder.insert_events([StoredEvent(uuid.uuid4(), 1, "t", b"{}")], commands=[row])
        with pytest.raises(Exception) as refused:  # noqa: PT011 - the store's own IntegrityError
            recorder.insert_events([StoredEvent(uuid.uuid4(), 1, "t", b"{}")], commands=[row])
        assert "already" in str(refused.value) or "duplicate" in str(refused.value) or "UNIQUE" in str(refused.value)
        after = recorder.insert_events([StoredEvent(uuid.uuid4(), 1, "t", b"{}")],
                                       commands=[row._replace(command_id=command_id + "-2")])
        assert list(after) == [first[0] + 1]
    finally:
        ledger.close()


def test_a_store_chained_in_sql_by_an_earlier_version_is_written_on_and_verifies(pg_url: str) -> None:
    """Before issue 16 single commands on PostgreSQL were written by a PL/pgSQL function that
    chained them in SQL (`sha256()` over the same bytes as api/store/chain.py). A store it wrote, the
    function still installed, opens; the next writes chain on from its rows; the log verifies."""
    import psycopg
    from psycopg.sql import SQL, Identifier

    from api.integrity.verification import verify
    from api.store.logstore import log_store

    ledger = AppraisalLedger(pg_url)
    try:
        ledger.submit(build()[:3])
        recorder = ledger.recorder
        schema = pg_url.rsplit("schema=", 1)[1]
        names = {"schema": Identifier(schema), "events": Identifier(recorder.events_table_name),
                 "chain": Identifier(recorder.chain.table),
                 "function": Identifier(f"{recorder.events_table_name}_write_v6")}
        with psycopg.connect(pg_url.split("?", 1)[0]) as conn:
            conn.execute(SQL("CREATE FUNCTION {schema}.{function}() RETURNS bigint[] LANGUAGE sql "
                             "AS 'SELECT ARRAY[]::bigint[]'").format(**names))  # left over, never called
            for version in (1, 2):  # what the function wrote: each event chained by the server's sha256()
                conn.execute(SQL(
                    "WITH e AS (INSERT INTO {schema}.{events} (originator_id, originator_version, topic, state) "
                    "VALUES (%s, %s, 'test.Old', convert_to('{{\"old\": \"事件\"}}', 'UTF8')) RETURNING *) "
                    "INSERT INTO {schema}.{chain} (position, hash) SELECT e.notification_id, sha256("
                    "(SELECT hash FROM {schema}.{chain} ORDER BY position DESC LIMIT 1) || sha256("
                    "decode('00', 'hex') || int8send(e.notification_id) || int4send(16) || uuid_send(e.originator_id)"
                    " || int8send(e.originator_version) || int4send(length(convert_to(e.topic, 'UTF8')))"
                    " || convert_to(e.topic, 'UTF8') || int4send(length(e.state)) || e.state)) FROM e"
                ).format(**names), (uuid.UUID(int=7), version))
        reopened = AppraisalLedger(pg_url)
        try:
            reopened.submit(build()[3:6])
            reopened.submit_one({"type": "org.person", "id": "old-store-1", "person": "p-X", "name": "新人",
                                 "position": "leader"}, actor="admin")
            verdict = verify(log_store(reopened.recorder))
            assert verdict.ok, verdict.message
            assert verdict.walked.size == reopened.event_count()
        finally:
            reopened.close()
    finally:
        ledger.close()


def _rows_read(plan: dict[str, Any], table: str) -> int:
    """The most rows any node of a plan (EXPLAIN ANALYZE's JSON) read from a table or its indexes."""
    node = plan.get("Plan", plan)
    own = 0
    if node.get("Relation Name") == table or str(node.get("Index Name", "")).startswith(table):
        own = int(node["Actual Rows"]) * int(node["Actual Loops"])
    return max([own, *(_rows_read(child, table) for child in node.get("Plans", []))])


def test_the_read_set_is_checked_by_index_probes_not_by_walking_the_log(pg_url: str) -> None:
    """The read-set check of a write (and the refresh's "events after these versions") run with
    generic plans (PostgreSQL keeps them for prepared statements). Written as a plain join, that
    plan was a merge join reading the events' whole primary-key index: every write cost time in
    proportion to the log. Here an aggregate has 300 events and 300 others 3 each; a check of a
    read at its last version reads none of them, and a refresh of its last ten reads those ten. (The
    plans are seen through auto_explain. Which join the planner picks depends on the table's
    statistics; with nested loops discouraged, a join can only be a merge or a hash join, while the
    probes stay what they are.)"""
    import json

    import psycopg
    from psycopg.sql import SQL, Identifier

    ledger = AppraisalLedger(pg_url)
    try:
        ledger.submit(build()[:3])
        recorder = ledger.recorder
        schema = pg_url.rsplit("schema=", 1)[1]
        table = recorder.events_table_name
        busy = uuid.UUID(int=2**128 - 1)  # last in the index: a walk of it reads every other entry first
        plans: list[dict[str, Any]] = []
        with psycopg.connect(pg_url.split("?", 1)[0], autocommit=True) as conn:
            conn.add_notice_handler(lambda notice: plans.append(
                json.loads(notice.message_primary.split("plan:", 1)[1]))
                if "plan:" in (notice.message_primary or "") else None)
            # Generic plans, and whatever join the planner's costs would favour: any but probes.
            conn.execute("SET plan_cache_mode = force_generic_plan")
            conn.execute("SET enable_nestloop = off")
            # 300 events of one aggregate, and 3 each of 300 others; below the log's positions
            # (negative ones), so the chain's head stays the last event.
            conn.execute(SQL(
                "INSERT INTO {}.{} (notification_id, originator_id, originator_version, topic, state) "
                "SELECT -g, %s, g, 'test.Bulk', '{{}}'::bytea FROM generate_series(1, 300) g UNION ALL "
                "SELECT -301 - g, md5((g %% 300)::text)::uuid, g / 300 + 1, 'test.Bulk', '{{}}'::bytea "
                "FROM generate_series(0, 899) g"
            ).format(Identifier(schema), Identifier(table)), (busy,))
            for setting in ("LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0",
                            "SET auto_explain.log_nested_statements = on", "SET auto_explain.log_analyze = on",
                            "SET auto_explain.log_format = 'json'", "SET client_min_messages = log"):
                conn.execute(setting)
            checked = conn.execute(recorder.stale_read_statement, (
                f"{{{busy},{uuid.uuid4()}}}", "{300,0}", ["probe-1"])).fetchone()
            newer = conn.execute(recorder.select_newer_statement, ([busy], [290])).fetchall()
        checks = [p for p in plans if "r(id, seen)" in p["Query Text"]]
        refreshes = [p for p in plans if "k(id, after)" in p["Query Text"]]
        assert checked == (False, False)  # nothing moved on, the command id is new
        assert len(checks) == 1
        assert _rows_read(checks[0], table) == 0, json.dumps(checks[0])
        assert [row[1] for row in newer] == list(range(291, 301))
        assert len(refreshes) == 1
        assert _rows_read(refreshes[0], table) == 10, json.dumps(refreshes[0])
    finally:
        ledger.close()


def test_sqlite_checks_the_read_set_with_work_that_does_not_grow_with_an_aggregates_history(
        tmp_path: Any) -> None:
    """SQLite's read-set check probes the index once per aggregate ("a version after the one
    read?"). Asked for each aggregate's maximum version instead, it read every version of every
    aggregate the batch read, under the write lock: a cost that grew with the log. Counted in
    SQLite's virtual-machine instructions (deterministic, unlike time): a write to an aggregate
    with 4,000 events costs what a write to one with 20 costs."""
    from eventsourcing.persistence import StoredEvent

    ledger = AppraisalLedger(f"sqlite:///{tmp_path}/probe.db")
    try:
        recorder = ledger.recorder
        short, long = uuid.uuid4(), uuid.uuid4()
        for aggregate, count in ((short, 20), (long, 4000)):
            recorder.insert_events([StoredEvent(aggregate, v, "t", b"{}") for v in range(1, count + 1)],
                                   read={aggregate: 0})

        def instructions(aggregate: uuid.UUID, version: int) -> int:
            steps = [0]

            def count() -> int:
                steps[0] += 1
                return 0

            with recorder.datastore.transaction(commit=True) as c:
                connection = c.sqlite_cursor.connection
                connection.set_progress_handler(count, 1)
                try:
                    recorder._insert_events(c, [StoredEvent(aggregate, version + 1, "t", b"{}")],
                                            read={aggregate: version})
                finally:
                    connection.set_progress_handler(None, 1)
            return steps[0]

        cheap, dear = instructions(short, 20), instructions(long, 4000)
        assert dear <= cheap * 1.2, (cheap, dear)
        with pytest.raises(IntegrityError):  # and a version after the one read is still caught
            recorder.insert_events([StoredEvent(uuid.uuid4(), 1, "t", b"{}")], read={long: 3999})
        assert recorder.max_notification_id() == 4022  # nothing of the refused write
    finally:
        ledger.close()


def test_a_vacuum_of_the_log_holds_no_write_back_and_an_exclusive_lock_still_does(pg_url: str) -> None:
    """Autovacuum takes the events table in SHARE UPDATE EXCLUSIVE mode, about every minute under a
    steady load. The log's lock used to be the table's EXCLUSIVE lock, which that conflicts with:
    each vacuum held every write back while it ran. Now a write goes through beside it; and a holder of the table's EXCLUSIVE lock (a server of
    an earlier version, a backup being loaded) still holds writes back, so that positions stay in
    commit order whoever writes."""
    import psycopg
    from psycopg.sql import SQL, Identifier

    ledger = AppraisalLedger(pg_url)
    try:
        ledger.submit(build()[:12])
        before = ledger.event_count()
        schema = pg_url.rsplit("schema=", 1)[1]
        table = SQL("{}.{}").format(Identifier(schema), Identifier(ledger.recorder.events_table_name))
        count = 3

        def ratings(tag: str) -> list[dict[str, Any]]:
            return [{"type": "rating.record", "id": f"{tag}-{n}", "actor": "p-A", "appraisal": "2025:p-A",
                     "leaf": "business", "rater_role": "self", "period": f"2025-W{n % 52 + 1:02d}",
                     "score": "80", "at": "2025-12-20T10:00:00+08:00"} for n in range(count)]

        def write_while_held(mode: str, tag: str) -> BaseException | None:
            with psycopg.connect(pg_url.split("?", 1)[0]) as holder:
                holder.execute(SQL("LOCK TABLE {} IN {} MODE").format(table, SQL(mode)))
                outcome: list[BaseException | None] = []

                def write() -> None:
                    try:
                        ledger.submit(ratings(tag))
                        outcome.append(None)
                    except BaseException as error:  # noqa: BLE001 - the test looks at it
                        outcome.append(error)

                writer = threading.Thread(target=write)
                writer.start()
                writer.join(3)
                blocked = writer.is_alive()
                holder.rollback()  # let it go
                writer.join(30)
            assert outcome == [None]
            return AssertionError("held back") if blocked else None

        assert write_while_held("SHARE UPDATE EXCLUSIVE", "beside-vacuum") is None
        assert isinstance(write_while_held("EXCLUSIVE", "behind-exclusive"), AssertionError)
        assert ledger.event_count() == before + 2 * count
    finally:
        ledger.close()


def test_processes_opening_a_new_store_at_once_all_succeed(pg_url: str) -> None:
    """`appraisal serve --workers N` on a new PostgreSQL store: every worker creates the tables at
    the same moment. `CREATE TABLE IF NOT EXISTS` alone lets the loser of the race fail on the
    catalog; serialised, each opener finds the others' tables."""
    from api.http.auth import Credentials
    from projections.db import open_view_db
    from projections.tables import create_tables

    openers = 6
    start = threading.Barrier(openers)
    failures: list[BaseException] = []

    def open_store() -> None:
        try:
            start.wait()
            ledger = AppraisalLedger(pg_url)
            try:
                Credentials(ledger)
                db = open_view_db(pg_url)
                try:
                    with db.transaction() as tx:
                        create_tables(tx)
                finally:
                    db.close()
            finally:
                ledger.close()
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=open_store) for _ in range(openers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []


def test_a_decision_on_a_copy_another_process_has_outdated_is_made_again(db_url: str) -> None:
    """A single command is decided on the cached copies without a round trip; the write checks the
    versions of everything the decision read. Here the organisation it read (who is in charge of
    d-01) was changed by another process meanwhile: the write is refused, the command decided
    again on the current organisation (and refused), nothing of it recorded, and the log's
    positions stay without a gap."""
    from api.integrity.verification import verify
    from api.ledger import Refused
    from api.store.logstore import log_store

    first, second = AppraisalLedger(db_url), AppraisalLedger(db_url)
    try:
        first.submit(build()[:12])
        rating = {"type": "rating.record", "appraisal": "2025:p-A", "leaf": "business", "rater_role": "in_charge",
                  "score": "80", "at": "2025-12-20T10:00:00+08:00"}
        first.submit_one({**rating, "id": "r-1", "period": "2025-01"}, actor="p-L1")  # caches the organisation
        second.submit([{"type": "org.department", "id": "d-01-again", "actor": "admin", "department": "d-01",
                        "name": {"zh": "机构编制科", "en": "Staffing Section"}, "approved_posts": 8,
                        "in_charge": "p-L2"}])
        count = first.event_count()
        with pytest.raises(Refused) as refused:
            first.submit_one({**rating, "id": "r-2", "period": "2025-02"}, actor="p-L1")
        assert refused.value.outcome.error is not None and refused.value.outcome.error.field == "rater_role"
        assert first.event_count() == count and first.commands(["r-2"]) == {}
        # The one now in charge is accepted, on the first process too.
        assert first.submit_one({**rating, "id": "r-3", "period": "2025-02"}, actor="p-L2").accepted
        verdict = verify(log_store(first.recorder))
        assert verdict.ok and verdict.walked.size == first.event_count()
    finally:
        first.close()
        second.close()


def test_a_batch_that_read_what_an_earlier_batch_of_its_group_changes_is_decided_again() -> None:
    store = FakeStore()
    commit = GroupCommit(store.put)
    org, appraisal = uuid.uuid4(), uuid.uuid4()
    store.hold.clear()
    out: dict[str, Any] = {}
    first = _in_thread(commit, _batch(uuid.uuid4(), 1), out, "first")  # holds the store
    assert store.entered.wait(5)
    changes_org = _in_thread(commit, _batch(org, 4, command="org"), out, "changes_org")
    _wait_queued(commit, 1)
    events, rows = _batch(appraisal, 2, command="rating")
    read_org = threading.Thread(target=lambda: out.__setitem__("read_org", _try(commit, events, rows, {org: 3})))
    read_org.start()
    _wait_queued(commit, 2)
    store.hold.set()
    for thread in (first, changes_org, read_org):
        thread.join(10)
    assert isinstance(out["read_org"], IntegrityError)
    assert out["changes_org"] == [2]


def _try(commit: GroupCommit, events: list[Any], rows: list[CommandRow], read: dict[Any, int]) -> Any:
    try:
        return commit.write(events, rows, read)
    except IntegrityError as error:
        return error


def test_an_import_batch_is_checked_against_what_it_read_not_what_earlier_batches_read(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process rates p-A while an import runs; the import's next batch rates only p-H1: it is
    written at once, not refused and decided again for p-A, which only an earlier batch read."""
    from api.ledger import application as ledger_module

    first, second = AppraisalLedger(db_url), AppraisalLedger(db_url)
    try:
        first.submit(build()[:12])
        rating = {"type": "rating.record", "leaf": "business", "rater_role": "self", "score": "80",
                  "at": "2025-12-20T10:00:00+08:00"}
        imported = [{**rating, "id": "imp-A", "appraisal": "2025:p-A", "period": "2025-01", "actor": "p-A"},
                    {**rating, "id": "imp-H", "appraisal": "2025:p-H1", "period": "2025-01", "actor": "p-H1"}]
        forgotten: list[int] = []
        forget = ledger_module.UnitOfWork.forget
        monkeypatch.setattr(ledger_module.UnitOfWork, "forget", lambda unit: (forgotten.append(1), forget(unit)))

        batches: list[int] = []

        def between_batches(done: int) -> None:
            batches.append(done)
            if len(batches) == 1:  # after the first batch (p-A), before the second (p-H1)
                second.submit_one({**rating, "id": "other-A", "appraisal": "2025:p-A", "period": "2025-02"},
                                  actor="p-A")

        first.submit(imported, batch_size=1, on_progress=between_batches)
        assert batches == [1, 1] and forgotten == []
        assert {r.period for r in first.appraisal("2025:p-A").facts.ratings} == {"2025-01", "2025-02"}  # type: ignore[union-attr]
    finally:
        first.close()
        second.close()


def _ratings(count: int) -> list[dict[str, Any]]:
    return [{"type": "rating.record", "id": f"pipe-{n}", "appraisal": "2025:p-A", "leaf": "business",
             "rater_role": "in_charge", "score": str(60 + n % 40), "period": f"2025-{n % 12 + 1:02d}",
             "at": "2025-12-20T10:00:00+08:00", "actor": "p-L1"} for n in range(count)]


def test_a_refused_write_in_an_import_is_decided_again_and_the_import_goes_on(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second batch's write is refused once (as when another process wrote first): it is
    decided again from the store, and every command ends up recorded once, in order, with no gap
    in the log's positions."""
    from api.integrity.verification import verify
    from api.store.logstore import log_store

    ledger = AppraisalLedger(db_url)
    try:
        ledger.submit(build()[:12])
        before = ledger.event_count()
        write = ledger._write
        writes: list[int] = []

        def second_refused_once(events: Any, rows: Any, read: Any) -> None:
            writes.append(len(events))
            if len(writes) == 2:
                raise IntegrityError("another writer got there first")
            write(events, rows, read)

        monkeypatch.setattr(ledger, "_write", second_refused_once)
        progress: list[int] = []
        outcomes = ledger.submit(_ratings(12), batch_size=3, on_progress=progress.append)
        assert [o.command_id for o in outcomes] == [f"pipe-{n}" for n in range(12)]
        assert progress == [3, 3, 3, 3] and ledger.event_count() == before + 12
        positions = [o.answer["position"] for o in outcomes]
        assert positions == list(range(before + 1, before + 13))
        facts = ledger.appraisal("2025:p-A").facts  # type: ignore[union-attr]
        assert sum(1 for r in facts.ratings if r.command_id.startswith("pipe-")) == 12
        verdict = verify(log_store(ledger.recorder))
        assert verdict.ok and verdict.walked.size == ledger.event_count()
    finally:
        ledger.close()


def test_sqlite_copies_its_write_ahead_log_back_in_large_steps_on_every_connection(tmp_path: Any) -> None:
    """Issue 19: every connection that commits to a SQLite store (the ledger's, the read models')
    waits for `WAL_PAGES` pages before copying the write-ahead log back, not SQLite's 1,000."""
    from projections.db import open_view_db

    url = f"sqlite:///{tmp_path / 'wal.db'}"
    ledger = AppraisalLedger(url)
    views = open_view_db(url)
    try:
        ledger.submit(build())
        connections = [ledger.recorder.datastore.pool.get_connection(is_writer=writer) for writer in (True, False)]
        try:
            found = [c._sqlite_conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] for c in connections]
        finally:
            for connection in connections:
                ledger.recorder.datastore.pool.put_connection(connection)
        found.append(views.query("PRAGMA wal_autocheckpoint")[0]["wal_autocheckpoint"])
        assert found == [WAL_PAGES] * 3 and WAL_PAGES > 1000
    finally:
        views.close()
        ledger.close()
