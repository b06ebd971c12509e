"""The HTTP API (FastAPI): its routes, authentication, errors and read side; `api/server/app.py` serves
it with the pages.

```bash
.venv/bin/appraisal token create --person p-002 [--grant admin|recorder|inspector]   # a bearer token, shown once
.venv/bin/appraisal serve --port 8000          # OpenAPI at /docs; every command of COMMANDS.md at its own path
```

Queries (results, explanations, breakdowns, `/people/{id}/history`, `/departments/{id}/history`,
`/years/{y}/departments`, `/years/{y}/publications[/{version}]`, appeals, `/audit?appraisal=&actor=`)
are answered from the **read models**. Who keeps them up to date is `APPRAISAL_PROJECTION` (or
`--projection`):

- `background` (the default of `appraisal serve`): the projection runs in a daemon thread of the
  server, started and stopped with it. Fine for one process.
- `none` (**production**): a separate worker keeps them, and any number of servers read them:

  ```bash
  appraisal project                                  # follows the log (LISTEN/NOTIFY on PostgreSQL), restarts after failures
  appraisal serve --projection none --workers 4      # --workers > 1 requires --projection none
  ```
  Each server process decides on its own cached copies; a write that another process has
  outdated is refused by the store's read-set check and decided again after one refresh: the
  more often processes write to the same appraisals, the more often they pay that round trip.
  With requests spread over every appraisal, most do: `scripts/bench http --workers 2` measured
  317 ledger writes/s against the raw endpoint's 1,127 (one process: about as many as raw's 650–750).
  For write throughput today, run one server process for the writes.
- `inline` (tests): each read first catches up synchronously, under a lock.

**Logs**: one line per request on standard error, with its request id (`X-Request-ID` when
sent, else a new one, echoed in the answer), the actor, the command type, the outcome (and a
refusal's rule and field) and the latency. `APPRAISAL_LOG_FORMAT=json` (production: a JSON object
per line) or `console` (the default: readable); `APPRAISAL_LOG_LEVEL` (default `INFO`). No token,
header, body, query string or refusal message is ever logged, so no individual rater's score is.

**Command routes are plain `def` routes**: FastAPI runs each on its thread pool, where the ledger
decides and writes the command (`AppraisalLedger.submit_one`). (The path that decided commands on
the event loop, with a second group commit over its own connection, is gone: on this 2-core
machine it cut the p99 at 350 requests/s from about 55 ms to about 20 ms, far beyond any office's
load of a few commands a second.)

Reads answer from what the read models hold: something they do not hold is absent (404, or an
empty part of a page), however far behind the log they are. Read your writes: a command's answer
carries its log `position`; a query with `?position=P` waits (up to `APPRAISAL_WAIT_SECONDS`,
default 5) until the read models have processed `P`, else answers 503 with `Retry-After`; the page
after an appeal filed on a page waits so for the appeal. A waiting request holds no thread (it
awaits on the event loop, one reading of the read side's position every `APPRAISAL_WAIT_POLL_SECONDS`
for all of them); beyond `APPRAISAL_WAIT_LIMIT` (default 50) waiting at once, one more is answered
503 `position-waiters-full` with `Retry-After` at once. Answers carry in `X-Log-Position` a position
the read side had reached before their documents were read (that reading, at most
`APPRAISAL_WAIT_POLL_SECONDS` old); `/health` shows the read side's position beside the end of the log. A layout change of the read models (`VERSION` in
`projections/tables.py`) makes the projection rebuild them from zero when it starts.

What the read models hold, how they are kept and what is set aside: `projections/__init__.py`.
"""
