"""An import decided by several processes (api/parallel.py) records the log a one-process import
records: the same events in the same order, the same command rows and answers, a chain that
verifies; it stops at the same refused line; and it goes on in one process when a decider dies or
another writer gets in first."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from api import parallel
from api.demo import demo_commands
from api.integrity import verify
from api.ledger import AppraisalLedger, Refused
from api.logstore import log_store


def _rating(command_id: str, key: str, person: str, month: int, score: str = "90") -> dict[str, Any]:
    return {"type": "rating.record", "id": command_id, "actor": person, "at": f"2025-{month:02d}-28T10:00:00+08:00",
            "appraisal": key, "leaf": "business", "period": f"2025-{month:02d}", "rater": person,
            "rater_role": "self", "score": score}


def _year() -> list[dict[str, Any]]:
    """A year with commands of every kind in the middle of the ratings: in June a person joins
    and is appraised for next year already (and rates themself); appeals are filed and decided;
    the year is published, and two deductions after the publication, in one batch with a rating
    of next year between them, revise it once (on appraisals that two and three deciders would
    divide: p-003 and p-010)."""
    commands = demo_commands(2025, departments=3, staff_per_department=4)
    at = next(i for i, c in enumerate(commands) if c["at"] >= "2025-06-01")
    joined: list[dict[str, Any]] = [{"type": "org.person", "id": "t-join", "actor": "admin", "at": "2025-06-01T09:00:00+08:00",
               "person": "p-new", "name": "新同事", "position": "staff", "department": "d-02"},
              {"type": "appraisal.open", "id": "t-open", "actor": "admin", "at": "2025-06-01T09:00:01+08:00",
               "year": 2026, "subject": "p-new", "scheme": {"id": "bianban", "version": 1}}]
    later = [{**_rating(f"t-new-{month}", "2026:p-new", "p-new", month), "period": f"2026-{month:02d}"}
             for month in range(6, 13)]
    ends: list[dict[str, Any]] = [{"type": "year.publish", "id": "t-publish", "actor": "admin", "at": "2025-12-31T18:00:00+08:00",
             "year": 2025},
            {"type": "occurrence.record", "id": "t-late", "actor": "hr-office", "at": "2025-12-31T19:00:00+08:00",
             "appraisal": "2025:p-003", "item": "absence", "count": 1, "evidence": "补录考勤"},
            {**_rating("t-next", "2026:p-new", "p-new", 12), "period": "2026-01"},  # decided by a decider
            {"type": "occurrence.record", "id": "t-late-2", "actor": "hr-office", "at": "2025-12-31T19:00:01+08:00",
             "appraisal": "2025:p-010", "item": "absence", "count": 1, "evidence": "补录考勤"}]
    return commands[:at] + joined + commands[at:at + 200] + later + commands[at + 200:] + ends


def test_the_year_ends_with_one_batch_of_changes_to_the_published_year() -> None:
    ends = [i // 40 for i, c in enumerate(_year()) if c["id"] in ("t-late", "t-next", "t-late-2")]
    assert len(ends) == 3 and len(set(ends)) == 1


def _log(ledger: AppraisalLedger) -> tuple[list[tuple[Any, ...]], dict[str, Any]]:
    """Every event in log order (without its wall-clock timestamp), and every command row."""
    events = []
    for notification in ledger.recorder.select_notifications(0, 1_000_000):
        event = ledger.mapper.to_domain_event(notification)
        state = {k: v for k, v in vars(event).items() if k != "timestamp"}
        events.append((notification.id, notification.originator_id, notification.originator_version,
                       notification.topic, state))
    ids = [e[4]["command_id"] for e in events if "command_id" in e[4]]
    return events, ledger.commands(ids)


def _import(url: str, commands: list[dict[str, Any]], processes: int, **options: Any) -> AppraisalLedger:
    ledger = AppraisalLedger(url)
    ledger.submit(commands, batch_size=40, processes=processes, **options)
    return ledger


def _counted_answers(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many commands the started deciders and the importing process (decider 0) decided as
    deciders (they must all have decided something)."""
    carried = {"started": 0, "own": 0}
    receive, own = parallel.Deciders.receive, parallel.SharedImport._decide_own

    def received(deciders: parallel.Deciders, number: int) -> Any:
        answer = receive(deciders, number)
        carried["started"] += len(answer[0])
        return answer

    def decided(shared: parallel.SharedImport, part: list[tuple[int, Any]]) -> Any:
        answer = own(shared, part)
        carried["own"] += len(answer[0])
        return answer

    monkeypatch.setattr(parallel.Deciders, "receive", received)
    monkeypatch.setattr(parallel.SharedImport, "_decide_own", decided)
    return carried


@pytest.mark.parametrize("processes", [2, 3])
def test_an_import_decided_in_processes_records_what_one_process_records(
        db_url: str, empty_url: str, processes: int, monkeypatch: pytest.MonkeyPatch) -> None:
    commands = _year()
    alone = _import(empty_url, commands, processes=1)
    carried = _counted_answers(monkeypatch)
    progress: list[int] = []
    with capture_logs() as logs:
        shared = _import(db_url, commands, processes=processes, on_progress=progress.append)
    try:
        assert logs == []  # no decider failed, no write was refused: shared to the end
        assert sum(progress) == len(commands)
        assert sum(carried.values()) > len(commands) * 0.9  # nearly every command was decided by a decider
        own = {c["appraisal"] for c in commands if c["type"] == "rating.record"
               and parallel.decider_of(c["appraisal"], processes) == 0}
        assert carried["started"] > len(commands) * 0.5 and (carried["own"] > 0) == bool(own)
        assert _log(shared) == _log(alone)
        assert shared.results(2025) == alone.results(2025)
        published = [[{k: v for k, v in p.items() if k != "recorded_at"} for p in ledger.year(2025).publications]  # type: ignore[union-attr]
                     for ledger in (shared, alone)]
        assert len(published[0]) == 2 and published[0] == published[1]  # published, then revised (once a batch)
        verdict = verify(log_store(shared.recorder))
        assert verdict.ok and verdict.walked.size == shared.event_count()
    finally:
        shared.close()
        alone.close()


def test_the_answers_carry_the_same_positions_and_a_second_import_skips_every_line(db_url: str) -> None:
    commands = _year()
    ledger = AppraisalLedger(db_url)
    try:
        outcomes = ledger.submit(commands, batch_size=40, processes=2)
        assert [o.index for o in outcomes] == list(range(len(commands)))
        positions = [o.answer["position"] for o in outcomes if o.answer.get("events")]
        assert positions == sorted(positions) and len(set(positions)) == len(positions)
        rows = ledger.commands([c["id"] for c in commands])
        assert all(rows[c["id"]]["answer"] == o.answer for c, o in zip(commands, outcomes, strict=True))
        again = ledger.submit(commands, batch_size=40, processes=2)
        assert all(o.duplicate for o in again) and [o.answer for o in again] == [o.answer for o in outcomes]
    finally:
        ledger.close()


def test_a_refused_line_stops_the_import_and_keeps_exactly_what_came_before(
        db_url: str, empty_url: str) -> None:
    commands = _year()
    bad = 500
    assert commands[bad]["type"] == "rating.record"
    broken = [*commands[:bad], {**commands[bad], "score": "101"}, *commands[bad + 1:]]
    ledger = AppraisalLedger(db_url)
    alone = AppraisalLedger(empty_url)
    try:
        with pytest.raises(Refused) as shared_refusal:
            ledger.submit(broken, batch_size=40, processes=2)
        with pytest.raises(Refused) as alone_refusal:
            alone.submit(broken, batch_size=40, processes=1)
        assert shared_refusal.value.outcome.index == alone_refusal.value.outcome.index == bad
        assert str(shared_refusal.value.outcome.error) == str(alone_refusal.value.outcome.error)
        assert shared_refusal.value.outcome.error.rule == alone_refusal.value.outcome.error.rule  # type: ignore[union-attr]
        assert _log(ledger) == _log(alone)
        assert not ledger.commands([c["id"] for c in commands[bad:]])
        # The fixed file: what was recorded is skipped, the rest recorded, as in one process.
        outcomes = ledger.submit(commands, batch_size=40, processes=2)
        assert sum(o.duplicate for o in outcomes) == bad
        alone.submit(commands, batch_size=40, processes=1)
        assert _log(ledger) == _log(alone)
    finally:
        ledger.close()
        alone.close()


def test_a_command_id_used_again_on_another_deciders_appraisal_is_refused_as_in_one_process(
        db_url: str, empty_url: str) -> None:
    commands = _year()[:300]
    keys = sorted({c["appraisal"] for c in commands if c["type"] == "rating.record"})
    first = next(k for k in keys if parallel.decider_of(k, 2) == 0)
    second = next(k for k in keys if parallel.decider_of(k, 2) == 1)
    person = {k: c["actor"] for c in commands if c["type"] == "rating.record" and c.get("rater_role") == "self"
              for k in [c["appraisal"]]}
    resent = _rating("t-twice", first, person[first], 11)
    clash = _rating("t-twice", second, person[second], 11)
    shared, alone = AppraisalLedger(db_url), AppraisalLedger(empty_url)
    try:
        for ledger, processes in ((shared, 2), (alone, 1)):
            outcomes = ledger.submit([*commands, resent, *commands[:5], resent], batch_size=40, processes=processes)
            assert outcomes[-1].duplicate and outcomes[-1].answer == outcomes[len(commands)].answer
            with pytest.raises(Refused) as refused:
                ledger.submit([*commands[5:9], clash], batch_size=40, processes=processes)
            assert refused.value.outcome.index == 4 and refused.value.outcome.error.rule == "idempotency"  # type: ignore[union-attr]
        assert _log(shared) == _log(alone)
    finally:
        shared.close()
        alone.close()


def _decider_dying_at_its_third_answer(db_url: str, now: Any, actor: str | None, conn: Any) -> None:
    """A decider that dies without a word (as one killed would) instead of sending its third answer."""
    answers = 0

    class Dying:
        def send_bytes(self, data: bytes) -> None:
            nonlocal answers
            answers += 1
            if answers == 3:
                os._exit(3)
            conn.send_bytes(data)

        def recv_bytes(self) -> bytes:
            return conn.recv_bytes()

        def close(self) -> None:
            conn.close()

    parallel.run_decider(db_url, now, actor, Dying())


def test_when_a_decider_dies_the_rest_is_decided_in_one_process(
        db_url: str, empty_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    commands = _year()
    alone = _import(empty_url, commands, processes=1)
    monkeypatch.setattr(parallel, "run_decider", _decider_dying_at_its_third_answer)
    with capture_logs() as logs:
        shared = _import(db_url, commands, processes=2)
    try:
        assert [e["event"] for e in logs] == ["import: deciding the rest in one process"]
        assert "import-decider-" in logs[0]["reason"] and "exit code 3" in logs[0]["reason"]
        assert logs[0]["from_command"] > 0
        assert _log(shared) == _log(alone)
        assert verify(log_store(shared.recorder)).ok
    finally:
        shared.close()
        alone.close()


def test_when_another_writer_gets_in_first_the_rest_is_decided_in_one_process(db_url: str) -> None:
    commands = _year()
    ledger, other = AppraisalLedger(db_url), AppraisalLedger(db_url)
    rated = commands[400]
    assert rated["type"] == "rating.record"
    outside = _rating("t-outside", rated["appraisal"], rated["actor"], 12, score="70")
    outside["rater"], outside["rater_role"] = rated["rater"], rated["rater_role"]
    written: list[int] = []

    def between_batches(done: int) -> None:
        written.append(done)
        if sum(written) >= 300 and not other.commands(["t-outside"]):
            other.submit_one(outside)  # the deciders hold that appraisal as it was before this

    try:
        with capture_logs() as logs:
            outcomes = ledger.submit(commands, batch_size=40, processes=2, on_progress=between_batches)
        assert [e["event"] for e in logs] == ["import: deciding the rest in one process"]
        assert "stale read" in logs[0]["reason"] or "unique" in logs[0]["reason"].lower()
        assert len(outcomes) == len(commands) and all(o.accepted and not o.duplicate for o in outcomes)
        # Every command's events once, the outside rating, and the revision of the publication.
        assert ledger.event_count() == sum(o.answer["events"] for o in outcomes) + 1 + 1
        ratings = [r.command_id for r in ledger.appraisal(rated["appraisal"]).facts.ratings]  # type: ignore[union-attr]
        imported = [c["id"] for c in commands if c.get("appraisal") == rated["appraisal"]
                    and c["type"] == "rating.record"]
        assert sorted(ratings) == sorted([*imported, "t-outside"])
        assert verify(log_store(ledger.recorder)).ok
    finally:
        ledger.close()
        other.close()


def test_the_command_line_imports_with_deciders_and_names_the_refused_line_as_in_one_process(
        db_url: str, empty_url: str, tmp_path: Path) -> None:
    """`appraisal import --processes 2`: the same message for a refused line (line numbers count
    from 1), the same log, and the fixed file then imported with the recorded lines skipped."""
    from tests.integration.test_replay_stores import appraisal
    from tests.worked_example import write

    commands = _year()
    broken = [*commands[:500], {**commands[500], "score": "101"}, *commands[501:]]
    bad, good = write(tmp_path / "bad.jsonl", broken), write(tmp_path / "good.jsonl", commands)
    answers = []
    for url, processes in ((db_url, "2"), (empty_url, "1")):
        refused = appraisal(url, tmp_path, "import", str(bad), "--batch-size", "40", "--processes", processes)
        done = appraisal(url, tmp_path, "import", str(good), "--batch-size", "40", "--processes", processes)
        assert done.returncode == 0, done.stderr
        answers.append((refused.returncode, refused.stderr, done.stderr.splitlines()[-1]))  # (after a checkpoint's name)
    assert answers[0] == answers[1]
    assert answers[0][0] != 0 and "recorded 已记录 500 command(s) before line 501" in answers[0][1]
    assert "line 501: refused 拒绝 — score: 101 is out of range" in answers[0][1]
    assert "skipped" in answers[0][2] and "500 already recorded" in answers[0][2]
    shared, alone = AppraisalLedger(db_url), AppraisalLedger(empty_url)
    try:
        assert _log(shared) == _log(alone)
    finally:
        shared.close()
        alone.close()


def test_an_import_going_on_from_the_middle_of_a_batch_ends_it_where_it_would_have_ended() -> None:
    from api.ledger import _batches

    sizes = [[index for index, _ in batch] for batch in _batches(((i, {}) for i in range(42, 125)), 40)]
    assert sizes == [list(range(42, 80)), list(range(80, 120)), list(range(120, 125))]


def test_an_import_into_a_store_in_memory_is_decided_in_one_process(tmp_path: Path) -> None:
    """No other process reaches `memory://` (or SQLite's `:memory:`): asked for two processes, the
    import is decided in this one, and records what a shared import into a file records."""
    assert not parallel.shareable("memory://") and not parallel.shareable("sqlite:///:memory:")
    assert not parallel.shareable("sqlite:///file:x?mode=memory&cache=shared")
    assert parallel.shareable(f"sqlite:///{tmp_path}/a.db") and parallel.shareable("postgresql://h/db?schema=s")
    commands = _year()
    with capture_logs() as logs:  # (deciders started on an empty store of their own would be refused)
        in_memory = _import("memory://", commands, processes=2)
    in_file = _import(f"sqlite:///{tmp_path}/file.db", commands, processes=2)
    try:
        assert logs == []
        assert in_memory.results(2025) == in_file.results(2025)
        assert in_memory.event_count() == in_file.event_count()
    finally:
        in_memory.close()
        in_file.close()


def test_how_many_deciders_an_import_uses() -> None:
    assert parallel.decider_count(None, 2, parallel.PARALLEL_FROM - 1) == 1
    assert parallel.decider_count(None, 2, parallel.PARALLEL_FROM) == 2
    assert parallel.decider_count(None, 16, parallel.PARALLEL_FROM) == parallel.MAX_DECIDERS
    assert parallel.decider_count(None, 1, 10 ** 6) == 1
    assert parallel.decider_count(3, 1, 10) == 3
    assert parallel.decider_count(1, 8, 10 ** 6) == 1
    keys = [f"{year}:p-{n:03d}" for year in (2025, 2026) for n in range(1000)]
    for deciders in (2, 3, 4):
        counts = [sum(parallel.decider_of(k, deciders) == d for k in keys) for d in range(deciders)]
        weights = [parallel.OWN_SHARE, *([1.0] * (deciders - 1))]
        expected = [len(keys) * w / sum(weights) for w in weights]
        assert all(abs(c - e) < e * 0.15 for c, e in zip(counts, expected, strict=True)), (counts, expected)
    assert all(parallel.decider_of(k, 1) == 0 for k in keys[:50])
