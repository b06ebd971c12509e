"""The number grammar of COMMANDS.md ("Numbers") and texts of exact values that stay bounded.

One parser (domain/numbers.py) reads every number of a command, an import line and a scheme
document: `^-?[0-9]{1,9}(\\.[0-9]{1,6})?$`, a JSON number through its shortest text; counts without
a decimal point. Anything else is refused as `number-format` naming the field. Every text of an
exact value (shown, exact, parameter) is bounded and never turns an integer of more than 4300
digits into text, whatever an older store holds.
"""

from __future__ import annotations

import re
import sys
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from api.ledger import AppraisalLedger
from domain import numbers
from domain.commands import parse_command
from domain.errors import DomainError, InvalidDocument
from domain.numbers import (
    APPROXIMATE,
    NUMBER_PATTERN,
    decimal_text,
    exact_text,
    parse_decimal,
    parse_integer,
    round2,
    shown,
)
from domain.scheme import builtin_document, parse_scheme
from tests.builders.worked_example import APPEAL, DEDUCTION, build

ACCEPTED = [  # (as sent, the decimal read)
    ("85", "85"), ("85.5", "85.5"), ("-10", "-10"), ("0", "0"), ("-0", "0"), ("0.5", "0.5"),
    ("100.000000", "100"), ("999999999.999999", "999999999.999999"), ("-999999999", "-999999999"),
    ("007", "7"), (87, "87"), (0, "0"), (-20, "-20"), (999999999, "999999999"), (85.5, "85.5"),
    (0.3, "0.3"), (100.0, "100"), (123456789.123456, "123456789.123456"), (Decimal("85.50"), "85.5"),
]
REFUSED = [
    "1E-5000", "1E+2", "1e2", "1e-300", "-1e1", "NaN", "nan", "Infinity", "-Infinity", "inf",
    "８７", "４００", "１", "٣", " 1", "1 ", "1\n", "\t1", "1,000", "1_000", "0x10", "0b1", "+1", "1.",
    ".5", "-", "", "--1", "1.1234567", "1234567890", "12345678901234567890", "1/2", "1e", "one",
    True, False, None, 1e-300, 1e+20, 1e16, 1e-05, float("nan"), float("inf"), 1234567890,
    -1234567890, 10**5000, Decimal("1E+2"), Decimal("NaN"), [1], {"value": 1},
]


def _id(value: Any) -> str:
    """A test id that never turns a huge integer into text (which is the point of these tests)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"int-of-{value.bit_length()}-bits"
    return repr(value)


COUNTS_ACCEPTED = [("3", 3), (3, 3), ("-2", -2), ("0", 0), ("-0", 0), (999999999, 999999999), ("10000", 10000)]
COUNTS_REFUSED = ["3.0", 3.0, "3.5", 3.5, True, False, None, "1e2", "３", " 3", "1,000", "0x10",
                  "1234567890", 1234567890, "", "-", "+3", "1_000"]


@pytest.mark.parametrize(("sent", "read"), ACCEPTED, ids=_id)
def test_the_grammar_accepts(sent: Any, read: str) -> None:
    assert parse_decimal(sent) == Decimal(read)


@pytest.mark.parametrize("sent", REFUSED, ids=_id)
def test_the_grammar_refuses(sent: Any) -> None:
    with pytest.raises(ValueError, match="number format") as refused:
        parse_decimal(sent)
    message = str(refused.value)
    assert message.startswith("数字格式不符") and len(message) < 400  # bounded, whatever was sent


@pytest.mark.parametrize(("sent", "read"), COUNTS_ACCEPTED, ids=_id)
def test_counts_accept_integers(sent: Any, read: int) -> None:
    assert parse_integer(sent) == read and type(parse_integer(sent)) is int


@pytest.mark.parametrize("sent", COUNTS_REFUSED, ids=_id)
def test_counts_refuse_everything_else_even_a_decimal_point(sent: Any) -> None:
    with pytest.raises(ValueError, match="an integer"):
        parse_integer(sent)


def test_the_pattern_is_the_documented_one() -> None:
    assert NUMBER_PATTERN == r"^-?[0-9]{1,9}(\.[0-9]{1,6})?$"
    for sent, _ in ACCEPTED:
        if isinstance(sent, str):
            assert re.match(NUMBER_PATTERN, sent)


# ---- through the commands: every number field, refused naming the field --------------------------

def _rating(score: Any) -> dict[str, Any]:
    return {"type": "rating.record", "actor": "p-L1", "appraisal": "2025:p-A", "leaf": "business",
            "period": "2025-01", "rater_role": "in_charge", "score": score}


NUMBER_FIELDS = [  # (a command with `value` in one of its number fields, that field)
    (lambda v: _rating(v), "score"),
    (lambda v: {"type": "measurement.record", "appraisal": "2025:p-A", "input": "review_total", "value": v},
     "value"),
    (lambda v: {"type": "appeal.decide", "appeal": "a-1", "outcome": "amended", "points": v, "reason": "x"},
     "points"),
]
COUNT_FIELDS = [
    (lambda v: {"type": "occurrence.record", "appraisal": "2025:p-A", "item": "absence", "count": v}, "count"),
    (lambda v: {"type": "org.department", "department": "d-9", "name": "九科", "approved_posts": v},
     "approved_posts"),
    (lambda v: {"type": "appraisal.open", "year": v, "subject": "p-A", "scheme": {"id": "b", "version": 1}},
     "year"),
    (lambda v: {"type": "appraisal.open", "year": 2025, "subject": "p-A", "scheme": {"id": "b", "version": v}},
     "scheme.version"),
    (lambda v: {"type": "year.publish", "year": v}, "year"),
]


@pytest.mark.parametrize("sent", [s for s in REFUSED if s is not None], ids=_id)
@pytest.mark.parametrize(("make", "field"), NUMBER_FIELDS, ids=lambda x: x if isinstance(x, str) else "")
def test_a_command_refuses_a_number_outside_the_grammar_naming_the_field(make: Any, field: str, sent: Any) -> None:
    with pytest.raises(DomainError) as refused:
        parse_command(make(sent))
    assert (refused.value.field, refused.value.rule) == (field, "number-format"), refused.value.message


@pytest.mark.parametrize("sent", COUNTS_REFUSED, ids=_id)
@pytest.mark.parametrize(("make", "field"), COUNT_FIELDS, ids=lambda x: x if isinstance(x, str) else "")
def test_a_command_refuses_a_count_outside_the_grammar_naming_the_field(make: Any, field: str, sent: Any) -> None:
    with pytest.raises(DomainError) as refused:
        parse_command(make(sent))
    assert (refused.value.field, refused.value.rule) == (field, "number-format"), refused.value.message


def test_a_required_number_refuses_null_and_an_optional_one_takes_it() -> None:
    with pytest.raises(DomainError) as refused:
        parse_command(_rating(None))
    assert (refused.value.field, refused.value.rule) == ("score", "number-format")
    decision = parse_command({"type": "appeal.decide", "appeal": "a-1", "outcome": "upheld", "points": None,
                              "reason": "x"})
    assert decision.points is None  # type: ignore[attr-defined]


def test_ranges_apply_after_the_grammar() -> None:
    assert parse_command(_rating("100.000000")).score == 100  # type: ignore[attr-defined]
    with pytest.raises(DomainError) as refused:
        parse_command(_rating("100.000001"))
    assert (refused.value.field, refused.value.rule) == ("score", "command-fields")


def test_accepted_numbers_read_as_before() -> None:
    """What was accepted before the grammar reads the same (the fingerprints of re-sent commands)."""
    assert parse_command(_rating("85.50")).score.as_tuple() == Decimal("85.50").as_tuple()  # type: ignore[attr-defined]
    assert parse_command(_rating(85.5)).score == Decimal("85.5")  # type: ignore[attr-defined]
    count = parse_command(COUNT_FIELDS[0][0]("3"))
    assert count.count == 3  # type: ignore[attr-defined]


# ---- scheme documents ------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "value"), [
    (("composition", "staff", "department"), "5E-1"),
    (("raters", "staff", "others", "superior"), True),
    (("individual", 0, "rules", 0, "points_each"), "-０.5"),
    (("individual", 0, "rules", 0, "allowance_rate"), 1e-300),
    (("department", 0, "points"), "40.0000001"),
    (("grading", "tiers", 0, "share"), "0,3"),
    (("appeal_window_days",), "30.0"),
    (("adjustments", "over_quota_hiring", "points"), " -20"),
], ids=lambda x: x if isinstance(x, str) else None)
def test_a_scheme_document_refuses_a_number_outside_the_grammar_naming_its_path(path: tuple[Any, ...],
                                                                                value: Any) -> None:
    document = builtin_document("bianban")
    node: Any = document
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    expected = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    with pytest.raises(InvalidDocument) as refused:
        parse_scheme(document)
    assert (refused.value.field, refused.value.rule) == (expected, "number-format"), refused.value.problems


def test_a_recorded_scheme_document_is_read_as_it_was_accepted() -> None:
    """A version recorded before the grammar always loads again (its numbers as accepted then)."""
    document = builtin_document("bianban")
    document["composition"]["staff"] = {"department": "5E-1", "individual": "0.5000000"}
    with pytest.raises(InvalidDocument):
        parse_scheme(document)
    scheme = parse_scheme(document, recorded=True)
    assert scheme.composition["staff"].department == Decimal("0.5")


# ---- texts of exact values: bounded, deterministic, never the int-to-text limit ----------------------

HUGE = [
    Fraction(1, 10**5000), Fraction(10**5000), -Fraction(10**5000), Fraction(85 * 10**5000 + 1, 10**5000),
    Fraction(1, 3 * 10**5000), Fraction(10**5000, 3), Fraction(1, 2**20000), Fraction(7**9000, 11**8000),
    Fraction(-(10**4400) - 1, 10**4400), Fraction(2**15000 + 1, 2**15000),
]


@pytest.mark.parametrize("value", HUGE, ids=lambda v: f"{v.numerator.bit_length()}b/{v.denominator.bit_length()}b")
def test_texts_of_any_exact_value_are_bounded_and_deterministic(value: Fraction) -> None:
    assert sys.get_int_max_str_digits() in (0, 4300) or sys.get_int_max_str_digits() > 0
    for render in (shown, exact_text, lambda v: str(round2(v))):
        text = render(value)
        assert len(text) <= 130, (render, text)
        assert text == render(Fraction(value.numerator, value.denominator))
    rounded = round2(value)
    assert rounded.is_finite()
    if shown(value).startswith(APPROXIMATE):  # 28 significant digits, marked
        assert Decimal(shown(value).removeprefix(APPROXIMATE)) == rounded


@pytest.mark.parametrize(("value", "shown_text", "exact"), [
    (Fraction(1, 10**5000), "0.00", "1E-5000"),
    (-Fraction(1, 10**5000), "0.00", "-1E-5000"),
    (Fraction(10**5000), "≈1.000000000000000000000000000E+5000", "≈1.000000000000000000000000000E+5000"),
    (Fraction(85 * 10**5000 + 1, 10**5000), "85.00", "≈85.00000000000000000000000000"),
    (Fraction(2, 3 * 10**5000), "0.00", "≈6.666666666666666666666666667E-5001"),
    (Fraction(-(10**28) - 1, 3), "≈-3333333333333333333333333334", "-10000000000000000000000000001/3"),
    (Fraction(10**26 - 1, 100), "999999999999999999999999.99", "999999999999999999999999.99"),
    (Fraction(10**28 - 1, 100), "99999999999999999999999999.99", "99999999999999999999999999.99"),
    (Fraction(10**28 + 5, 100), "≈100000000000000000000000000.1", "100000000000000000000000000.05"),
    (Fraction(79155, 1000), "79.16", "79.155"),
    (Fraction(-1, 8), "-0.13", "-0.125"),
    (Fraction(1043, 12), "86.92", "1043/12"),
])
def test_the_bounded_texts(value: Fraction, shown_text: str, exact: str) -> None:
    assert (shown(value), exact_text(value)) == (shown_text, exact)


def test_round2_orders_huge_values() -> None:
    values = [Fraction(10**5000), Fraction(10**5000 + 10**4990), Fraction(-(10**5000)), Fraction(10**40)]
    assert sorted(values, key=round2) == sorted(values)


def test_parameter_texts_are_bounded() -> None:
    assert decimal_text(Decimal("0.3")) == "0.3" and decimal_text(Decimal("-0")) == "0"
    assert decimal_text(Decimal("1E-5000")) == "1E-5000"
    assert decimal_text(Decimal("1E+5000")) == "1E+5000"
    assert decimal_text(Decimal("1" * 5000)).startswith(APPROXIMATE)
    assert len(decimal_text(Decimal("1" * 5000))) < 40


# ---- an older store holding such numbers still scores, explains and exports --------------------------

def test_a_store_written_before_the_grammar_still_renders(monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = AppraisalLedger("memory://")
    try:
        ledger.submit(build())
        with monkeypatch.context() as before_the_grammar:  # what an earlier version accepted
            before_the_grammar.setattr(numbers, "_NUMBER", re.compile(r".+"))
            ledger.submit([
                {"type": "rating.record", "id": "old-1", "actor": "p-A", "appraisal": "2025:p-A",
                 "leaf": "business", "period": "2025-01", "rater_role": "self", "score": "1E-5000"},
                {"type": "rating.record", "id": "old-1b", "actor": "p-L1", "appraisal": "2025:p-A",
                 "leaf": "business", "period": "2025", "rater_role": "in_charge", "score": "85E-5000"},
                {"type": "measurement.record", "id": "old-2", "actor": "hr-office", "appraisal": "2025:p-A",
                 "input": "review_total", "value": "1E+5000"},
                DEDUCTION, APPEAL,
                {"type": "appeal.decide", "id": "old-3", "actor": "admin-2", "appeal": APPEAL["id"],
                 "outcome": "amended", "points": "-1E-4999", "reason": "old store",
                 "at": "2026-01-05T09:00:00+08:00"},
            ])
        results = ledger.results(2025)
        explained = ledger.explain("2025:p-A")
        texts = [str(results), str(explained)]
        assert all(len(text) < 2_000_000 for text in texts)
        assert APPROXIMATE in texts[1] and "8.5E-4999" in texts[1]  # the rating, as recorded
        assert "1E-4999" in str(ledger.explain(APPEAL["appraisal"]))
    finally:
        ledger.close()


def test_a_recorded_number_too_far_out_to_score_is_refused_at_once_not_computed() -> None:
    """1E+999999999 (an earlier version accepted it) would take minutes and gigabytes as a fraction:
    it raises, so the read side sets its event aside instead of stalling on it."""
    for text in ("1E+999999999", "1E-999999999", "-5E+100001"):
        with pytest.raises(ValueError, match="beyond what can be scored"):
            numbers.exact(Decimal(text))
    assert numbers.exact(Decimal("1E+5000")) == Fraction(10) ** 5000
