"""Reads answer from what the read models hold (issue 15), over real HTTP (uvicorn on loopback), on
SQLite and PostgreSQL.

- While a recorder writes steadily, pages and API queries answer no 5xx: something absent is
  absent (404), whether or not the read models are behind the log.
- Requests waiting for a position (`?position=`) hold no thread: the server answers others while
  they wait; beyond the cap they are refused at once (503, Retry-After); once the read side gets
  there they are answered.
- The page after a member of staff's own appeal waits for it: the form's redirect names the
  appeal's position, and the page shows the appeal once the read side holds it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from api.pages.session import COOKIE
from projections.projection import ReadModelProjection
from tests.builders.http_world import World, served, world

A = "2025:p-A"
WRITES = 60  # about 3 seconds of ratings at about 20 a second
WAIT_LIMIT, BEYOND = 60, 10


def catch_up(w: World) -> None:
    """What a separate `appraisal project` worker does."""
    projection = ReadModelProjection(w.ledger)
    try:
        projection.catch_up()
    finally:
        projection.close()


def signed_in(base: str, token: str, timeout: float) -> httpx.Client:
    """A browser's client: signed in by the sign-in form (a form post of this site), holding the
    session cookie it was given."""
    client = httpx.Client(base_url=base, timeout=timeout)
    answer = client.post("/", data={"token": token}, headers={"Accept": "text/html", "Origin": base})
    assert answer.status_code == 303 and client.cookies.get(COOKIE), answer.text
    return client


def until(condition: Any, what: str, seconds: float = 30) -> None:
    """Bounded: a test never hangs on a server that does not get there."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


# --- pages and queries under a steady stream of writes ------------------------------------------------

READS = [  # (page or api, who, path, expected status)
    ("page", "admin", "/home", 200),
    ("page", "staff", f"/appraisals/{A}", 200),
    ("page", "staff", "/home", 200),
    ("page", "admin", "/years/2025", 200),
    ("page", "admin", "/years/2021", 404),
    ("api", "staff", "/me", 200),
    ("api", "admin", "/years/2025/results", 200),
    ("api", "staff", f"/appraisals/{A}/explanation", 200),
    ("api", "staff", f"/appraisals/{A}/breakdown", 200),
    ("api", "admin", "/years/2021/results", 404),
    ("api", "admin", "/appraisals/2021:p-xxx/explanation", 404),
    ("api", "admin", "/appeals?year=2021", 404),
    ("api", "admin", "/years/2021/departments", 404),
    ("api", "admin", "/years/2021/publications", 404),
    ("api", "staff", f"/appraisals/{A}/history", 200),
    ("api", "admin", "/audit?limit=5", 200),
]


def test_pages_and_queries_answer_no_5xx_while_a_recorder_writes(db_url: str) -> None:
    with world(db_url, projection="background") as w, served(w.app) as base:
        until(lambda: w.app.state.queries.position() == w.ledger.event_count(), "the projection caught up")
        written: Counter[int] = Counter()
        done = threading.Event()

        def write() -> None:
            try:
                with httpx.Client(base_url=base, headers=w.auth("leader"), timeout=30) as client:
                    for i in range(WRITES):
                        body = {"id": f"steady-{i}", "leaf": "business", "period": f"2025-{i % 12 + 1:02d}",
                                "rater_role": "in_charge", "score": str(60 + i % 40)}
                        written[client.post(f"/appraisals/{A}/ratings", json=body).status_code] += 1
                        done.wait(0.05)
            finally:
                done.set()

        pages = {who: signed_in(base, w.tokens[who], timeout=30) for who in ("admin", "staff")}
        api = httpx.Client(base_url=base, timeout=30)
        writer = threading.Thread(target=write)
        writer.start()
        answered: Counter[tuple[str, int]] = Counter()
        wrong: list[tuple[str, int, str]] = []
        rounds = behind = 0
        try:
            while not done.is_set() or rounds == 0:
                rounds += 1
                health = api.get("/health").json()
                behind += health["position"] < health["log"]
                for kind, who, path, expected in READS:
                    response = (pages[who].get(path) if kind == "page"
                                else api.get(path, headers=w.auth(who)))
                    answered[(path, response.status_code)] += 1
                    if response.status_code != expected:
                        wrong.append((path, response.status_code, response.text[:300]))
        finally:
            done.set()
            writer.join(timeout=60)
            api.close()
            for client in pages.values():
                client.close()
        assert written == {201: WRITES}
        assert not [found for found in wrong if found[1] >= 500], (wrong[:5], answered, f"{behind} of {rounds} "
                                                                 "rounds found the read models behind the log")
        assert not wrong, wrong[:5]
        assert rounds >= 2


# --- waiting for a position takes no thread ------------------------------------------------------------

def test_waiters_for_a_position_hold_no_thread_and_beyond_the_cap_are_refused_at_once(db_url: str) -> None:
    with world(db_url, projection="none", wait_seconds=60,
               wait_limit=WAIT_LIMIT) as w, served(w.app) as base:
        position = w.ledger.event_count()  # the read models are at 0: no worker runs yet
        progress = w.app.state.progress

        async def main() -> None:
            limits = httpx.Limits(max_connections=WAIT_LIMIT + BEYOND + 10)
            async with httpx.AsyncClient(base_url=base, timeout=90, limits=limits) as client:
                waiters = [asyncio.create_task(client.get(f"/years/2025/results?position={position}",
                                                          headers=w.auth("admin")))
                           for _ in range(WAIT_LIMIT + BEYOND)]
                deadline = time.monotonic() + 30
                while progress.waiting < WAIT_LIMIT or sum(t.done() for t in waiters) < BEYOND:
                    assert time.monotonic() < deadline, (progress.waiting, sum(t.done() for t in waiters))
                    await asyncio.sleep(0.01)
                refused = [t.result() for t in waiters if t.done()]
                assert len(refused) == BEYOND
                for response in refused:
                    assert response.status_code == 503, response.text
                    assert response.json()["rule"] == "position-waiters-full"
                    assert response.headers["retry-after"] == "1"
                pending = [t for t in waiters if not t.done()]

                me = await client.get("/me", headers=w.auth("staff"))
                health = await client.get("/health")
                results = await client.get("/years/2025/results", headers=w.auth("admin"))  # no position named
                assert me.status_code == 200 and me.json()["person"] == "p-A"
                assert health.status_code == 200 and health.json()["position"] == 0
                assert results.status_code == 404 and results.json()["rule"] == "year-open"
                assert progress.waiting == WAIT_LIMIT and not any(t.done() for t in pending)

                await asyncio.to_thread(catch_up, w)
                answers = await asyncio.gather(*pending)
                assert {a.status_code for a in answers} == {200}
                assert all(int(a.headers["x-log-position"]) >= position for a in answers)
                assert progress.waiting == 0

        asyncio.run(main())


def test_a_wait_that_times_out_answers_503_with_retry_after(db_url: str) -> None:
    with world(db_url, projection="none", wait_seconds=0.05) as w, \
            served(w.app) as base, httpx.Client(base_url=base, headers=w.auth("admin")) as client:
        late = client.get(f"/years/2025/results?position={w.ledger.event_count()}")
        assert late.status_code == 503 and late.json()["rule"] == "position-not-reached"
        assert late.headers["retry-after"] == "1" and w.app.state.progress.waiting == 0


# --- the page after one's own appeal ---------------------------------------------------------------------

def test_the_page_after_ones_own_appeal_waits_for_it(db_url: str) -> None:
    with world(db_url, projection="none", wait_seconds=60) as w, served(w.app) as base:
        catch_up(w)
        absence = {"type": "occurrence.record", "id": "rw-absence", "actor": "hr-office",  # appealable today
                   "at": (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0).isoformat(), "appraisal": A, "item": "absence", "count": 1,
                   "evidence": "考勤记录"}
        w.ledger.submit([absence])
        catch_up(w)
        with closing(signed_in(base, w.tokens["staff"], timeout=90)) as browser:
            posted = browser.post(f"/appraisals/{A}", data={"target": "rw-absence", "grounds": "请假已批准",
                                                             "id": "rw-appeal"},
                                  headers={"Accept": "text/html", "Origin": base})
            assert posted.status_code == 303, posted.text
            position = w.ledger.event_count()
            assert posted.headers["location"] == f"/appraisals/{A}?filed=rw-appeal&position={position}#appeals"
            shown: list[httpx.Response] = []
            reader = threading.Thread(target=lambda: shown.append(browser.get(posted.headers["location"])))
            reader.start()
            try:
                until(lambda: w.app.state.progress.waiting == 1, "the page waits for the appeal")
                catch_up(w)
            finally:
                reader.join(timeout=60)
        assert shown and shown[0].status_code == 200
        assert 'data-testid="filed"' in shown[0].text and 'data-appeal="rw-appeal"' in shown[0].text
