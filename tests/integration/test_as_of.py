"""As-of views on both time axes (issue 3), on SQLite and PostgreSQL:
- `known_at` (business time): only the facts that had happened by then — a rating replaced after a
  date counts with its old score before that date and its new one after;
- `as_of` (recording time): what the system showed then — "what did the publication say on
  3 January?", although an appeal decided after publication has changed the figures since.
Recording times are the library's event timestamps (the server clock), so the tests take the
moment between two submits; the ledger's `clock` sets the business time of commands that give
none, and no command's may be more than 5 minutes after it (COMMANDS.md § Envelope)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from api.ledger import AppraisalLedger
from domain.errors import NotFound
from projections.reading import explain_at, results_at
from tests.builders.worked_example import APPEAL, DEDUCTION, OVERTURN, build

APPRAISAL = Path(sys.executable).with_name("appraisal")
YEAR = 2025
REPLACED_AT = "2025-12-28T10:00:00+08:00"  # the in-charge leader corrects p-A's December rating
REPLACEMENT = {"type": "rating.record", "id": "as-of-replace", "actor": "p-L1", "at": REPLACED_AT,
               "appraisal": "2025:p-A", "leaf": "business", "period": "2025-12", "rater": "p-L1",
               "rater_role": "in_charge", "score": "60"}
BEFORE = datetime.fromisoformat("2025-12-24T00:00:00+08:00")
AFTER = datetime.fromisoformat("2025-12-29T00:00:00+08:00")
PUBLISHED_ON = datetime.fromisoformat("2026-01-03T09:00:00+08:00")
DECIDED_ON = datetime.fromisoformat("2026-01-05T09:00:00+08:00")  # OVERTURN's business time


def totals(results: dict[str, Any]) -> dict[str, str]:
    return {p["id"]: p["total"] for p in results["people"]}


def figure(document: dict[str, Any], key: str) -> dict[str, Any]:
    return next(f for f in document["figures"] if f["key"] == key)


def recorded_moment() -> datetime:
    """A recording time strictly between what was submitted before and what comes after."""
    time.sleep(0.01)
    moment = datetime.now(UTC)
    time.sleep(0.01)
    return moment


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(APPRAISAL), *args, "--db", url], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "APPRAISAL_DB": url})


@pytest.fixture
def ledger(db_url: str) -> Any:
    ledger = AppraisalLedger(db_url, clock=lambda: PUBLISHED_ON)
    yield ledger
    ledger.close()


def test_a_rating_replaced_after_a_date_counts_with_its_old_score_before_and_its_new_one_after(
        ledger: AppraisalLedger) -> None:
    ledger.submit(build())
    ledger.submit([REPLACEMENT])

    before = results_at(ledger, YEAR, known_at=BEFORE)
    after = results_at(ledger, YEAR, known_at=AFTER)
    assert totals(before) == {"p-A": "79.16", "p-H1": "89.69"}  # SCORING.md §10: in charge rated 90
    assert totals(after) == totals(ledger.results(YEAR)) != totals(before)
    assert before["known_at"] == BEFORE.isoformat()

    december = "period:business:2025-12"
    old = explain_at(ledger, "2025:p-A", known_at=BEFORE)
    new = explain_at(ledger, "2025:p-A", known_at=AFTER)
    assert figure(old, december)["inputs"]["in_charge.mean"] == "90"
    assert figure(new, december)["inputs"]["in_charge.mean"] == "60"
    assert REPLACED_AT not in {e["at"] for e in old["events"]}
    first = next(e["ref"] for e in old["events"] if e["kind"] == "rating" and e["rater"] == "p-L1"
                 and e["leaf"] == "business" and e["period"] == "2025-12")
    assert first not in {s["ref"] for s in old["struck"]}
    assert first in {s["ref"] for s in new["struck"]}  # replaced by the later rating
    assert new["summary"] == ledger.explain("2025:p-A")["summary"]
    # Recording time alone does not bring the old score back: the log already holds both.
    assert totals(results_at(ledger, YEAR, as_of=datetime.now(UTC))) == totals(after)


def test_what_the_publication_said_on_3_january_stays_readable_after_an_appeal_overturned_an_item(
        ledger: AppraisalLedger) -> None:
    before_anything = recorded_moment()
    ledger.submit([*build(), DEDUCTION, APPEAL])
    ledger.submit([{"type": "year.publish", "id": "as-of-publish", "actor": "admin", "year": YEAR}])
    year = ledger.year(YEAR)
    assert year is not None
    assert year.publications[0]["at"] == PUBLISHED_ON  # no `at` given: the ledger's clock
    published = year.publications[0]["document"]
    on_3_january = recorded_moment()
    ledger.clock = lambda: DECIDED_ON  # the ledger's clock is the server's: nothing after it
    ledger.submit([OVERTURN])  # decided 5 January: the deduction on p-H1 no longer counts

    shown = results_at(ledger, YEAR, as_of=on_3_january)
    assert shown["as_of"] == on_3_january.isoformat()
    for part in ("status", "scheme", "departments", "people", "unresolved_ties"):
        assert shown[part] == published[part], part
    current = ledger.results(YEAR)
    assert totals(current) != totals(shown)
    assert totals(current)["p-H1"] != totals(shown)["p-H1"] and totals(current)["p-A"] == totals(shown)["p-A"]

    then = explain_at(ledger, "2025:p-H1", as_of=on_3_january)
    now = ledger.explain("2025:p-H1")
    row = next(p for p in published["people"] if p["id"] == "p-H1")
    assert (then["summary"]["total"], then["summary"]["rank"]) == (row["total"], row["rank"])
    assert then["summary"]["total"] != now["summary"]["total"]
    assert not [s for s in then["struck"] if s["ref"] == _ref(then, "we-ded")]
    assert [s for s in now["struck"] if s["ref"] == _ref(now, "we-ded")]
    assert explain_at(ledger, "2025:p-H1", as_of=datetime.now(UTC))["summary"] == now["summary"]

    # The same question on business time: known by 4 January, the overturn had not happened.
    known = results_at(ledger, YEAR, known_at=datetime.fromisoformat("2026-01-04T00:00:00+08:00"))
    assert totals(known) == totals(shown)
    assert totals(results_at(ledger, YEAR, known_at=datetime.fromisoformat("2026-01-06T00:00:00+08:00"))) == \
        totals(current)

    with pytest.raises(NotFound):  # nothing was recorded yet: no year to show
        results_at(ledger, YEAR, as_of=before_anything)


def _ref(document: dict[str, Any], command_id: str) -> str:
    return next(e["ref"] for e in document["events"] if e["command"] == command_id)


def test_known_at_before_the_appraisal_was_opened_is_not_found(ledger: AppraisalLedger) -> None:
    ledger.submit(build())
    opened = datetime.fromisoformat("2025-01-02T09:00:00+08:00")  # the worked example opens then
    with pytest.raises(NotFound):
        explain_at(ledger, "2025:p-A", known_at=datetime.fromisoformat("2025-01-01T00:00:00+08:00"))
    assert explain_at(ledger, "2025:p-A", known_at=opened)["appraisal"] == "2025:p-A"
    with pytest.raises(NotFound):
        explain_at(ledger, "2025:p-nobody", known_at=AFTER)


def test_the_command_line_answers_as_of_and_known_at(ledger: AppraisalLedger, db_url: str) -> None:
    ledger.submit([*build(), DEDUCTION, APPEAL, REPLACEMENT])
    ledger.submit([{"type": "year.publish", "id": "as-of-publish", "actor": "admin", "year": YEAR}])
    on_3_january = recorded_moment()
    ledger.clock = lambda: DECIDED_ON  # the ledger's clock is the server's: nothing after it
    ledger.submit([OVERTURN])

    done = cli(db_url, "results", "--year", "2025", "--as-of", on_3_january.isoformat(), "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == results_at(ledger, YEAR, as_of=on_3_january)
    assert totals(json.loads(done.stdout)) != totals(ledger.results(YEAR))

    done = cli(db_url, "explain", "2025:p-A", "--known-at", BEFORE.isoformat(), "--format", "json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document == json.loads(json.dumps(explain_at(ledger, "2025:p-A", known_at=BEFORE)))
    assert figure(document, "period:business:2025-12")["inputs"]["in_charge.mean"] == "90"

    done = cli(db_url, "explain", "2025:p-A", "--known-at", BEFORE.isoformat(), "--format", "text")
    assert done.returncode == 0, done.stderr
    assert "79.16" in done.stdout
    assert "[补录 back-dated: recorded" in done.stdout  # the worked example's 2025 business times

    done = cli(db_url, "explain", "2025:p-A", "--known-at", "2025-01-01T00:00:00+08:00")
    assert done.returncode == 1 and "no appraisal 2025:p-A" in " ".join(done.stderr.split())

    done = cli(db_url, "results", "--year", "2025", "--known-at", "2025-12-24T00:00:00")  # no offset
    assert done.returncode == 2 and "offset" in done.stderr


def test_as_of_between_the_events_of_one_command_shows_none_of_it(ledger: AppraisalLedger) -> None:
    """`appraisal.open` records the year's new subject, then the appraisal, in one transaction: a
    recording time between the two events' timestamps shows the system before the command (it
    committed after both), not a year with a subject and no appraisal."""
    from projections.events import read_events

    ledger.submit(build())
    events = [event for _, event in read_events(ledger)]
    enrolled = next(e for e in events if type(e).__name__ == "SubjectEnrolled" and e.subject == "p-A")
    opened = next(e for e in events if getattr(e, "command_id", None) == enrolled.command_id and e is not enrolled)
    assert enrolled.timestamp < opened.timestamp  # the moment below is between them
    results = results_at(ledger, YEAR, as_of=enrolled.timestamp)
    assert "p-A" not in totals(results)
    with pytest.raises(NotFound):
        explain_at(ledger, "2025:p-A", as_of=enrolled.timestamp)
    assert explain_at(ledger, "2025:p-A", as_of=opened.timestamp)["appraisal"] == "2025:p-A"
