"""The security review's findings, each checked end to end over HTTP (both stores):

- forms posted with a session cookie come from this site's pages (Origin, else Referer); sign-out
  is a POST and revokes the session server-side;
- bodies are limited in size (413) and JSON in depth (422 naming the field), both settings;
- no existence oracle: what does not exist is answered to staff as what is not theirs;
- every answer is `no-store` and `nosniff`; the docs are served offline under a CSP;
- failed sign-ins and bad tokens are throttled per client address (429, Retry-After).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Route, expect

from api.http.auth import SESSION_NOTE, Throttle
from api.http.guard import too_deep
from api.http.problems import Problem
from api.pages.session import COOKIE
from tests.builders.http_world import World, served, world

A, H1 = "2025:p-A", "2025:p-H1"
HTML = {"Accept": "text/html,application/xhtml+xml"}
HERE = "http://testserver"
SCHEME = Path(__file__).resolve().parents[2] / "domain" / "schemes" / "bianban-v1.json"


@pytest.fixture
def w(db_url: str) -> Iterator[World]:
    with world(db_url) as made:
        yield made


@pytest.fixture
def client(w: World) -> Iterator[TestClient]:
    with TestClient(w.app) as made:
        yield made


def problem(response: httpx.Response, status: int, rule: str, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["rule"] == rule, body
    if field is not None:
        assert body["field"] == field, body
    return body


def sign_in(client: TestClient, token: str) -> str:
    response = client.post("/", data={"token": token}, headers={**HTML, "Origin": HERE}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return response.cookies[COOKIE]


def an_appeal(w: World) -> str:
    """p-A's appeal of an absence (recorded straight in the ledger)."""
    w.ledger.submit([
        {"type": "occurrence.record", "id": "sec-occ", "actor": "hr-office", "at": "2025-12-01T09:00:00+08:00",
         "appraisal": A, "item": "absence", "count": 1, "evidence": "考勤"},
        {"type": "appeal.file", "id": "sec-appeal", "actor": "p-A", "at": "2025-12-05T09:00:00+08:00",
         "appraisal": A, "target": "sec-occ", "grounds": "因公外出"},
    ])
    return "sec-appeal"


# --- 1. forms: this site's origin only; sign-out by POST revokes the session --------------------------

def test_a_form_post_needs_this_sites_origin_or_referer(w: World, client: TestClient) -> None:
    sign_in(client, w.tokens["staff"])
    before = w.ledger.event_count()
    form = {"target": "we-027", "grounds": "g", "id": "x-form"}
    for headers in ({"Origin": "null"}, {}, {"Origin": "https://evil.example"},
                    {"Referer": "https://evil.example/appraisals/2025:p-A"}, {"Origin": "null", "Referer": f"{HERE}/"},
                    {"Origin": "http://testserver.evil.example"}):
        refused = client.post(f"/appraisals/{A}", data=form, headers={**HTML, **headers}, follow_redirects=False)
        assert refused.status_code == 403 and "其他网站" in refused.text, headers
    assert w.ledger.event_count() == before
    # a browser that sends no Origin but a Referer of this site's page
    same = client.post(f"/appraisals/{A}", data=form, headers={**HTML, "Referer": f"{HERE}/appraisals/{A}"},
                       follow_redirects=False)
    assert same.status_code != 403, same.text
    # signing in and out are forms too (no sign-in forced from another site)
    client.cookies.clear()
    assert client.post("/", data={"token": w.tokens["staff"]}, headers=HTML).status_code == 403
    assert client.post("/", data={"token": w.tokens["staff"]}, headers={**HTML, "Origin": "null"}).status_code == 403


def test_sign_out_is_a_post_and_revokes_the_session(w: World, client: TestClient) -> None:
    cookie = sign_in(client, w.tokens["staff"])
    assert cookie != w.tokens["staff"] and w.tokens["staff"] not in cookie  # the API's token is never the cookie
    assert client.get("/home", headers=HTML).status_code == 200
    assert client.get("/logout", headers=HTML, follow_redirects=False).status_code == 405  # a link signs no one out
    assert client.post("/logout", headers=HTML, follow_redirects=False).status_code == 403  # nor another site
    assert client.get("/home", headers=HTML).status_code == 200
    out = client.post("/logout", headers={**HTML, "Origin": HERE}, follow_redirects=False)
    assert out.status_code == 303 and f'{COOKIE}=""' in out.headers["set-cookie"]
    client.cookies.set(COOKIE, cookie)  # the old cookie, kept by someone
    again = client.get("/home", headers=HTML, follow_redirects=False)
    assert again.status_code == 401 and "令牌已被吊销" in again.text
    sessions = [r for r in w.app.state.credentials.list() if r.note == SESSION_NOTE]
    assert [(s.person, s.revoked_by) for s in sessions] == [("p-A", "sign-out")]
    client.cookies.clear()
    assert client.get("/me", headers=w.auth("staff")).status_code == 200  # the token signed in with still works


def test_a_session_ends_with_the_token_it_was_opened_with(w: World, client: TestClient) -> None:
    sign_in(client, w.tokens["head"])
    w.app.state.credentials.revoke(w.tokens["head"], by="tests")
    assert client.get("/home", headers=HTML, follow_redirects=False).status_code == 401


# --- 2. limits of a body ---------------------------------------------------------------------------------

def deep_scheme(levels: int) -> str:
    """The builtin scheme with its first department criterion nested `levels` nodes deep (the
    JSON text built by hand: Python's own encoder refuses such depths)."""
    document = json.loads(SCHEME.read_text())
    leaf = json.dumps(document["department"][0])
    node = '{"id": "n%d", "name": {"zh": "层", "en": "level"}, "points": "40", "children": ['
    nested = "".join(node % i for i in range(levels)) + leaf + "]}" * levels
    rest = json.dumps({**document, "version": 2, "supersedes": 1, "department": ["@"]})
    return '{"document": ' + rest.replace('["@"]', "[" + nested + "]") + "}"


@pytest.mark.parametrize("levels", [900, 20])
def test_a_scheme_nested_too_deep_is_refused_naming_the_field(w: World, client: TestClient, levels: int) -> None:
    before = w.ledger.event_count()
    for path, text in (("/schemes", deep_scheme(levels)),
                       ("/commands", '{"type": "scheme.publish", ' + deep_scheme(levels)[1:])):
        response = client.post(path, content=text, headers={**w.auth("admin"), "Content-Type": "application/json"})
        body = problem(response, 422, "body-depth", "document")
        assert "32" in body["detail"]
    assert w.ledger.event_count() == before


def test_the_depth_limit_is_a_setting_and_counts_no_bracket_inside_a_string(db_url: str) -> None:
    with world(db_url, body_max_depth=6) as w, TestClient(w.app) as client:
        deep = {"id": "d1", "score": "80", "leaf": "business", "period": "2025-12", "rater_role": "self",
                "note": {"a": [[[[["x"]]]]]}}
        problem(client.post(f"/appraisals/{A}/ratings", json=deep, headers=w.auth("staff")), 422, "body-depth", "note")
        shallow = {**deep, "note": "[[[[[[[[{{{{{{{{\\\"[[[[[["}
        problem(client.post(f"/appraisals/{A}/ratings", json=shallow, headers=w.auth("staff")), 422,
                "command-fields", "note")  # refused by the command's fields, not by the depth
    assert too_deep(b'{"a": "[[[[[[[[[[", "b": [1]}', 2) is None
    assert too_deep(b'{"a": "\\"[[[[", "b": [[[1]]]}', 2) == "b"
    assert too_deep(b"[[[[]]]]", 3) == "(body)"


def test_a_body_too_large_is_413_before_any_route(db_url: str) -> None:
    with world(db_url, body_max_bytes=4096) as w, TestClient(w.app) as client:
        before = w.ledger.event_count()
        big = {"id": "big", "score": "80", "leaf": "business", "period": "2025-12", "rater_role": "self",
               "note": "x" * 5000}
        problem(client.post(f"/appraisals/{A}/ratings", json=big, headers=w.auth("staff")), 413, "body-size", "(body)")
        chunks = iter([b'{"id": "big", "note": "', b"x" * 3000, b"x" * 3000, b'"}'])  # no Content-Length
        problem(client.post(f"/appraisals/{A}/ratings", content=chunks,
                            headers={**w.auth("staff"), "Content-Type": "application/json"}), 413, "body-size")
        form = client.post(f"/appraisals/{A}", data={"grounds": "x" * 5000}, headers={**HTML, "Origin": HERE})
        assert form.status_code == 413
        assert w.ledger.event_count() == before
        small = client.post(f"/appraisals/{A}/ratings", json={**big, "note": None, "id": "small"}, headers=w.auth("staff"))
        assert small.status_code != 413


# --- 3. no existence oracle ---------------------------------------------------------------------------------

def test_staff_cannot_tell_an_unknown_appeal_or_appraisal_from_anothers(w: World, client: TestClient) -> None:
    appeal = an_appeal(w)
    head = w.auth("head")
    known = client.get(f"/appeals/{appeal}", headers=head)
    unknown = client.get("/appeals/no-such-appeal", headers=head)
    problem(known, 403, "appeal-access")
    assert (unknown.status_code, unknown.json()) == (known.status_code, known.json())
    problem(client.get("/appeals/no-such-appeal", headers=w.auth("admin")), 404, "appeal-known")
    assert client.get(f"/appeals/{appeal}", headers=w.auth("staff")).status_code == 200
    # the write side: a decision by someone without the admin grant
    decide = {"outcome": "upheld", "reason": "r"}
    known = client.post(f"/appeals/{appeal}/decision", json={**decide, "id": "d1"}, headers=head)
    unknown = client.post("/appeals/no-such-appeal/decision", json={**decide, "id": "d1"}, headers=head)
    problem(known, 403, "role-required")
    assert (unknown.status_code, unknown.json()) == (known.status_code, known.json())
    # an appeal filed on another's appraisal and on one that does not exist
    appeal_on = {"target": "sec-occ", "grounds": "g", "id": "a1"}
    known = client.post(f"/appraisals/{H1}/appeals", json=appeal_on, headers=w.auth("staff"))
    problem(known, 403, "appeal-by-subject", "actor")
    for key in ("2025:p-nobody", "2031:p-A"):
        unknown = client.post(f"/appraisals/{key}/appeals", json=appeal_on, headers=w.auth("staff"))
        assert unknown.json() == {**known.json(), "detail": known.json()["detail"].replace(H1, key)}
        also = client.post("/commands", json={**appeal_on, "type": "appeal.file", "appraisal": key}, headers=w.auth("staff"))
        assert also.json() == unknown.json()
    # an appraisal: another's and an unknown one, before publication
    for read in ("explanation", "breakdown", "history"):
        known = client.get(f"/appraisals/{H1}/{read}", headers=w.auth("staff"))
        unknown = client.get(f"/appraisals/2025:p-nobody/{read}", headers=w.auth("staff"))
        assert known.status_code == unknown.status_code == 403, read
        assert known.json()["rule"] == unknown.json()["rule"], read
        assert known.json()["detail"].replace(H1, "?") == unknown.json()["detail"].replace("2025:p-nobody", "?")
        problem(client.get(f"/appraisals/2025:p-nobody/{read}", headers=w.auth("inspector")), 404, "appraisal-open")
    # people and departments: one with no published year
    for path, other, nobody in (("/people/{}/history", "p-H1", "p-nobody"),
                                ("/departments/{}/history", "d-01", "d-99")):
        seen = client.get(path.format(other), headers=w.auth("outsider")).json()
        unseen = client.get(path.format(nobody), headers=w.auth("outsider")).json()
        assert seen["years"] == unseen["years"] == [] and seen["view"] == unseen["view"] == "published"
        assert client.get(path.format(nobody), headers=w.auth("admin")).status_code == 404


def test_after_publication_an_unknown_appraisal_is_404_for_everyone(w: World, client: TestClient) -> None:
    w.ledger.submit([{"type": "year.publish", "id": "sec-publish", "actor": "admin-2", "year": 2025}])
    assert client.get(f"/appraisals/{H1}/breakdown", headers=w.auth("staff")).status_code == 200
    problem(client.get("/appraisals/2025:p-nobody/breakdown", headers=w.auth("staff")), 404, "appraisal-open")


# --- 4. headers ------------------------------------------------------------------------------------------------

def test_every_answer_is_no_store_and_nosniff(w: World, db_url: str) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    with TestClient(w.app, raise_server_exceptions=False) as client:
        answers = [
            client.get("/health"), client.get("/me"), client.get("/me", headers=w.auth("staff")),
            client.get("/openapi.json"), client.get("/no/such/path"),
            client.post(f"/appraisals/{A}/ratings", json={"id": "h1"}, headers=w.auth("staff")),
            client.get("/years/2025/results", headers=w.auth("admin")),
            client.get("/", headers=HTML),
        ]
        w.app.state.queries.year = boom  # the server's last handler: a 500
        answers.append(client.get("/years/2025/results", headers=w.auth("staff")))
    assert [a.status_code for a in answers] == [200, 401, 200, 200, 404, 422, 200, 200, 500]
    for answer in answers:
        assert answer.headers["cache-control"] == "no-store", answer.request.url
        assert answer.headers["x-content-type-options"] == "nosniff", answer.request.url
    with TestClient(w.app) as client:
        css = client.get("/assets/pages.css")  # a page's own headers are kept
    assert css.headers["cache-control"] == "max-age=300" and css.headers["x-content-type-options"] == "nosniff"


# --- 5. the docs, offline ------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_docs_load_nothing_from_another_host(w: World, client: TestClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert not re.findall(r"https?://", page.text), page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert not re.findall(r"https?:|\*", policy), policy
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(a.startswith("/") and not a.startswith("//") for a in assets), assets
    for asset in assets:
        answer = client.get(asset)
        assert answer.status_code == 200 and len(answer.content) > 1000, asset
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert client.get("/openapi.json").status_code == 200


# --- 6. throttling ------------------------------------------------------------------------------------------

def test_failures_from_one_address_are_throttled_and_others_are_not(db_url: str) -> None:
    with world(db_url, auth_failures_max=3) as w, \
            TestClient(w.app, client=("10.0.0.1", 5000)) as guesser, \
            TestClient(w.app, client=("10.0.0.2", 5000)) as colleague:
        for guess, rule in (("al_" + "x" * 40, "token-unknown"), ("al_" + "y" * 40, "token-unknown"),
                            ("not-a-token", "token-malformed")):
            problem(guesser.get("/me", headers={"Authorization": f"Bearer {guess}"}), 401, rule)
        refused = guesser.get("/me", headers=w.auth("staff"))  # even a good token, from there
        problem(refused, 429, "too-many-failures", "authorization")
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        page = guesser.post("/", data={"token": w.tokens["staff"]}, headers={**HTML, "Origin": HERE})
        assert page.status_code == 429 and "retry-after" in page.headers
        assert guesser.get("/me").status_code == 401  # no token: nothing to throttle
        # another address: its sign-in and its tokens work
        assert colleague.get("/me", headers=w.auth("staff")).status_code == 200
        sign_in(colleague, w.tokens["staff"])
        assert colleague.get("/home", headers=HTML).status_code == 200


def test_failed_sign_ins_count_and_the_window_passes() -> None:
    now = [0.0]
    throttle = Throttle(2, 60.0, addresses=3, clock=lambda: now[0])
    throttle.failed("a")
    throttle.check("a")
    throttle.failed("a")
    with pytest.raises(Problem) as refused:
        throttle.check("a")
    assert refused.value.status == 429 and refused.value.headers["Retry-After"] == "60"
    throttle.check("b")  # another address
    now[0] = 30.0
    with pytest.raises(Problem):
        throttle.check("a")
    now[0] = 60.5
    throttle.check("a")  # the oldest failure left the window
    for address in ("c", "d", "e", "f"):
        throttle.failed(address)
    assert len(throttle._failures) == 3  # bounded: the stalest forgotten first


@pytest.mark.parametrize("path, title", [("/docs", ".swagger-ui .info .title"), ("/redoc", "h1")])
def test_the_docs_render_in_a_browser_under_their_policy(browser: Browser, tmp_path: Path, path: str,
                                                          title: str) -> None:
    with world(f"sqlite:///{tmp_path}/docs.db") as w, served(w.app) as base:
        page = browser.new_context(base_url=base).new_page()
        refused: list[str] = []
        elsewhere: list[str] = []
        page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)

        def outside(route: Route) -> None:  # what reached the network for another host
            elsewhere.append(route.request.url)
            route.abort()

        page.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), outside)
        page.goto(path)
        expect(page.locator(title).first).to_contain_text("Appraisal Ledger", timeout=20_000)
        page.wait_for_load_state("networkidle")
        page.close()
    # Nothing went to another host, and the policy blocked nothing of this server's (ReDoc's logo
    # from its maker's CDN is what the policy is for: blocked, never requested).
    assert elsewhere == []
    assert not [m for m in refused if base in m or "inline" in m or "'self'" not in m], refused
