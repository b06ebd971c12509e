"""Exact arithmetic for scores (SCORING.md §1).

Scores are computed as `Fraction`s built from the decimal text of schemes and commands, so
that no intermediate value is ever rounded (a mean of three ratings stays exact). Only a value
shown to a person or written to an export is rounded: to 2 decimals, half up, away from zero.
"""

from __future__ import annotations

import re
from decimal import MAX_EMAX, MIN_EMIN, ROUND_HALF_UP, Context, Decimal, InvalidOperation
from fractions import Fraction
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo, WithJsonSchema
from pydantic_core import PydanticCustomError

Number = Fraction

ZERO = Fraction(0)
ONE = Fraction(1)
HUNDRED = Fraction(100)

# ---- the number grammar (COMMANDS.md "Numbers") ---------------------------------------------------

NUMBER_PATTERN = r"^-?[0-9]{1,9}(\.[0-9]{1,6})?$"
"""Every number a command, an import line or a scheme document carries: optional `-`, 1 to 9 ASCII
digits, optionally `.` and 1 to 6 digits. Nothing else: no exponent, sign `+`, space, comma,
underscore, non-ASCII digit, NaN or Infinity."""
INTEGER_PATTERN = r"^-?[0-9]{1,9}$"
"""Counts (and every other integer: approved posts, years, versions, days): the grammar without
a decimal point. `"3"` and `3` are a count; `"3.0"` and `3.0` are not (a count is an integer, and
a decimal point says it is not one), nor is `true`."""
NUMBER_FORMAT = "number_format"
"""The error type of a refused number in pydantic's errors; the refusal's rule is `number-format`."""
RECORDED = "recorded"
"""Validation context key: the document was recorded by an earlier version (a stored scheme), so
its numbers are read as they were accepted then (`recorded_decimal`), never refused again."""

_NUMBER = re.compile(NUMBER_PATTERN[1:-1])  # fullmatch: `$` would let a final newline through
_INTEGER = re.compile(INTEGER_PATTERN[1:-1])
_INTEGER_LIMIT = 10**9
_ECHO = 40  # characters of a refused text echoed back
TOO_MANY_DIGITS = "a number of more than 4300 digits"
"""What a JSON text held that Python's json module cannot even read (an import line says so)."""


def parse_decimal(value: object) -> Decimal:
    """The exact decimal a number of the grammar says: `"85.5"`, `87`, `-10`, or a JSON number read
    through its shortest text (`repr`: 85.5 -> "85.5", 1e-300 -> "1e-300", refused; note that a
    JSON number below 0.0001 has an exponent in its shortest text: send it as a string). Raises
    `number_format_error` (a `ValueError`) for anything else, booleans and null included."""
    if isinstance(value, bool) or value is None:
        raise number_format_error(value, integer=False)
    if isinstance(value, int):
        if -_INTEGER_LIMIT < value < _INTEGER_LIMIT:
            return Decimal(value)
        raise number_format_error(value, integer=False)
    if isinstance(value, float):
        text = repr(value)
    elif isinstance(value, Decimal):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise number_format_error(value, integer=False)
    if _NUMBER.fullmatch(text) is None:
        raise number_format_error(value, integer=False)
    return Decimal(text)


def parse_integer(value: object) -> int:
    """An integer of the grammar (a count): `3`, `"3"`, `-2`; never `3.0`, `"3.0"`, `true` or more
    than 9 digits. Raises `number_format_error` (a `ValueError`)."""
    if isinstance(value, bool) or value is None:
        raise number_format_error(value, integer=True)
    if isinstance(value, int):
        if -_INTEGER_LIMIT < value < _INTEGER_LIMIT:
            return value
    elif isinstance(value, str) and _INTEGER.fullmatch(value) is not None:
        return int(value)
    raise number_format_error(value, integer=True)


def number_format_error(value: object, *, integer: bool) -> PydanticCustomError:
    """The refusal of a number outside the grammar, saying what was sent and what is allowed, in
    Chinese and English. Inside a pydantic model its error type is `number_format` and its path
    the field's; a caller turns that into the rule `number-format`."""
    return PydanticCustomError(NUMBER_FORMAT, "{detail}", {"detail": number_format_message(_sent(value), integer)})


def number_format_message(sent: str, integer: bool = False) -> str:
    """What was sent (as text, bounded) and what is allowed, Chinese first."""
    if integer:
        zh = "应为整数:可选负号加 1–9 位半角数字(如 3、-10)"
        en = 'an integer: optional "-" and 1 to 9 ASCII digits (e.g. 3, -10)'
    else:
        zh = "应为可选负号、1–9 位半角数字,可带小数点及 1–6 位小数(如 85、-10、0.5)"
        en = 'optional "-", 1 to 9 ASCII digits, optionally "." and 1 to 6 digits (e.g. 85, -10, 0.5)'
    return f"数字格式不符:收到 {sent},{zh} — number format: got {sent}; allowed: {en}"


def _sent(value: object) -> str:
    """What was sent, bounded (an integer is never turned into text beyond 9 digits)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if abs(value) < _INTEGER_LIMIT else "an integer of more than 9 digits"
    if isinstance(value, float | Decimal):
        return repr(value) if isinstance(value, float) else str(value)[:_ECHO]
    if isinstance(value, str):
        shown_part = value if len(value) <= _ECHO else value[:_ECHO] + "…"
        visible = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                          for ch in shown_part)
        return f"\"{visible}\""
    return f"a {type(value).__name__}"


def recorded_decimal(value: object) -> Decimal:
    """A decimal as an earlier version accepted it (a recorded scheme document is read again on
    every start and must always load): any finite decimal text, int or float."""
    if isinstance(value, bool):
        raise ValueError("expected a number, not a boolean")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal number") from None
    else:
        raise ValueError(f"expected a decimal number, got {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return result


def _decimal_field(value: Any, info: ValidationInfo) -> Any:
    if info.context and info.context.get(RECORDED):
        return recorded_decimal(value)
    return parse_decimal(value)


def _integer_field(value: Any, info: ValidationInfo) -> Any:
    if info.context and info.context.get(RECORDED):
        return value  # pydantic's int, as an earlier version read it
    return parse_integer(value)


NUMBER_SCHEMA = {"anyOf": [{"type": "string", "pattern": NUMBER_PATTERN}, {"type": "number"}]}
INTEGER_SCHEMA = {"anyOf": [{"type": "integer", "minimum": -(_INTEGER_LIMIT - 1), "maximum": _INTEGER_LIMIT - 1},
                            {"type": "string", "pattern": INTEGER_PATTERN}]}

DecimalNumber = Annotated[Decimal, BeforeValidator(_decimal_field), WithJsonSchema(NUMBER_SCHEMA)]
"""A pydantic field of the grammar: a `Decimal`, refused with `number_format` naming the field."""
Count = Annotated[int, BeforeValidator(_integer_field), WithJsonSchema(INTEGER_SCHEMA)]
"""A pydantic integer field of the grammar (counts, approved posts, years, versions, days)."""


def exact(value: Decimal | int | str | Fraction) -> Fraction:
    if isinstance(value, Fraction):
        return value
    if isinstance(value, str):
        value = recorded_decimal(value)  # arithmetic on a known value, not an entry: no refusal here
    return decimal_fraction(value) if isinstance(value, Decimal) else Fraction(value)


RECORDED_EXPONENT_LIMIT = 100_000


def decimal_fraction(value: Decimal) -> Fraction:
    """A recorded decimal as an exact fraction. A store written before the grammar may hold a
    decimal such as 1E+999999999, whose fraction would take minutes and gigabytes to make: beyond
    10^±RECORDED_EXPONENT_LIMIT this raises ValueError, so that the read side sets the event aside
    (COMMANDS.md § Bad input) instead of stalling on it."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and abs(exponent) > RECORDED_EXPONENT_LIMIT:
        raise ValueError(f"a recorded number with exponent {exponent} is beyond what can be scored "
                         f"(10^±{RECORDED_EXPONENT_LIMIT})")
    return Fraction(value)


# ---- numbers as text, always bounded ----------------------------------------------------------------
#
# A store written before the grammar may hold any decimal (1E-5000, 1E+5000, and sums and means of
# them: fractions with thousands of digits). Every text below is bounded and deterministic, and no
# integer of more than 4300 digits is ever turned into text (Python refuses that with a
# ValueError). A value whose text would exceed the bound is shown rounded to 28 significant digits
# (half up), marked with APPROXIMATE in front: "≈1.000000000000000000000000000E+5000". Values of
# the grammar, their sums and means are far inside the bounds and always come out exact.

APPROXIMATE = "≈"
SIGNIFICANT = 28
"""Significant digits of an approximate text (Decimal's default precision)."""
EXACT_DIGITS = 60
"""At most this many digits in an exact text's integers (numerator, denominator, or the digits of
a terminating decimal); beyond, the text is approximate."""
_SHOWN_LIMIT = 10**SIGNIFICANT
"""Shown (2-decimal) values up to 28 digits in all are exact; beyond, approximate."""
_EXACT_LIMIT = 10**EXACT_DIGITS


def round2(value: Fraction) -> Decimal:
    """Round half up (away from zero) to 2 decimals: 79.155 -> 79.16, -0.125 -> -0.13. Beyond 28
    digits the value rounded to 28 significant digits (half up): still ordered, never unbounded."""
    text = _shown(value)
    return Decimal(text) if text is not None else _significant(value)


def round_half_up_int(value: Fraction) -> int:
    scaled = abs(value)
    whole = scaled.numerator // scaled.denominator
    if scaled - whole >= Fraction(1, 2):
        whole += 1
    return whole if value >= 0 else -whole


def shown(value: Fraction) -> str:
    """The 2-decimal text a person sees ("79.16"): `str(round2(value))`; beyond 28 digits the
    approximate text ("≈1.000000000000000000000000000E+5000")."""
    text = _shown(value)
    return text if text is not None else _approximate(value)


def _shown(value: Fraction) -> str | None:
    """The 2-decimal text in integers (a year's grading and export show tens of thousands of
    these); None when the rounded value has more than 28 digits."""
    numerator, denominator = value.numerator, value.denominator
    hundredths, twice_rest = divmod(abs(numerator) * 200, denominator * 2)
    if twice_rest >= denominator:  # the rest is at least half a hundredth: round half up
        hundredths += 1
    if hundredths >= _SHOWN_LIMIT:
        return None
    whole, cents = divmod(hundredths, 100)
    sign = "-" if numerator < 0 and hundredths else ""
    return f"{sign}{whole}.{cents:02d}"


def _significant(value: Fraction) -> Decimal:
    """`value` rounded half up (away from zero) to 28 significant digits, in integer arithmetic
    whatever its size (0 stays 0)."""
    if value == 0:
        return Decimal(0)
    magnitude = abs(value)
    exponent = _floor_log10(magnitude)  # 10**exponent <= magnitude < 10**(exponent + 1)
    shift = SIGNIFICANT - 1 - exponent
    numerator, denominator = magnitude.numerator, magnitude.denominator
    if shift >= 0:
        numerator *= 10**shift
    else:
        denominator *= 10**-shift
    digits = (2 * numerator + denominator) // (2 * denominator)  # half up, in integers (no gcd)
    if digits == _SHOWN_LIMIT:  # 9.99…95 rounded up to 10.00…0
        digits //= 10
        shift -= 1
    return Decimal((1 if value < 0 else 0, tuple(map(int, str(digits))), -shift))


def _floor_log10(magnitude: Fraction) -> int:
    """floor(log10(magnitude)) for a positive fraction, exactly, without turning it into text."""
    numerator, denominator = magnitude.numerator, magnitude.denominator
    # An estimate from the bit lengths (within 1 or 2), then corrected exactly.
    estimate = int((numerator.bit_length() - denominator.bit_length()) * 0.30102999566398120)
    while _at_least_power(numerator, denominator, estimate + 1):
        estimate += 1
    while not _at_least_power(numerator, denominator, estimate):
        estimate -= 1
    return estimate


def _at_least_power(numerator: int, denominator: int, exponent: int) -> bool:
    """numerator / denominator >= 10**exponent"""
    if exponent >= 0:
        return numerator >= denominator * 10**exponent
    return numerator * 10**-exponent >= denominator


def _approximate(value: Fraction) -> str:
    return APPROXIMATE + str(_significant(value))


def exact_text(value: Fraction) -> str:
    """The exact value as text: an integer, a terminating decimal ("79.155", "1E-5000") or a fraction
    ("1043/12"), at most EXACT_DIGITS digits in each of its integers; beyond, the approximate text
    ("≈" and 28 significant digits). In integers (a trace holds hundreds of thousands of these,
    mostly the same few thousand rater group means: made once each)."""
    return _exact_text(value.numerator, value.denominator)


def _places(den: int) -> int | None:
    """The decimal places of n/den in lowest terms (den = 2^a·5^b: max(a, b)); None when it does
    not terminate."""
    twos = (den & -den).bit_length() - 1
    rest = den >> twos
    if rest == 1:
        return twos
    # rest must be a power of 5: its exponent from the bit length (one power, not a division per
    # factor: a denominator of 10**100000 from an older store costs milliseconds, not seconds)
    estimate = round((rest.bit_length() - 1) / _LOG2_5)
    for fives in (estimate - 1, estimate, estimate + 1):
        if fives > 0 and 5**fives == rest:
            return max(twos, fives)
    return None


_LOG2_5 = 2.321928094887362
_LOG2_10 = 3.321928094887362


@lru_cache(maxsize=65536)
def _exact_text(numerator: int, den: int) -> str:
    if den == 1:
        return str(numerator) if abs(numerator) < _EXACT_LIMIT else _approximate(Fraction(numerator))
    places = _places(den)
    if places is None:
        if abs(numerator) < _EXACT_LIMIT and den < _EXACT_LIMIT:
            return f"{numerator}/{den}"
        return _approximate(Fraction(numerator, den))
    # More than EXACT_DIGITS digits (1/2**300: 300 places, 210 digits): known from the bit lengths
    # first, without making 10**places (a million digits for 1/2**300000 from an older store).
    if abs(numerator).bit_length() + int(places * _LOG2_10) - den.bit_length() > _EXACT_LIMIT.bit_length() + 4:
        return _approximate(Fraction(numerator, den))
    scaled = abs(numerator) * (10**places // den)
    if scaled >= _EXACT_LIMIT:
        return _approximate(Fraction(numerator, den))
    digits = str(scaled)
    whole = len(digits) - places  # digits before the point (≤ 0: zeros after it first)
    if whole <= -6 or len(digits) > 28:
        return _exact_text_decimal(numerator, digits, places)
    if whole > 0:
        text = f"{digits[:whole]}.{digits[whole:]}".rstrip("0").rstrip(".")
    else:
        text = f"0.{'0' * -whole}{digits}".rstrip("0").rstrip(".")
    return "-" + text if numerator < 0 else text


def _exact_text_decimal(numerator: int, digits: str, places: int) -> str:
    """Decimal's own text of sign·digits·10**-places ("1E-5000", "1.234…E+40"): exact and short."""
    text = str(Decimal((1 if numerator < 0 else 0, tuple(map(int, digits)), -places)))
    if "." in text and "E" not in text:
        text = text.rstrip("0").rstrip(".")
    return text


def decimal_str(value: Decimal) -> str:
    """`str(value)` of a recorded decimal ("85.50", "1E-5000"), bounded: beyond EXACT_DIGITS
    significant digits the approximate text."""
    if len(value.as_tuple().digits) > EXACT_DIGITS:
        return APPROXIMATE + str(_DECIMAL_28.plus(value))
    return str(value)


def shown_value(text: str) -> Decimal:
    """The decimal a shown text stands for (an approximate one, "≈…": its 28 digits)."""
    return Decimal(text.removeprefix(APPROXIMATE))


def shown_difference(old: str, new: str) -> str:
    """new − old of two shown texts ("2.50"), approximate ("≈…") when either is."""
    difference = str(_DECIMAL_28.subtract(shown_value(new), shown_value(old)))
    return APPROXIMATE + difference if APPROXIMATE in old + new else difference


def decimal_text(value: Decimal) -> str:
    """Canonical text of a parameter value as its author wrote it, never in exponent form
    ("0.3", "95", "-20", "1.0"). Bounded like `exact_text` (only a document recorded before the
    grammar can hold more): Decimal's exponent form when the positional one would be longer than
    EXACT_DIGITS digits ("1E-5000"), the approximate text beyond EXACT_DIGITS significant digits."""
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):  # NaN, Infinity: never accepted, shown as Decimal writes them
        return str(value)
    if len(digits) > EXACT_DIGITS:
        return APPROXIMATE + str(_DECIMAL_28.plus(value))
    if max(len(digits) + exponent, 0) + max(-exponent, 0) > EXACT_DIGITS:
        return str(value)
    text = format(value, "f")
    return "0" if text == "-0" else text


_DECIMAL_28 = Context(prec=SIGNIFICANT, rounding=ROUND_HALF_UP, Emax=MAX_EMAX, Emin=MIN_EMIN)
