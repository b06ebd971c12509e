"""Replays and adoption on both stores (SQLite and PostgreSQL), through the command line as a user
runs it (`appraisal replay`, `appraisal results --scheme`, `appraisal scheme diff`), and person
histories across two years under different scheme versions (read models)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from api.ledger import AppraisalLedger
from projections.projection import ReadModelProjection
from projections.reading import ReadModels
from tests.builders.corrected_scheme import ALL_FOUR, adopt, corrected, publish
from tests.builders.worked_example import build, write
from tests.builders.years import Years

APPRAISAL = Path(sys.executable).with_name("appraisal")


def appraisal(db_url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(APPRAISAL), *args], capture_output=True, text=True, cwd=cwd, timeout=120,
                          env={**os.environ, "APPRAISAL_DB": db_url})


def imported(db_url: str, tmp_path: Path, commands: list[dict[str, Any]], name: str = "in.jsonl") -> None:
    done = appraisal(db_url, tmp_path, "import", str(write(tmp_path / name, commands)))
    assert done.returncode == 0, done.stderr


def state_of_store(db_url: str) -> tuple[Any, ...]:
    """Events, last position, command table and the hash chain's head, read in this process."""
    from api.integrity.verification import walk
    from api.store.logstore import log_store

    ledger = AppraisalLedger(db_url)
    try:
        store = log_store(ledger.recorder)
        walked = walk(store)
        assert walked.problem is None
        commands = sorted(json.dumps(row, sort_keys=True, default=str) for row in store.command_rows())
        return ledger.event_count(), ledger.recorder.max_notification_id(), commands, walked.position, walked.chain
    finally:
        ledger.close()


def by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in rows}


def test_replay_through_the_command_line_records_nothing(db_url: str, tmp_path: Path) -> None:
    imported(db_url, tmp_path, [*build(), publish(corrected(*ALL_FOUR))])
    before = state_of_store(db_url)

    done = appraisal(db_url, tmp_path, "replay", "--year", "2025", "--scheme", "bianban@2", "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # SCORING.md §10 under v1 beside the four corrections (tests/unit/test_replay.py has the arithmetic)
    people = by_id(report["people"])
    assert {p: (e["old"]["total"], e["new"]["total"], e["delta"]) for p, e in people.items()} == {
        "p-A": ("79.16", "76.70", "-2.46"), "p-H1": ("89.69", "91.49", "1.80")}
    assert {k: (v["old"], v["new"]) for k, v in people["p-A"]["leaves"].items()} == {
        "business": ("34.22", "33.20"), "discipline": ("18.00", "16.00"), "innovation": ("19.04", "18.60")}
    d01 = by_id(report["departments"])["d-01"]
    assert (d01["old"]["score"], d01["new"]["score"]) == ("87.05", "90.05")
    assert report["summary"]["total_changed"] == 2 and report["summary"]["tier_changed"] == 0

    table = appraisal(db_url, tmp_path, "replay", "--year", "2025", "--scheme", "bianban@2")
    assert table.returncode == 0, table.stderr
    assert "79.16 → 76.70" in table.stdout and "87.05 → 90.05" in table.stdout
    assert "0.5 → 0.4" in table.stdout  # the scheme diff line of the staff composition weight

    results = appraisal(db_url, tmp_path, "results", "--year", "2025", "--scheme", "bianban@2", "--format", "json")
    assert results.returncode == 0, results.stderr
    replayed = json.loads(results.stdout)
    assert (replayed["status"], replayed["scheme"]) == ("replay", {"id": "bianban", "version": 2})

    diff = appraisal(db_url, tmp_path, "scheme", "diff", "bianban@1", "bianban@2", "--format", "json")
    assert diff.returncode == 0, diff.stderr
    assert len([c for c in json.loads(diff.stdout)["changes"] if c["category"] != "identity"]) == 7

    assert state_of_store(db_url) == before

    # adopting the same version gives what the replay showed
    imported(db_url, tmp_path, [adopt()], "adopt.jsonl")
    after = appraisal(db_url, tmp_path, "results", "--year", "2025", "--format", "json")
    assert after.returncode == 0, after.stderr
    adopted = json.loads(after.stdout)
    assert [(a["from"], a["to"]) for a in adopted["adoptions"]] == [("bianban@1", "bianban@2")]

    def bare(document: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in document.items() if k not in ("status", "adoptions")}

    assert bare(adopted) == bare(replayed)
    explained = appraisal(db_url, tmp_path, "explain", "2025:p-A", "--format", "json")
    assert explained.returncode == 0, explained.stderr
    document = json.loads(explained.stdout)
    assert (document["scheme"], document["summary"]["total"]) == ("bianban@2", "76.70")
    assert document["adoptions"][0]["to"] == "bianban@2"


def test_replay_of_an_unknown_version_fails_and_names_it(db_url: str, tmp_path: Path) -> None:
    imported(db_url, tmp_path, build())
    done = appraisal(db_url, tmp_path, "replay", "--year", "2025", "--scheme", "bianban@2")
    assert done.returncode != 0
    assert "bianban@2 is not published" in " ".join(done.stderr.split())


def test_person_histories_carry_each_years_scheme_version(db_url: str) -> None:
    scores = {"p-1": "100", "p-2": "90", "p-3": "80", "p-4": "70", "p-5": "60"}
    years = Years().year(2024, scores).publish(2024).year(2025, scores)
    ledger = AppraisalLedger(db_url)
    projection = None
    try:
        ledger.submit([*years.commands, publish(corrected(*ALL_FOUR), at="2026-01-06T09:00:00+08:00"),
                       adopt(at="2026-01-10T09:00:00+08:00")])
        projection = ReadModelProjection(ledger)
        projection.catch_up()
        models = ReadModels(db_url)
        try:
            history = models.person_history("p-1")
            assert [(row["year"], row["scheme"], row["status"]) for row in history] == [
                (2024, "bianban@1", "published"), (2025, "bianban@2", "provisional")]
            # p-1 under v1 in 2024: D 100, I 60 + 20 + 20 = 100 -> 100; 2025 under v2 (0.4 / 0.6): also 100
            assert [row["total"] for row in history] == ["100.00", "100.00"]
            # p-2 in 2025: business 60 × 0.9 = 54, innovation 20 × 0.9 = 18 -> I 92;
            # v2: 0.4 × 100 + 0.6 × 92 = 95.2 (v1 would give 0.5 × 100 + 0.5 × 92 = 96)
            assert [row["total"] for row in models.person_history("p-2")] == ["96.00", "95.20"]
            document = models.results(2025)
            assert document["scheme"] == {"id": "bianban", "version": 2}
            assert [(a["from"], a["to"]) for a in document["adoptions"]] == [("bianban@1", "bianban@2")]
            assert "adoptions" not in models.results(2024)
            explanation = models.explanation("2025:p-2")
            assert (explanation["scheme"], len(explanation["adoptions"])) == ("bianban@2", 1)
        finally:
            models.close()
    finally:
        if projection is not None:
            projection.close()
        ledger.close()
