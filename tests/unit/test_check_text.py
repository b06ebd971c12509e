"""`domain.commands.check_text`: a body is refused when it holds text the stores cannot keep (a NUL,
a lone surrogate), naming where; every other body passes, whether or not `json` can write it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from domain.commands import check_text
from domain.errors import DomainError


@pytest.mark.parametrize("body", [
    {"type": "rating.record", "score": "85", "名": ["科室", {"n": 1, "x": None, "f": 1.5}]},
    {"note": "\\u0000 written out, not a NUL"},  # the six characters: JSON text holds \\u0000
    {"at": datetime(2025, 6, 30, tzinfo=UTC), "tags": {"a", "b"}, 7: "a key that is a number"},  # json refuses it
    {"emoji": "\U0001f600"},
    {"type": "rating.record", "reason": "年度考核", "score": 85, "valid": True, "note": None, "x": 1.5},  # flat
])
def test_storable_bodies_pass(body: dict[str, Any]) -> None:
    check_text(body)


@pytest.mark.parametrize(("body", "where"), [
    ({"reason": "a\x00b"}, "reason"),
    ({"type": "rating.record", "reason": "科室\ud800"}, "reason"),  # flat bodies, looked at directly
    ({"type": "rating.record", "reason": "ok", "bad\x00key": 1}, "(command)"),
    ({"items": [{"k\x00": 1}]}, "items[0]"),
    ({"items": ["ok", "\ud800"]}, "items[1]"),
    ({"at": datetime(2025, 6, 30, tzinfo=UTC), "reason": "\x00"}, "reason"),  # json refuses the body: walked
])
def test_unstorable_text_is_refused_where_it_is(body: dict[str, Any], where: str) -> None:
    with pytest.raises(DomainError) as refused:
        check_text(body)
    assert refused.value.field == where and refused.value.rule == "text"
