"""Looking back folds only what the year reads (issue 17, job 8), on SQLite and PostgreSQL: the
appraisals of other years and the years it does not read pass undecoded (projections/events.py
`fold(..., year=...)`), and `results_at` and `explain_at` give exactly the documents, and the
refusals, that the fold of the whole log gave (the reference below is that code as it was), at
every recording time and position, on a log of three years with publications and appeals across
them, and where recording times go back across years (concurrent writers)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from api.ledger import AppraisalLedger
from domain.aggregates import LedgerEvent
from domain.errors import NotFound
from domain.log import LedgerState
from domain.results import compute_year, explanation, export
from projections.events import fold, read_events
from projections.reading import explain_at, results_at, year_at
from tests.builders.staff_years import staff_years
from tests.builders.years import Years

YEARS = (2023, 2024, 2025)
KEYS = ("2023:p-3", "2024:p-3", "2024:d-01", "2025:p-3", "2025:p-9", "2026:p-1", "p-3", "x:p-3", "2024:")
KNOWN_AT = (None, datetime.fromisoformat("2024-03-01T09:00:00+08:00"),
            datetime.fromisoformat("2025-01-22T00:00:00+08:00"))


# --- the reference: the fold of the whole log and the two views as they were (before `year`) ------

def whole_fold(ledger: Any, *, stop: int | None = None, recorded_by: datetime | None = None) -> LedgerState:
    state = LedgerState()
    command: list[tuple[int, Any]] = []
    for position, event in read_events(ledger, stop=stop):
        command_id = getattr(event, "command_id", None)
        if command and (command_id is None or command_id != getattr(command[-1][1], "command_id", None)):
            for at, earlier in command:
                state.apply(earlier, at)
            command = []
        if recorded_by is not None and event.timestamp > recorded_by:
            return state
        command.append((position, event))
    for at, earlier in command:
        state.apply(earlier, at)
    return state


def stamp(document: dict[str, Any], as_of: datetime | None, known_at: datetime | None) -> dict[str, Any]:
    if as_of is not None:
        document["as_of"] = as_of.isoformat()
    if known_at is not None:
        document["known_at"] = known_at.isoformat()
    return document


def whole_results_at(ledger: Any, year: int, *, as_of: datetime | None = None, known_at: datetime | None = None,
                     stop: int | None = None) -> dict[str, Any]:
    state = whole_fold(ledger, stop=stop, recorded_by=as_of)
    return stamp(export(compute_year(state.year_facts(year, known_at=known_at))), as_of, known_at)


def whole_explain_at(ledger: Any, appraisal: str, *, as_of: datetime | None = None,
                     known_at: datetime | None = None) -> dict[str, Any]:
    state = whole_fold(ledger, recorded_by=as_of)
    record = state.appraisals.get(appraisal)
    if record is None or (known_at is not None and record.opened_at > known_at):
        raise NotFound("appraisal", f"no appraisal {appraisal} at that time", rule="appraisal-open")
    facts = state.year_facts(record.facts.year, known_at=known_at)
    subject = record.facts.subject.id
    chosen = next(a for a in facts.appraisals if a.subject.id == subject)
    return stamp(explanation(compute_year(facts), subject, chosen), as_of, known_at)


def outcome(view: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> str:
    """The document's exact JSON text, or the refusal (its rule and message)."""
    try:
        return json.dumps(view(*args, **kwargs), ensure_ascii=False, default=str)
    except NotFound as refused:
        return f"refused {refused.rule}: {refused}"


# ---------------------------------------------------------------------------------------------------

@pytest.fixture
def ledger(db_url: str) -> Iterator[AppraisalLedger]:
    ledger = AppraisalLedger(db_url, clock=lambda: datetime.fromisoformat("2025-03-10T09:00:00+08:00"))
    yield ledger
    ledger.close()


def moments(ledger: AppraisalLedger, every: int) -> list[datetime | None]:
    """Recording times across the log: every `every`th event's, and a microsecond before it."""
    stamps = [event.timestamp for _, event in read_events(ledger)][::every]
    return [None, *stamps, *(t - timedelta(microseconds=1) for t in stamps)]


def command_ends(ledger: AppraisalLedger) -> list[int]:
    """The positions where a command's events end (where the log ends when nothing is being written)."""
    events = list(read_events(ledger))
    return [position for (position, event), (_, after) in zip(events, [*events[1:], (0, None)], strict=True)
            if after is None or getattr(after, "command_id", None) != getattr(event, "command_id", None)]


def test_the_year_alone_gives_what_the_whole_log_gave_at_every_time(ledger: AppraisalLedger) -> None:
    ledger.submit(staff_years())  # 2023 and 2024 published; appeals on 2024 recorded amid 2025
    checked = 0
    for as_of in moments(ledger, 23):
        for known_at in KNOWN_AT:
            times = {"as_of": as_of, "known_at": known_at}
            for year in YEARS:
                assert outcome(results_at, ledger, year, **times) == \
                    outcome(whole_results_at, ledger, year, **times), (year, times)
            for key in KEYS:
                assert outcome(explain_at, ledger, key, **times) == \
                    outcome(whole_explain_at, ledger, key, **times), (key, times)
                checked += 1
    assert checked > 200
    for stop in command_ends(ledger)[::7]:  # the pages fold up to the log's last position
        for year in YEARS:
            assert outcome(results_at, ledger, year, stop=stop) == \
                outcome(whole_results_at, ledger, year, stop=stop), (year, stop)
    # something to compare: documents of each kind, and each refusal
    shown = " ".join(outcome(explain_at, ledger, key, known_at=KNOWN_AT[1])[:60] for key in KEYS)
    assert '{"appraisal": "2024:p-3"' in shown and "refused appraisal-open: " in shown
    assert outcome(results_at, ledger, 2026).startswith("refused year-open")


def test_a_recording_time_cuts_the_log_where_it_did_when_recording_times_go_back_across_years(
        ledger: AppraisalLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    """Concurrent writers can record a command of one year after another's with an earlier
    timestamp. The log shown at a recording time ends before the first event recorded after it,
    whichever year that event is of: an event of another year that passes undecoded still cuts."""
    ledger.submit(Years().year(2024, dict.fromkeys(Years.PEOPLE, "90")).year(2025, dict.fromkeys(Years.PEOPLE, "80"))
                  .commands)
    start = datetime.now().astimezone() + timedelta(seconds=10)
    stamps = iter([start + timedelta(seconds=10), start + timedelta(seconds=5)])
    monkeypatch.setattr(LedgerEvent, "create_timestamp", staticmethod(lambda: next(stamps)))
    for n, key in enumerate(("2024:p-2", "2025:p-2")):  # 2024's at start+10s, then 2025's at start+5s
        ledger.submit([{"type": "occurrence.record", "id": f"late-{n}", "actor": "hr-office",
                        "at": "2025-03-02T09:00:00+08:00", "appraisal": key, "item": "report_adopted_provincial"}])
    between = start + timedelta(seconds=7)  # after 2025's occurrence was stamped, before 2024's
    assert results_at(ledger, 2025, as_of=between) == whole_results_at(ledger, 2025, as_of=between)
    then = explain_at(ledger, "2025:p-2", as_of=between)
    assert then == whole_explain_at(ledger, "2025:p-2", as_of=between)
    assert "late-1" not in {e["command"] for e in then["events"]}  # 2025's occurrence is not shown yet
    assert "late-1" in {e["command"] for e in explain_at(ledger, "2025:p-2")["events"]}


def test_the_appraisals_of_other_years_pass_undecoded(ledger: AppraisalLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger.submit(staff_years())
    decoded: list[Any] = []
    real = ledger.mapper.to_domain_event

    def counted(stored: Any) -> Any:
        event = real(stored)
        decoded.append(event)
        return event

    monkeypatch.setattr(ledger.mapper, "to_domain_event", counted)
    whole = fold(ledger)
    elsewhere = {a.id for key, a in whole.appraisals.items() if not key.startswith("2025:")}
    assert sum(e.originator_id in elsewhere for e in decoded) > 3 * len(elsewhere)
    decoded.clear()
    state = fold(ledger, year=2025)
    assert state.years.keys() == {2023, 2024, 2025}  # the two years before: their publications' tiers
    assert {key.split(":")[0] for key in state.appraisals} == {"2025"}
    assert state.appraisals.keys() == {k for k in whole.appraisals if k.startswith("2025:")}
    met = [e for e in decoded if e.originator_id in elsewhere]
    assert len(met) == len(elsewhere) and all(e.originator_version == 1 for e in met)  # at their opening only


def test_a_year_looked_back_is_the_same_after_events_it_says_do_not_count(ledger: AppraisalLedger) -> None:
    """The server keeps a year looked back while the log grows, as long as nothing appended since
    counts (`YearAt.counts`: as of a recording time the log has gone past, nothing; otherwise no
    fact on an appraisal it holds, at or before `known_at`). Checked here against the year folded
    again at the later position, at positions across three years, for each time and each year."""
    ledger.submit(staff_years())
    for tie in results_at(ledger, 2025).get("unresolved_ties") or []:  # then 2025 published, alone
        ledger.submit([{"type": "year.tie_break", "id": f"kept-tie-{tie['people'][0]}", "actor": "admin",
                        "at": "2025-02-27T09:00:00+08:00", "year": 2025, "order": tie["people"],
                        "reason": "按姓名 by name"}])
    ledger.submit([{"type": "year.publish", "id": "kept-publish", "actor": "admin", "year": 2025,
                    "at": "2025-03-01T09:00:00+08:00"}])
    ends = command_ends(ledger)
    stops = [*ends[::9], ends[-2]]
    as_ofs = [None, *[t for t in moments(ledger, 61) if t is not None][:3]]
    after_publication = datetime.fromisoformat("2025-03-05T00:00:00+08:00")
    same = counted = 0
    for index, stop in enumerate(stops):
        for later in {*stops[index + 1:index + 4], ends[-1]} - {stop}:
            events = [event for _, event in read_events(ledger, start=stop, stop=later)]
            for year in YEARS:
                for known_at in (*KNOWN_AT, after_publication):
                    for as_of in as_ofs:
                        made = year_at(ledger, year, as_of=as_of, known_at=known_at, stop=stop)
                        if any(made.counts(event) for event in events):
                            counted += 1
                            continue
                        again = year_at(ledger, year, as_of=as_of, known_at=known_at, stop=later)
                        assert outcome(made.document) == outcome(again.document), (year, stop, later, known_at, as_of)
                        for key in KEYS:
                            if key.startswith(f"{year}:"):
                                assert outcome(made.explanation, key) == outcome(again.explanation, key)
                        same += 1
    assert same > 100 and counted > 100  # both ways, many times
