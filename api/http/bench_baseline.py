"""The raw-insert baseline of `scripts/bench http` (mounted only with APPRAISAL_BENCH_RAW_ENDPOINT=1).

`POST /bench/raw/appraisals/{appraisal}/ratings` takes the same body as the rating route, through
the same middleware, authentication, validation and answer, and inserts the body as JSON into a
plain table with one statement (autocommit: one round trip) on the ledger's own connection pool:
what a hand-written endpoint with no domain rules, no events and no idempotency would do.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from psycopg.sql import SQL, Identifier

from api.http import models as m
from api.http.auth import require_writer
from api.http.deps import PrincipalDep, log_entry
from api.http.writes import RESPONSES, AppraisalKey, check_text
from api.ledger import AppraisalLedger
from api.store.storage import serialize_ddl

router = APIRouter(tags=["bench 基准"], include_in_schema=False)


class RawTable:
    def __init__(self, ledger: AppraisalLedger) -> None:
        recorder: Any = ledger.recorder
        self.datastore = recorder.datastore
        if not hasattr(self.datastore, "schema"):
            raise RuntimeError("the raw-insert baseline runs on PostgreSQL only")
        self.table = SQL("{}.{}").format(Identifier(self.datastore.schema), Identifier("bench_raw_ratings"))
        with self.datastore.transaction(commit=True) as c:
            serialize_ddl(c, self.datastore.schema)
            c.execute(SQL("CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, actor text NOT NULL, "
                          "appraisal text NOT NULL, body text NOT NULL)").format(self.table))
        self.insert = SQL("INSERT INTO {} (actor, appraisal, body) VALUES (%s, %s, %s) RETURNING id").format(
            self.table)

    def put(self, actor: str, appraisal: str, body: dict[str, Any]) -> int:
        """One statement in autocommit: one round trip, as a hand-written endpoint would do it."""
        with self.datastore.get_connection() as conn, conn.cursor() as c:
            c.execute(self.insert, (actor, appraisal, json.dumps(body, ensure_ascii=False, default=str)),
                      prepare=True)
            row = c.fetchone()
        assert row is not None
        return int(row["id"])


@router.post("/bench/raw/appraisals/{appraisal}/ratings", status_code=201, response_model=m.CommandAnswer,
             responses=RESPONSES)
def raw_rating(appraisal: AppraisalKey, body: m.RatingBody, principal: PrincipalDep,
               request: Request) -> JSONResponse:
    data = {**body.model_dump(exclude_unset=True), "type": "rating.record", "appraisal": appraisal}
    check_text(data)
    require_writer(principal, "rating.record")
    log_entry(request)["command"] = "bench.raw"
    position = request.app.state.raw_table.put(principal.person, appraisal, data)
    answer = {"status": "accepted", "command": data.get("id") or f"raw-{position}", "type": "rating.record",
              "target": appraisal, "events": 1, "position": position, "duplicate": False}
    log_entry(request).update(outcome="accepted", position=position)
    return JSONResponse(answer, status_code=201, headers={"X-Log-Position": str(position)})
