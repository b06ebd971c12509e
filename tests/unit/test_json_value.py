"""`projections.documents.json_value` reads a stored text as `json.loads` does (orjson where that
gives the same, `json` where it would not)."""

from __future__ import annotations

import json

import pytest

from projections.documents import json_text, json_value

TEXTS = [
    '{"a":[1,2.5,"x"],"b":{"c":null,"d":true}}',
    "123456789012345678901234567890",  # beyond 64 bits: orjson would read a float
    "-9223372036854775809",
    '{"n":[18446744073709551615,-9223372036854775808]}',
    '{"id":"c-1234567890123456789012"}',  # 19 digits in a row inside text: read by json, the same
    "NaN", "Infinity", "1e400",  # orjson refuses these
    '"\\ud800"',  # a lone surrogate
    '{"名":"张三","s":"\\u2028\\u0000"}',
    "[1e-07,2e+16,-0.0,0.1]",
]


@pytest.mark.parametrize("text", TEXTS)
def test_json_value_reads_as_json_loads(text: str) -> None:
    expected, read = json.loads(text), json_value(text)
    assert json.dumps(read) == json.dumps(expected)  # NaN included
    assert [type(v) for v in _leaves(read)] == [type(v) for v in _leaves(expected)]


def test_a_rendered_document_reads_back() -> None:
    document = {"year": 2025, "people": [{"id": "p-1", "total": "79.16", "rank": 1, "big": 2**70}], "名": "科室"}
    assert json_value(json_text(document)) == document


def _leaves(value: object) -> list[object]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]
