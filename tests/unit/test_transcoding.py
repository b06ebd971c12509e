"""The fast event encoder writes exactly the library's bytes (the chain hashes them), for the
states events carry and for anything else it hands back to the library's encoder."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, UUIDAsHex
from hypothesis import given, settings
from hypothesis import strategies as st

from api.ledger import AppraisalLedger
from api.store.transcoding import FastJSONTranscoder


def _transcoders() -> tuple[JSONTranscoder, FastJSONTranscoder]:
    library, fast = JSONTranscoder(), FastJSONTranscoder()
    for transcoder in (library, fast):
        for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
            transcoder.register(transcoding)
    return library, fast


LIBRARY, FAST = _transcoders()

scalars = st.one_of(
    st.text(), st.integers(), st.integers(min_value=2**63 - 5, max_value=2**70), st.booleans(), st.none(),
    st.decimals(allow_nan=False, allow_infinity=False), st.datetimes(timezones=st.timezones()),
    st.floats(allow_nan=False, allow_infinity=False), st.uuids(),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(), inner, max_size=4)
                      | st.tuples(inner, inner), max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(), values, max_size=8))
def test_same_bytes_as_the_library(state: dict) -> None:
    assert FAST.encode(state) == LIBRARY.encode(state)
    assert FAST.decode(FAST.encode(state)) == LIBRARY.decode(LIBRARY.encode(state))


def test_an_event_state_takes_the_fast_way_and_keeps_its_bytes() -> None:
    state = {"actor": "admin", "at": datetime(2025, 3, 7, 10, tzinfo=timezone(timedelta(hours=8))),
             "command_id": "c-1", "timestamp": datetime.now(UTC), "leaf": "质量", "period": "2025-W10",
             "rater": "p-017", "rater_role": "superior", "score": Decimal("87.50"), "comment": "a\n\"b\"\x01",
             "name": {"zh": "办公室", "en": "Office"}, "order": ["p-1", "p-2"], "count": 3, "flag": True}
    assert FAST.encode(state) == LIBRARY.encode(state)


@pytest.mark.parametrize("odd", [uuid.uuid4(), 1.5, (1, 2), date(2025, 1, 1), 2**64, {1: "x"}])
def test_anything_else_is_the_library_s_answer(odd: object) -> None:
    state = {"value": odd}
    try:
        expected = LIBRARY.encode(state)
    except Exception as error:  # the library refuses it: so does the fast encoder, the same way
        with pytest.raises(type(error)):
            FAST.encode(state)
    else:
        assert FAST.encode(state) == expected


def test_the_ledger_encodes_with_it() -> None:
    ledger = AppraisalLedger("memory://")
    try:
        assert isinstance(ledger.mapper.transcoder, FastJSONTranscoder)
    finally:
        ledger.close()
