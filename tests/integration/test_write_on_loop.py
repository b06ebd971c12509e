"""Commands decided on the event loop (`AppraisalLedger.submit_on_loop`, the HTTP path of commands
on one appraisal) and written by the group commit's writer thread (`GroupCommit.write_on_loop`)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from api.groupcommit import GroupCommit
from api.integrity import verify
from api.ledger import AppraisalLedger, Outcome
from api.logstore import log_store
from tests.integration.test_write_path import FakeStore, _batch, _in_thread, _wait_queued
from tests.worked_example import build

RATING = {"type": "rating.record", "leaf": "business", "score": "80", "at": "2025-12-20T10:00:00+08:00"}


def _rating(command_id: str, appraisal: str, role: str, period: str) -> dict[str, Any]:
    return {**RATING, "id": command_id, "appraisal": appraisal, "rater_role": role, "period": period}


def test_a_loop_batch_and_thread_batches_share_a_group_led_by_the_writer_thread() -> None:
    store = FakeStore()
    commit = GroupCommit(store.put)
    store.hold.clear()
    out: dict[str, Any] = {}
    first = _in_thread(commit, _batch(uuid.uuid4(), 1, count=2), out, "first")  # leads, held by the store
    assert store.entered.wait(10)
    refused = uuid.uuid4()
    store.refuse.add(refused)

    async def on_loop() -> tuple[Any, Any]:
        written = commit.write_on_loop(*_batch(uuid.uuid4(), 1, count=3))
        failed = commit.write_on_loop(*_batch(refused, 1))
        _wait_queued(commit, 2)
        behind = _in_thread(commit, _batch(uuid.uuid4(), 1), out, "thread")
        _wait_queued(commit, 3)
        store.hold.set()
        results = await asyncio.gather(written, failed, return_exceptions=True)
        behind.join(10)
        return results[0], results[1]

    written, failed = asyncio.run(asyncio.wait_for(on_loop(), 20))
    first.join(10)
    assert out["first"] == [1, 2]
    assert isinstance(failed, IntegrityError)  # its group failed: each batch written on its own
    assert written == [3, 4, 5]
    assert out["thread"] == [6]
    assert [len(call) for call in store.calls] == [2, 5, 3, 1, 1]
    assert commit._writer is not None and commit._writer.name == "group-commit-writer"


def test_commands_on_the_loop_are_recorded_once_each_appraisal_in_turn(db_url: str) -> None:
    """Forty ratings at once on the loop, ten on each of four appraisals: each is decided on the
    loop (an appraisal's next command waits until the last is written, then decides on its copy),
    written in shared transactions, answered with its own position; the log verifies."""
    ledger = AppraisalLedger(db_url)
    try:
        ledger.submit(build()[:12])
        raters = [("p-A", "2025:p-A", "self"), ("p-L1", "2025:p-A", "in_charge"),
                  ("p-H1", "2025:p-H1", "self"), ("p-L1", "2025:p-H1", "in_charge")]
        for rater, appraisal, role in raters:  # the organisation, the year and the appraisals cached
            ledger.submit_one(_rating(f"warm-{rater}-{appraisal}", appraisal, role, "2025-12"), actor=rater)
        before = ledger.event_count()

        async def rate_all() -> list[Outcome | None]:
            return await asyncio.gather(*(
                ledger.submit_on_loop(_rating(f"{rater}-{appraisal}-{month}", appraisal, role, f"2025-{month:02d}"),
                                      actor=rater)
                for month in range(1, 11) for rater, appraisal, role in raters))

        outcomes = asyncio.run(rate_all())
        assert all(outcome is not None and outcome.accepted for outcome in outcomes)
        positions = sorted(outcome.answer["position"] for outcome in outcomes if outcome is not None)
        assert positions == list(range(before + 1, before + 41))
        # PostgreSQL: written on the loop over its own connection; SQLite: by the writer thread.
        group = ledger._loop_group if db_url.startswith("postgresql") else ledger._group
        assert group is not None and group.groups >= 1  # some went together
        ids = [f"{r}-{a}-{m}" for m in range(1, 11) for r, a, _ in raters]
        found = ledger.commands(ids)
        assert sorted(found) == sorted(ids)
        assert {found[o.command_id]["position"] for o in outcomes if o is not None} == set(positions)
        facts = ledger.appraisal("2025:p-A").facts  # type: ignore[union-attr]
        assert len(facts.ratings) == 22
        verdict = verify(log_store(ledger.recorder))
        assert verdict.ok and verdict.walked.size == ledger.event_count()
    finally:
        ledger.close()


def test_what_the_loop_cannot_answer_alone_is_left_to_a_worker_thread(db_url: str) -> None:
    """None (nothing recorded) for: an appraisal not cached; a re-sent command id, whose answer
    must be the first one, from the log; a refused command; a command on a year; a decision on a
    copy another process has outdated (here, who is in charge of d-01). Each then goes through
    `submit_one`, which answers it as ever."""
    first, second = AppraisalLedger(db_url), AppraisalLedger(db_url)
    try:
        first.submit(build()[:12])

        def on_loop(ledger: AppraisalLedger, body: dict[str, Any], actor: str) -> Outcome | None:
            return asyncio.run(ledger.submit_on_loop(body, actor=actor))

        assert on_loop(second, _rating("cold", "2025:p-A", "in_charge", "2025-01"), "p-L1") is None
        assert second.commands(["cold"]) == {}
        first.submit_one(_rating("r-1", "2025:p-A", "in_charge", "2025-01"), actor="p-L1")  # cached
        count = first.event_count()
        assert on_loop(first, _rating("r-1", "2025:p-A", "in_charge", "2025-01"), "p-L1") is None
        assert first.submit_one(_rating("r-1", "2025:p-A", "in_charge", "2025-01"), actor="p-L1").duplicate
        assert on_loop(first, {**_rating("r-bad", "2025:p-A", "in_charge", "2025-02"), "score": "101"}, "p-L1") is None
        assert on_loop(first, {"type": "year.publish", "id": "y-1", "year": 2025}, "admin") is None
        assert first.event_count() == count
        second.submit([{"type": "org.department", "id": "d-01-again", "actor": "admin", "department": "d-01",
                        "name": {"zh": "机构编制科", "en": "Staffing Section"}, "approved_posts": 8,
                        "in_charge": "p-L2"}])
        count = first.event_count()
        assert on_loop(first, _rating("r-2", "2025:p-A", "in_charge", "2025-02"), "p-L1") is None
        assert first.event_count() == count and first.commands(["r-2"]) == {}
        accepted = first.submit_one(_rating("r-3", "2025:p-A", "in_charge", "2025-02"), actor="p-L2")
        assert accepted.accepted and accepted.answer["position"] == count + 1  # no gap
        # Now current again: the next one is decided and written on the loop.
        again = on_loop(first, _rating("r-4", "2025:p-A", "in_charge", "2025-03"), "p-L2")
        assert again is not None and again.answer["position"] == count + 2
        verdict = verify(log_store(first.recorder))
        assert verdict.ok and verdict.walked.size == first.event_count()
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize("threads", [4])
def test_loop_and_thread_writers_together_record_every_command_once(db_url: str, threads: int) -> None:
    """HTTP ratings on the loop while worker threads submit on the same ledger (the fallback path,
    an import): every command recorded exactly once, positions without a gap."""
    ledger = AppraisalLedger(db_url)
    try:
        ledger.submit(build()[:12])
        ledger.submit_one(_rating("warm", "2025:p-A", "self", "2025-12"), actor="p-A")
        before = ledger.event_count()
        errors: list[BaseException] = []

        def in_thread(number: int) -> None:
            try:
                for month in range(1, 7):
                    ledger.submit_one(_rating(f"t{number}-{month}", "2025:p-H1", "self",
                                              f"2025-W{number * 6 + month:02d}"), actor="p-H1")
            except BaseException as error:  # noqa: BLE001
                errors.append(error)

        async def on_loop() -> list[Outcome | None]:
            return await asyncio.gather(*(
                ledger.submit_on_loop(_rating(f"l-{month}", "2025:p-A", "self", f"2025-{month:02d}"), actor="p-A")
                for month in range(1, 11)))

        workers = [threading.Thread(target=in_thread, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        outcomes = asyncio.run(on_loop())
        for worker in workers:
            worker.join(60)
        assert errors == []
        for month, outcome in enumerate(outcomes, start=1):  # what the loop left undone, a thread does
            if outcome is None:
                ledger.submit_one(_rating(f"l-{month}", "2025:p-A", "self", f"2025-{month:02d}"), actor="p-A")
        ids = [f"l-{m}" for m in range(1, 11)] + [f"t{n}-{m}" for n in range(threads) for m in range(1, 7)]
        found = ledger.commands(ids)
        assert sorted(found) == sorted(ids)
        assert sorted(row["position"] for row in found.values()) == list(range(before + 1, before + 1 + len(ids)))
        assert ledger.event_count() == before + len(ids)
    finally:
        ledger.close()


def test_a_broken_loop_connection_costs_one_command_a_detour_then_is_opened_again(pg_url: str) -> None:
    """The loop's connection is cut (the server ends its session): the command being written gets
    None (nothing recorded; a worker thread records it), and the next one is written on the loop
    over a new connection."""
    import psycopg

    ledger = AppraisalLedger(pg_url)
    try:
        ledger.submit(build()[:12])
        ledger.submit_one(_rating("warm", "2025:p-A", "self", "2025-12"), actor="p-A")

        async def three() -> list[Outcome | None]:
            first = await ledger.submit_on_loop(_rating("c-1", "2025:p-A", "self", "2025-01"), actor="p-A")
            conn = ledger.recorder._loop_connections[asyncio.get_running_loop()]  # type: ignore[attr-defined]
            with psycopg.connect(pg_url.split("?", 1)[0], autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
            second = await ledger.submit_on_loop(_rating("c-2", "2025:p-A", "self", "2025-02"), actor="p-A")
            third = await ledger.submit_on_loop(_rating("c-3", "2025:p-A", "self", "2025-03"), actor="p-A")
            return [first, second, third]

        first, second, third = asyncio.run(three())
        assert first is not None and second is None and third is not None
        assert ledger.commands(["c-2"]) == {}
        assert ledger.submit_one(_rating("c-2", "2025:p-A", "self", "2025-02"), actor="p-A").accepted
        found = ledger.commands(["c-1", "c-2", "c-3"])
        assert [found[c]["position"] for c in ("c-1", "c-3", "c-2")] == [third.answer["position"] - 1,
                                                                         third.answer["position"],
                                                                         third.answer["position"] + 1]
        verdict = verify(log_store(ledger.recorder))
        assert verdict.ok and verdict.walked.size == ledger.event_count()
    finally:
        ledger.close()
