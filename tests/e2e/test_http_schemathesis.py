"""schemathesis against the application's own OpenAPI schema, with an admin token, on SQLite and
PostgreSQL: no 5xx, every answer conforms to the schema (status codes, content types, headers,
bodies), for data that fits the schema and data that does not. A bounded number of examples per
operation keeps it well under a minute per store."""

from __future__ import annotations

import zlib
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks

from tests.builders.http_world import world

EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 10}
CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
]


@pytest.mark.slow
def test_the_api_keeps_to_its_schema(db_url: str) -> None:
    with world(db_url, wait_seconds=0.05) as w:
        schema = schemathesis.openapi.from_asgi("/openapi.json", w.app)
        headers = {"Authorization": f"Bearer {w.tokens['admin']}"}
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 25
        for operation in operations:
            for mode, examples in EXAMPLES.items():

                @given(case=operation.as_strategy(generation_mode=mode))
                @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                          suppress_health_check=list(HealthCheck))
                def keeps_to_schema(case: schemathesis.Case) -> None:
                    case.call_and_validate(headers=headers, checks=CHECKS)

                try:
                    keeps_to_schema()
                except Unsatisfiable:  # nothing in this operation's schema can be made invalid
                    assert mode is GenerationMode.NEGATIVE, operation.label


# --- stateful: sequences of calls chained by the schema's links, as each role ------------------------------

STATEFUL_ROLES = ("admin", "recorder", "inspector", "staff")
# Path parameters that name something of the worked example, half the time (deterministically, from
# the value generated): random ids alone only ever find 404s, and a sequence then stops at its first step.
KNOWN = {"appraisal": ["2025:p-A", "2025:p-H1", "2025:d-01"], "year": [2025], "person": ["p-A", "p-H1", "p-L1"],
         "department": ["d-01", "d-02"], "appeal": ["we-appeal"]}
STATEFUL = settings(max_examples=12, stateful_step_count=6, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


@pytest.mark.slow
@pytest.mark.parametrize("role", STATEFUL_ROLES)
def test_sequences_of_calls_keep_to_the_schema_for_every_role(db_url: str, role: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """schemathesis in stateful mode: what one call answers (an appraisal opened, an appeal
    filed, a year published) feeds the next (its explanation, its decision, its publication),
    with the role's token throughout; no 5xx, every answer conforming to the schema."""
    with world(db_url, wait_seconds=0.05) as w:
        schema = schemathesis.openapi.from_asgi("/openapi.json", w.app)
        headers = {"Authorization": f"Bearer {w.tokens[role]}"}
        machine = schema.as_state_machine()

        tally: Counter[str] = Counter()

        class AsRole(machine):  # type: ignore[misc,valid-type]
            def setup(self) -> None:
                tally["scenarios"] += 1

            def before_call(self, case: schemathesis.Case) -> None:
                case.headers = {**{k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"},
                                **headers}
                for name, known in KNOWN.items():
                    value = (case.path_parameters or {}).get(name)
                    if value is not None:
                        pick = zlib.crc32(repr(value).encode("utf-8", "surrogatepass")) % (2 * len(known))
                        if pick < len(known):
                            case.path_parameters[name] = known[pick]

            def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
                return {"headers": headers}

            def validate_response(self, response: Any, case: schemathesis.Case,
                                  additional_checks: Any = None, **kwargs: Any) -> None:
                tally.update(["calls", str(response.status_code)])
                case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs or None,
                                       recorder=getattr(self, "recorder", None))

        AsRole.run(settings=STATEFUL)
        with capsys.disabled():
            print(f"\nstateful [{db_url.split(':')[0]}, {role}]: " + ", ".join(f"{k}: {v}" for k, v in tally.items()))
