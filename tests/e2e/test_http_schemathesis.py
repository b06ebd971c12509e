"""schemathesis against the application's own OpenAPI schema, with an admin token, on SQLite and
PostgreSQL: no 5xx, every answer conforms to the schema (status codes, content types, headers,
bodies), for data that fits the schema and data that does not. A bounded number of examples per
operation keeps it well under a minute per store."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks

from tests.e2e.http_world import world

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
