r"""The tests, in three layers: `unit/` (the domain in memory: scoring tables, scheme documents,
numbers, hypothesis properties, Merkle proofs, replay), `integration/` (both stores: refusals, read
models, set-aside events, worker kill, as-of, tamper evidence, replay determinism), `e2e/` (the
command line and the worked example, HTTP for every role, hostile input, schemathesis, faults,
pages in Chromium). Every test that touches storage runs on SQLite and on PostgreSQL.

Security 安全: what the product promises, and where each promise is tested
---------------------------------------------------------------------------

What the product promises, and where each promise is tested (`tests/e2e/` unless named):

| promise | tested in |
|---|---|
| **Roles**: `admin` (organisation, schemes, appraisals, appeal decisions, years), `recorder` (measurements, occurrences, adjustments, vetoes), `inspector` (reads everything, writes nothing); everyone rates only as themself in a role §5 gives them and appeals only their own items; the actor is always the token's person | `test_http.py` (forbidden actions, every role) |
| **Anonymity of raters**: no one but admins and inspectors sees who rated what or an individual score; breakdowns show group means of 3 raters or more, plus the caller's own ratings; no log line holds a score or a token | `test_http.py`, `test_http_read_models.py`, `test_pages.py` |
| **No existence oracle**: to staff, an unknown appeal or (before publication) appraisal answers as another's does (403), an appeal filed on an unknown appraisal too; an unknown person or department as one with no published year | `test_security.py` |
| **Business time**: only batch import and admin/recorder tokens may give `at`; others get the server's clock, and an `at` more than 5 minutes away is refused (`business-time`); nothing more than 5 minutes in the future; back-dated by over 7 days is marked in the audit trail (`?backdated=true`) and the explanation | `test_http.py` (the review's case, the limits), `unit/test_business_time.py`, `integration/test_refusals.py` |
| **Numbers**: one grammar for every number of a command, an import line and a scheme document (`^-?[0-9]{1,9}(\.[0-9]{1,6})?$`, counts without a point), refused as `number-format` naming the field; exact decimals, never floats; texts of any recorded value bounded | `unit/test_numbers.py`, `test_http.py`, `integration/test_refusals.py`, `test_cli.py` |
| **The read side**: no recorded event can stop it: one it cannot decode, fold, score or render is set aside with what it feeds (that appraisal, that year), named with its position and error on `/health`, in the logs and on admin and inspector pages, and taken up by a fixed version; reads answer from what the read models hold (absent is 404), only a request naming a position waits, on the event loop, at most `APPRAISAL_WAIT_LIMIT` at once (then 503 with `Retry-After`) | `integration/test_set_aside.py`, `test_http_reads_under_writes.py` |
| **Limits** (settings `APPRAISAL_*`): a body of at most 2 MiB (413 `body-size`), JSON nested at most 32 deep (422 `body-depth`, naming the field); 10 failed sign-ins or bad tokens from one address within 60 s: 429 with `Retry-After` (counted in each server process's memory, at most 10,000 addresses; other addresses unaffected); a read waits for a position at most `APPRAISAL_WAIT_SECONDS` | `test_security.py`, `test_http_reads_under_writes.py` |
| **Headers**: every answer `Cache-Control: no-store` (unless a route sets its own) and `X-Content-Type-Options: nosniff`; pages under a CSP with no outside source and no framing; `/docs` and `/redoc` served offline (assets of `fastapi-offline`) under a CSP naming no other host | `test_security.py` (also in chromium), `test_pages.py` |
| **Sessions, CSRF**: signing in opens a session token of its own (the API token is never in the cookie) in an HttpOnly, SameSite=Strict cookie; every form post must carry this site's `Origin` (or, without one, a `Referer` of this site): `Origin: null`, another site or neither is 403 `cross-site-form`; sign-out is a POST and revokes the session; revoking a token ends its sessions | `test_security.py`, `test_pages.py` |

Behind a reverse proxy, client addresses and the site's origin come from its `X-Forwarded-*`
headers, which uvicorn trusts from 127.0.0.1 only (`FORWARDED_ALLOW_IPS` for others).

Generated hostile input (`test_hostile_input.py`: every command type with wrong types, numbers
outside the grammar, huge values, NUL and lone surrogates, deep nesting, SQL and HTML, over HTTP
with each role's token and through `appraisal import`), stateful schemathesis with each role's
token (`test_http_schemathesis.py`), and faults (`test_http_faults.py`: the server SIGKILLed twice
while clients resend; PostgreSQL restarted under load; `integration/test_worker_kill.py`: a rebuild
killed mid-way) run in `scripts/test` on both stores.
"""
