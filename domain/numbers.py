"""Exact arithmetic for scores (SCORING.md §1).

Scores are computed as `Fraction`s built from the decimal text of schemes and commands, so
that no intermediate value is ever rounded (a mean of three ratings stays exact). Only a value
shown to a person or written to an export is rounded: to 2 decimals, half up, away from zero.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from fractions import Fraction
from functools import lru_cache

Number = Fraction

ZERO = Fraction(0)
ONE = Fraction(1)
HUNDRED = Fraction(100)


def parse_decimal(value: object) -> Decimal:
    """A decimal from its text: "0.3", 87, or a JSON number (read through its shortest repr)."""
    if isinstance(value, bool):
        raise ValueError("expected a number, not a boolean")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        # A JSON number that reached us as a float: its shortest repr is the text that was written.
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


def exact(value: Decimal | int | str | Fraction) -> Fraction:
    if isinstance(value, Fraction):
        return value
    if isinstance(value, str):
        value = parse_decimal(value)
    return Fraction(value)


def round2(value: Fraction) -> Decimal:
    """Round half up (away from zero) to 2 decimals: 79.155 -> 79.16, -0.125 -> -0.13."""
    text = _shown(value)
    return Decimal(text) if text is not None else _round2_decimal(value)


def _round2_decimal(value: Fraction) -> Decimal:
    """The definition of `round2` (in Decimal arithmetic, 28 digits)."""
    scaled = abs(value) * 100
    whole = scaled.numerator // scaled.denominator
    if (scaled - whole) >= Fraction(1, 2):
        whole += 1
    sign = -1 if value < 0 else 1
    return (Decimal(sign * whole) / Decimal(100)).quantize(Decimal("0.01"))


def round_half_up_int(value: Fraction) -> int:
    scaled = abs(value)
    whole = scaled.numerator // scaled.denominator
    if scaled - whole >= Fraction(1, 2):
        whole += 1
    return whole if value >= 0 else -whole


def shown(value: Fraction) -> str:
    """The 2-decimal text a person sees ("79.16"): `str(round2(value))`."""
    text = _shown(value)
    return text if text is not None else str(_round2_decimal(value))


def _shown(value: Fraction) -> str | None:
    """`str(_round2_decimal(value))` in integers (a year's grading and export show tens of
    thousands of these); None beyond Decimal's 28 digits, where the definition answers."""
    numerator, denominator = value.numerator, value.denominator
    hundredths, twice_rest = divmod(abs(numerator) * 200, denominator * 2)
    if twice_rest >= denominator:  # the rest is at least half a hundredth: round half up
        hundredths += 1
    if hundredths >= _SHOWN_LIMIT:
        return None
    whole, cents = divmod(hundredths, 100)
    sign = "-" if numerator < 0 and hundredths else ""
    return f"{sign}{whole}.{cents:02d}"


_SHOWN_LIMIT = 10**26


def exact_text(value: Fraction) -> str:
    """The exact value as text: a terminating decimal ("79.155") or a fraction ("1043/12").
    In integers (a trace holds hundreds of thousands of these, mostly the same few thousand rater
    group means: made once each); `_exact_text_decimal` is the definition, and answers what this
    does not (exponent notation, more than 28 digits)."""
    return _exact_text(value.numerator, value.denominator)


def _places(den: int) -> int | None:
    """The decimal places of n/den in lowest terms (den = 2^a·5^b: max(a, b)); None when it does
    not terminate."""
    twos = (den & -den).bit_length() - 1
    rest = den >> twos
    fives = 0
    while rest % 5 == 0:
        rest //= 5
        fives += 1
    return max(twos, fives) if rest == 1 else None


@lru_cache(maxsize=65536)
def _exact_text(numerator: int, den: int) -> str:
    if den == 1:
        return str(numerator)
    places = _places(den)
    if places is None:
        return f"{numerator}/{den}"
    digits = str(abs(numerator) * (10**places // den))
    whole = len(digits) - places  # digits before the point (≤ 0: zeros after it first)
    if whole <= -6 or len(digits) > 28:
        return _exact_text_decimal(Fraction(numerator, den))
    if whole > 0:
        text = f"{digits[:whole]}.{digits[whole:]}".rstrip("0").rstrip(".")
    else:
        text = f"0.{'0' * -whole}{digits}".rstrip("0").rstrip(".")
    return "-" + text if numerator < 0 else text


def _exact_text_decimal(value: Fraction) -> str:
    places = _places(value.denominator)
    if places is None:
        return f"{value.numerator}/{value.denominator}"
    scaled = value * (10**places)
    text = str(Decimal(scaled.numerator).scaleb(-places)) if places else str(value.numerator)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def decimal_text(value: Decimal) -> str:
    """Canonical text of a parameter value as its author wrote it, never in exponent form
    ("0.3", "95", "-20", "1.0")."""
    text = format(value, "f")
    return "0" if text == "-0" else text
