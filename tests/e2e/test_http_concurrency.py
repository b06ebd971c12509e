"""Dozens of clients rating, measuring and appealing on the same appraisals at once, over real
HTTP (uvicorn), on SQLite and PostgreSQL. Afterwards every accepted command is in the log exactly
once, the log holds nothing else, and the results equal a serial replay of the accepted commands
in log order into a fresh in-memory ledger."""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from api.ledger import AppraisalLedger
from tests.builders.http_world import World, served, world
from tests.builders.worked_example import build

A, H1, D01 = "2025:p-A", "2025:p-H1", "2025:d-01"
# Raters, appellants and the decider give no business time (theirs is the server's clock); the
# recorder's items are dated a few days back, inside the appeal window.
ITEM_AT = (datetime.now(UTC) - timedelta(days=3)).isoformat(timespec="seconds")
MONTHS = [f"2025-{m:02d}" for m in range(1, 13)]

# (rater, appraisal, role, leaves) as SCORING.md §5 allows in the worked example's organisation
RATERS = [
    ("p-L1", A, "in_charge", ("business", "innovation")),
    ("p-H1", A, "department_head", ("business", "innovation")),
    ("p-A", A, "self", ("business", "innovation")),
    ("p-L1", H1, "in_charge", ("business", "innovation")),
    ("p-S1", H1, "superior", ("business", "innovation")),
    ("p-L2", H1, "leadership_team", ("business", "innovation")),
    ("p-L3", H1, "leadership_team", ("business",)),
    ("p-H1", H1, "self", ("business", "innovation")),
    ("p-L2", D01, "leadership_team", ("reform_tasks",)),
    ("p-L3", D01, "leadership_team", ("reform_tasks",)),
    ("p-H1", D01, "self", ("reform_tasks",)),
]
MEASURES = [(A, "review_total", 300, 600), (A, "review_errors", 0, 12), (H1, "review_total", 0, 50),
            (D01, "function_implementation_rate", 80, 100), (D01, "zombie_cleanup_rate", 50, 100)]
ITEMS = [(A, "absence"), (A, "innovation_adopted"), (H1, "absence"), (H1, "report_adopted_provincial"),
         (D01, "valid_complaint")]
APPELLANT = {A: "p-A", H1: "p-H1", D01: "p-H1"}

RATER_THREADS, RECORDER_THREADS, APPELLANT_THREADS = 16, 8, 6
PER_THREAD = 12


class Run:
    """What the clients sent and what they were answered."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.accepted: dict[str, tuple[dict[str, Any], str, dict[str, Any]]] = {}  # id -> (body, actor, answer)
        self.statuses: Counter[tuple[int, str]] = Counter()
        self.items: list[tuple[str, str]] = []  # (appraisal, occurrence command id), for the appellants
        self.appeals: list[str] = []
        self.done = threading.Event()

    def send(self, client: httpx.Client, actor: str, path: str, body: dict[str, Any]) -> httpx.Response:
        response = client.post(path, json=body)
        rule = "" if response.status_code < 300 else response.json().get("rule", "?")
        with self.lock:
            self.statuses[(response.status_code, rule)] += 1
            if response.status_code in (200, 201):
                answer = response.json()
                earlier = self.accepted.get(body["id"])
                assert earlier is None or earlier[2]["position"] == answer["position"]
                self.accepted[body["id"]] = (body, actor, answer)
        return response


def client_for(base: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def rater(run: Run, base: str, token: str, number: int, rng: random.Random) -> None:
    person, appraisal, role, leaves = RATERS[number % len(RATERS)]
    with client_for(base, token) as client:
        for i in range(PER_THREAD):
            leaf = rng.choice(leaves)
            period = "2025" if leaf in ("innovation", "reform_tasks") and rng.random() < 0.5 else rng.choice(MONTHS)
            body = {"id": f"rate-{number}-{i}", "leaf": leaf, "period": period, "rater_role": role,
                    "score": str(rng.randint(55, 100))}
            run.send(client, person, f"/appraisals/{appraisal}/ratings", body)
            if i % 4 == 0:  # a client that did not see its answer sends the command again
                run.send(client, person, f"/appraisals/{appraisal}/ratings", body)


def recorder(run: Run, base: str, token: str, number: int, rng: random.Random) -> None:
    with client_for(base, token) as client:
        for i in range(PER_THREAD):
            if i % 2:
                appraisal, name, low, high = rng.choice(MEASURES)
                run.send(client, "hr-office", f"/appraisals/{appraisal}/measurements",
                         {"id": f"measure-{number}-{i}", "input": name, "value": str(rng.randint(low, high)),
                          "at": ITEM_AT})
                continue
            appraisal, item = rng.choice(ITEMS)
            body = {"id": f"item-{number}-{i}", "item": item, "count": 1, "at": ITEM_AT, "evidence": "台账"}
            if run.send(client, "hr-office", f"/appraisals/{appraisal}/occurrences", body).status_code == 201:
                with run.lock:
                    run.items.append((appraisal, body["id"]))


def appellant(run: Run, base: str, tokens: dict[str, str], number: int, rng: random.Random) -> None:
    clients = {person: client_for(base, token) for person, token in tokens.items()}
    try:
        for i in range(PER_THREAD):
            with run.lock:
                items = list(run.items)
            if not items:
                threading.Event().wait(0.05)
                continue
            appraisal, target = rng.choice(items[-6:])  # recent ones: several appellants race for them
            person = APPELLANT[appraisal]
            body = {"id": f"appeal-{number}-{i}", "target": target, "grounds": "申请复核"}
            if run.send(clients[person], person, f"/appraisals/{appraisal}/appeals", body).status_code == 201:
                with run.lock:
                    run.appeals.append(body["id"])
    finally:
        for client in clients.values():
            client.close()


def decider(run: Run, base: str, token: str, rng: random.Random) -> None:
    decided: set[str] = set()
    with client_for(base, token) as client:
        while not run.done.is_set() or len(decided) < len(run.appeals):
            with run.lock:
                todo = [a for a in run.appeals if a not in decided]
            for appeal in todo[:3]:
                outcome = rng.choice(["upheld", "overturned"])
                run.send(client, "admin-2", f"/appeals/{appeal}/decision",
                         {"id": f"decide-{appeal}", "outcome": outcome, "reason": "复核"})
                decided.add(appeal)
            run.done.wait(0.02)


@pytest.mark.slow
def test_concurrent_clients_record_every_accepted_command_exactly_once(db_url: str) -> None:
    with world(db_url) as w:
        credentials = w.app.state.credentials
        people = {p: credentials.create(p, (), created_by="tests")[0]
                  for p in ("p-L1", "p-L2", "p-L3", "p-S1", "p-H1", "p-A")}
        start = w.ledger.event_count()
        run = Run()
        rng = random.Random(2025)
        with served(w.app) as base:
            workers = [threading.Thread(target=rater, args=(run, base, people[RATERS[n % len(RATERS)][0]], n,
                                                            random.Random(rng.random())))
                       for n in range(RATER_THREADS)]
            workers += [threading.Thread(target=recorder, args=(run, base, w.tokens["recorder"], n,
                                                                random.Random(rng.random())))
                        for n in range(RECORDER_THREADS)]
            workers += [threading.Thread(target=appellant, args=(run, base, {"p-A": people["p-A"], "p-H1": people["p-H1"]},
                                                                 n, random.Random(rng.random())))
                        for n in range(APPELLANT_THREADS)]
            judge = threading.Thread(target=decider, args=(run, base, w.tokens["admin"], random.Random(rng.random())))
            for thread in [*workers, judge]:
                thread.start()
            for thread in workers:
                thread.join(timeout=300)
            run.done.set()
            judge.join(timeout=300)
        check(w, run, start)


def check(w: World, run: Run, start: int) -> None:
    statuses = dict(run.statuses)
    assert not [s for s in statuses if s[0] >= 500], statuses
    assert {s for s in statuses if s[0] not in (200, 201)} <= {
        (409, "one-appeal-per-item"), (409, "concurrency-conflict"), (409, "one-decision")}, statuses
    assert statuses.get((201, ""), 0) > 200 and statuses.get((200, ""), 0) > 0, statuses
    assert run.appeals, "no appeal was accepted"

    accepted = run.accepted
    rows = w.ledger.commands(list(accepted))
    assert set(rows) == set(accepted)
    for command_id, (_, _, answer) in accepted.items():
        assert rows[command_id]["position"] == answer["position"]

    # every event since the start belongs to exactly one accepted command, each event once
    notifications = w.ledger.recorder.select_notifications(start, 1_000_000, inclusive_of_start=False)
    seen = Counter(getattr(w.ledger.mapper.to_domain_event(n), "command_id", None) for n in notifications)
    assert seen == Counter({cid: answer["events"] for cid, (_, _, answer) in accepted.items()})
    # (positions are not counts: PostgreSQL's sequence skips the ids of rolled-back conflicting writes)
    assert len(notifications) == sum(answer["events"] for _, _, answer in accepted.values())

    # the results equal a serial replay of the accepted commands, in log order
    ordered = sorted(accepted.values(), key=lambda entry: entry[2]["position"])
    replay = AppraisalLedger("memory://")
    try:
        replay.submit(build())
        bodies = [{**body, "actor": actor, "type": answer["type"], **_path(body, answer)}
                  for body, actor, answer in ordered]
        outcomes = replay.submit(bodies)
        assert all(o.accepted and not o.duplicate for o in outcomes)
        assert replay.results(2025) == w.ledger.results(2025)
        for key in (A, H1, D01):
            assert replay.explain(key)["summary"] == w.ledger.explain(key)["summary"]
    finally:
        replay.close()


def _path(body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """What the path gave the command (its body left it out)."""
    if answer["type"] == "appeal.decide":
        return {"appeal": body["id"].removeprefix("decide-")}
    return {"appraisal": answer["target"]}
