"""Encoding event state faster, to the very bytes the library's JSON transcoder writes.

The stored bytes of an event are hashed into the chain (api/store/chain.py) and read back by every
reader with the library's decoder, so the encoding may not change by one byte. `orjson` writes
the same JSON as `json` with `ensure_ascii=False` and compact separators for the values it is
given here (every string, checked over all code points; integers within 64 bits; booleans; null;
dicts with string keys, in insertion order; lists), at a fraction of the cost. Anything else
(a UUID, a float, a tuple, a subclass of str or int, an unregistered type) goes to the library's
encoder, as before: `_plain` says which states take the fast way, and a state orjson refuses
anyway (an integer beyond 64 bits, nesting too deep) falls back too. Decoding is the library's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, Transcoding

_SCALARS = frozenset({str, int, bool, type(None)})
_WRAPPED = frozenset({Decimal, datetime})  # written as {"_type_": name, "_data_": ...} by `default`
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


_FLAT = _SCALARS | _WRAPPED
_KEYS = frozenset({str})


def _plain_state(state: dict[str, Any]) -> bool:
    """`_plain(state)`, answered in C for the usual flat state (no dict or list inside)."""
    if _FLAT.issuperset(map(type, state.values())) and _KEYS.issuperset(map(type, state)):
        return True
    return _plain(state)


def _plain(value: Any, depth: int = 0) -> bool:
    """True when every value inside is one whose orjson encoding is known to equal json's."""
    kind = type(value)
    if kind in _SCALARS or kind in _WRAPPED:
        return True
    if depth > 32:
        return False
    if kind is dict:
        return all(type(k) is str and _plain(v, depth + 1) for k, v in value.items())
    if kind is list:
        return all(_plain(v, depth + 1) for v in value)
    return False


class FastJSONTranscoder(JSONTranscoder):
    """The library's JSON transcoder, encoding through orjson when the bytes are sure to be equal."""

    def __init__(self) -> None:
        super().__init__()
        self._default: Callable[[Any], Any] = self._encode_obj

    def register(self, transcoding: Transcoding) -> None:
        super().register(transcoding)
        self._default = _default_for(self.types, self._encode_obj)

    def encode(self, obj: Any) -> bytes:
        if type(obj) is dict and _plain_state(obj):
            try:
                return orjson.dumps(obj, default=self._default, option=_OPTIONS)
            except orjson.JSONEncodeError:
                pass  # beyond what orjson writes: the library's encoder says what happens
        return super().encode(obj)


def _default_for(types: dict[type, Transcoding], fallback: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`_encode_obj` in one call for the library's own datetime and Decimal transcodings (three
    values of every event go through it); any other registration is asked as the library asks."""
    iso = datetime.isoformat
    datetimes = type(types.get(datetime)) is DatetimeAsISO
    decimals = type(types.get(Decimal)) is DecimalAsStr
    datetime_name = types[datetime].name if datetimes else ""
    decimal_name = types[Decimal].name if decimals else ""

    def default(value: Any) -> Any:
        kind = type(value)
        if kind is datetime and datetimes:
            return {"_type_": datetime_name, "_data_": iso(value)}
        if kind is Decimal and decimals:
            return {"_type_": decimal_name, "_data_": str(value)}
        return fallback(value)

    return default
