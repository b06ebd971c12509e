"""Hostile command bodies, generated (issue 15): hypothesis strategies for every command type of
COMMANDS.md, and what the contract says must become of each.

A case is a valid body of one type (as the worked example of SCORING.md §10 allows it) whose
free texts are hostile but acceptable (SQL and HTML fragments, right-to-left and zero-width
characters, long strings), with at most one field replaced by something worse: a wrong type, a
number form outside the grammar of COMMANDS.md § Numbers, a huge or tiny value, a NUL or a lone
surrogate, deep nesting, an oversized string, a business time far away, an unknown field.
`Case.expected` says what the contract requires of it: refused naming that field, or either way
(accepted and kept verbatim, or refused naming a field and a rule).

Bodies are sent as JSON text made here (`to_json`), so that a case can carry what Python's JSON
encoder would not write (`NaN`, `1e400`, 5,000 digits, a lone surrogate's escape, 100,000 nested
brackets).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

A, H1 = "2025:p-A", "2025:p-H1"
TARGET = "hostile-target"  # an absence of p-A recorded now: appealable (tests set it up)
APPEAL = "hostile-appeal"  # p-A's open appeal of it: decidable

GRAMMAR = re.compile(r"^-?[0-9]{1,9}(\.[0-9]{1,6})?$")
BUSINESS_TIME_SLACK = timedelta(minutes=5)


@dataclass(frozen=True)
class Raw:
    """JSON text sent as it is."""

    text: str


@dataclass(frozen=True)
class Now:
    """A business time this far from the clock when the case is sent."""

    seconds: int


# --- the pieces -------------------------------------------------------------------------------------

SQL = [
    "'; DROP TABLE appraisalledger_events; --", "\" OR 1=1 --", "1); DELETE FROM rm_audit; --",
    "Robert'); DROP TABLE students;--", "' UNION SELECT command_id, answer FROM appraisalledger_commands --",
    "$$; SELECT pg_sleep(5); $$", "%s%s%s%n", "{0}{1}{__class__}", "\\'; --", "?;?", ":position",
]
HTML = [
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "\"><svg onload=alert(1)>",
    "</td></tr></table><script>alert(document.cookie)</script>", "<iframe src=//evil.example></iframe>",
    "x\" onmouseover=\"alert(1)", "x' onmouseover='alert(1)", "javascript:alert(1)", "{{ 7*7 }}",
    "{% raw %}{{ config }}", "&lt;b&gt;&amp;", "<!--", "]]>", "<![CDATA[x]]>",
]
UNICODE = [
    "\u202eevil\u202c", "\u200b", "\u200d\u200c", "\ufeffBOM", "مرحبا بالعالم", "שלום", "李一 何科长",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "e\u0301", "\U0001f600\U0001f469\u200d\U0001f4bb", "\x1b[31mred\x1b[0m", "a\r\nb", "\t",
    "\u2028\u2029", "\x7f\x85", "\uffff\ufffe", "ℌ𝔢𝔩𝔩𝔬", "\u0600\u061c", " ", "",
    "²⁰²⁵:p-A", "２０２５:p-A", "٢٠٢٥:p-A", "2025:p-A\n", " 2025:p-A", "2025:", "2025:p-A/../p-H1",
]
FRAGMENTS = SQL + HTML + UNICODE
UNSTORABLE = ["a\x00b", "\x00", "\ud800", "x\udfffy", "\udbff\udc00\ud800"]  # NUL; lone surrogates
LONG = [("<script>alert(1)</script>" * 80)[:1999], "x" * 2000, "x" * 2001, "长" * 4000, "长" * 4001,
        "y" * 100_000]

# Number forms the grammar refuses (COMMANDS.md § Numbers), as strings and as JSON numbers.
BAD_NUMBER_TEXTS = [
    "1E-5000", "1e2", "1E+5000", "NaN", "nan", "Infinity", "-Infinity", "inf", "８７", "٨٧", "८७", " 85", "85 ",
    "8,5", "85,0", "0x55", "0b101", "85.1234567", "+85", ".5", "5.", "1_000", "", "-", "--1", "1234567890",
    "85.", "1e-300", "85\n", "8 5", "0.0000001", "true", "null",
]
BAD_NUMBER_JSON = [Raw("1e-300"), Raw("1E-5000"), Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw("1e400"),
                   Raw("9" * 5000), Raw("1.0000001"), Raw("true"), Raw("false"), Raw("1234567890"),
                   Raw("-0.0000001"), Raw("12345678901234567890")]
GOOD_NUMBER_JSON = [Raw("85"), Raw("85.5"), Raw("0"), Raw("-0"), Raw("100"), Raw("1.5e1"), Raw("99.999999")]
DEEP = [Raw("[" * n + "]" * n) for n in (64, 900, 1000, 100_000)] + [Raw('{"a":' * 2000 + "1" + "}" * 2000)]
WRONG_TYPES: list[Any] = [None, True, False, 0, -1, 1.5, [], {}, [1, 2], {"a": 1}, ["<script>"], {"$gt": ""},
                          Raw("1e400"), "x"]
TIMES = [
    "2025-06-30T10:00:00+08:00", "2025-06-30T10:00:00Z", "2025-06-30T10:00:00", "2025-06-30", "2025-02-30T10:00:00+08:00",
    "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2999-01-01T00:00:00+08:00", "not a time",
    "2025-06-30T10:00:00+08:00<script>", "2025-06-30T25:00:00+08:00", "１９９９-01-01T00:00:00+08:00",
    Now(0), Now(-60), Now(240), Now(-400), Now(400), Now(-86400 * 40), Now(86400 * 365),
]


def texts() -> st.SearchStrategy[str]:
    """Hostile text a store keeps: fragments, their mixtures, any Unicode but NUL and surrogates."""
    any_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=30)
    return st.one_of(st.sampled_from(FRAGMENTS), any_text,
                     st.lists(st.one_of(st.sampled_from(FRAGMENTS), any_text), min_size=2, max_size=4).map("".join))


def hostile_values() -> st.SearchStrategy[Any]:
    return st.one_of(texts(), st.sampled_from(UNSTORABLE), st.sampled_from(LONG), st.sampled_from(WRONG_TYPES),
                     st.sampled_from(DEEP), st.sampled_from(BAD_NUMBER_TEXTS), st.sampled_from(BAD_NUMBER_JSON))


def numbers() -> st.SearchStrategy[Any]:
    good = st.one_of(st.from_regex(r"\A-?[0-9]{1,9}(\.[0-9]{1,6})?\Z"), st.sampled_from(GOOD_NUMBER_JSON),
                     st.integers(-(10**9) + 1, 10**9 - 1))
    return st.one_of(good, st.sampled_from(BAD_NUMBER_TEXTS), st.sampled_from(BAD_NUMBER_JSON),
                     st.sampled_from(WRONG_TYPES), st.integers(min_value=10**9), st.floats(allow_nan=False,
                                                                                           allow_infinity=False))


# --- the command types ------------------------------------------------------------------------------

# kind of each field: text (free text, kept verbatim), name, ref (names something), decimal, int,
# scheme (a scheme reference), order (a list of person ids), document, time.
FIELDS: dict[str, dict[str, str]] = {
    "scheme.publish": {"builtin": "ref", "document": "document"},
    "org.department": {"department": "ref", "name": "name", "approved_posts": "int", "in_charge": "ref"},
    "org.person": {"person": "ref", "name": "name", "position": "ref", "department": "ref"},
    "appraisal.open": {"year": "int", "subject": "ref", "scheme": "scheme"},
    "rating.record": {"appraisal": "ref", "leaf": "ref", "period": "ref", "rater": "ref", "rater_role": "ref",
                      "score": "decimal", "comment": "text"},
    "measurement.record": {"appraisal": "ref", "input": "ref", "value": "decimal", "evidence": "text"},
    "occurrence.record": {"appraisal": "ref", "item": "ref", "count": "int", "evidence": "text"},
    "adjustment.apply": {"appraisal": "ref", "item": "ref", "evidence": "text"},
    "veto.impose": {"appraisal": "ref", "reason": "ref", "evidence": "text"},
    "appeal.file": {"appraisal": "ref", "target": "ref", "grounds": "text"},
    "appeal.decide": {"appeal": "ref", "outcome": "ref", "points": "decimal", "reason": "text"},
    "year.tie_break": {"year": "int", "order": "order", "reason": "text"},
    "year.publish": {"year": "int"},
    "year.finalize": {"year": "int"},
    "year.adopt": {"year": "int", "scheme": "scheme", "reason": "text"},
}
ENVELOPE = {"id": "id", "at": "time", "actor": "actor", "type": "type"}
MAX_LENGTH = {"comment": 2000, "evidence": 4000, "grounds": 4000, "reason": 4000, "id": 200, "actor": 200,
              "person": 100, "department": 100}
REQUIRED_TEXT = {"grounds", "reason", "person", "department", "subject", "target", "appeal"}
OPTIONAL = {"builtin", "document", "in_charge", "department", "rater", "comment", "evidence", "points", "count",
            "id", "at", "actor"}
NUMBERS = {"score": (0, 100), "value": (0, None), "points": (None, None), "count": (1, 10000),
           "approved_posts": (0, None)}

# Who sends each type: over HTTP the role whose token may (tests/builders/http_world.py), in an import the actor.
ROLE = {"rating.record": "leader", "appeal.file": "staff", "measurement.record": "recorder",
        "occurrence.record": "recorder", "adjustment.apply": "recorder", "veto.impose": "recorder"}
ACTOR = {"admin": "admin-2", "recorder": "hr-office", "leader": "p-L1", "staff": "p-A"}
PATHS = {
    "scheme.publish": ("POST", "/schemes", None), "org.department": ("PUT", "/departments/{}", "department"),
    "org.person": ("PUT", "/people/{}", "person"), "appraisal.open": ("POST", "/appraisals", None),
    "rating.record": ("POST", "/appraisals/{}/ratings", "appraisal"),
    "measurement.record": ("POST", "/appraisals/{}/measurements", "appraisal"),
    "occurrence.record": ("POST", "/appraisals/{}/occurrences", "appraisal"),
    "adjustment.apply": ("POST", "/appraisals/{}/adjustments", "appraisal"),
    "veto.impose": ("POST", "/appraisals/{}/vetoes", "appraisal"),
    "appeal.file": ("POST", "/appraisals/{}/appeals", "appraisal"),
    "appeal.decide": ("POST", "/appeals/{}/decision", "appeal"),
    "year.tie_break": ("POST", "/years/{}/tie-breaks", "year"), "year.publish": ("POST", "/years/{}/publication", "year"),
    "year.finalize": ("POST", "/years/{}/finalization", "year"), "year.adopt": ("POST", "/years/{}/adoption", "year"),
}


def role_of(kind: str) -> str:
    return ROLE.get(kind, "admin")


@st.composite
def bodies(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """A body of `kind` the worked example accepts, its free texts hostile but storable."""
    def text() -> str:
        return draw(texts().filter(bool))

    names = draw(st.one_of(texts().filter(bool), st.fixed_dictionaries({"zh": texts().filter(bool),
                                                                        "en": texts().filter(bool)})))
    suffix = draw(st.sampled_from(["h1", "h2", "<b>", "x'--", "李"]))
    return {
        "scheme.publish": lambda: {"builtin": "bianban"},
        "org.department": lambda: {"department": f"d-{suffix}", "name": names, "approved_posts": draw(
            st.integers(0, 50)), "in_charge": "p-L1"},
        "org.person": lambda: {"person": f"p-{suffix}", "name": names, "position": "staff", "department": "d-01"},
        "appraisal.open": lambda: {"year": 2025, "subject": draw(st.sampled_from(["d-02", "p-L1", f"p-{suffix}"])),
                                   "scheme": {"id": "bianban", "version": 1}},
        "rating.record": lambda: {"appraisal": A, "leaf": "business", "period": draw(st.sampled_from(
            ["2025-11", "2025-Q4", "2025"])), "rater_role": "in_charge", "score": draw(st.sampled_from(
                ["82.5", "0", "100", "99.999999"])), "comment": text()},
        "measurement.record": lambda: {"appraisal": A, "input": "review_total", "value": "400", "evidence": text()},
        "occurrence.record": lambda: {"appraisal": A, "item": "absence", "count": 1, "evidence": text()},
        "adjustment.apply": lambda: {"appraisal": H1, "item": "over_quota_hiring", "evidence": text()},
        "veto.impose": lambda: {"appraisal": A, "reason": "major_accident", "evidence": text()},
        "appeal.file": lambda: {"appraisal": A, "target": TARGET, "grounds": text()},
        "appeal.decide": lambda: {"appeal": APPEAL, "outcome": "amended", "points": "-1.5", "reason": text()},
        "year.tie_break": lambda: {"year": 2025, "order": ["p-A", "p-H1"], "reason": text()},
        "year.publish": lambda: {"year": 2025},
        "year.finalize": lambda: {"year": 2025},
        "year.adopt": lambda: {"year": 2025, "scheme": {"id": "bianban", "version": 1}, "reason": text()},
    }[kind]()


def values_for(kind: str) -> st.SearchStrategy[Any]:
    if kind in ("decimal", "int"):
        return numbers()
    if kind == "time":
        return st.one_of(st.sampled_from(TIMES), hostile_values())
    return hostile_values()


@dataclass
class Case:
    kind: str
    body: dict[str, Any]
    mutated: str | None = None  # the field replaced by something hostile, or None
    via_path: bool = False  # sent to the type's own path (the path field in the URL), else to /commands
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def value(self) -> Any:
        return self.body.get(self.mutated) if self.mutated else None


@st.composite
def cases(draw: st.DrawFn, kinds: tuple[str, ...] = tuple(FIELDS)) -> Case:
    kind = draw(st.sampled_from(kinds))
    body = draw(bodies(kind))
    fields = {**FIELDS[kind], **ENVELOPE}
    mutated = draw(st.one_of(st.none(), st.sampled_from([*sorted(fields), "<extra>"])))
    if mutated == "<extra>":
        mutated = draw(st.sampled_from(["<script>", "__proto__", "'; DROP TABLE x; --", "Score", "at ", "\u202eid"]))
        body[mutated] = draw(hostile_values())
    elif mutated == "type":
        body["type"] = draw(st.one_of(texts(), st.sampled_from(WRONG_TYPES)))
    elif mutated is not None:
        body[mutated] = draw(values_for(fields[mutated]))
    return Case(kind, body, mutated, via_path=draw(st.booleans()))


# --- what the contract says ---------------------------------------------------------------------------

def storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def number_text(value: Any) -> str | None:
    """The text a number is read from (COMMANDS.md § Numbers): a string as it is, a JSON number
    through its shortest text; None for anything else (a boolean, a list, JSON Python cannot read)."""
    if isinstance(value, Raw):
        try:
            value = json.loads(value.text)
        except (ValueError, RecursionError):
            return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    if isinstance(value, float):
        return repr(value)
    return str(value)


def business_time(value: Any) -> datetime | None:
    if isinstance(value, Now):
        return datetime.now(UTC) + timedelta(seconds=value.seconds)
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}T[0-9:.]+(Z|[+-]\d{2}:\d{2})", value):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


@dataclass
class Expected:
    refuse: bool  # the contract refuses it
    field: str = ""  # naming this field (when refused for what it sent)
    rule: str = ""  # with this rule, when the contract names one


def expected(case: Case, *, importer: bool = False, role: str = "admin") -> Expected:
    """What the contract requires of a case: refused naming the mutated field, or either way."""
    name, value = case.mutated, case.value
    if name is None:
        return Expected(False)
    kind = {**FIELDS[case.kind], **ENVELOPE}.get(name, "extra")
    either, refuse = Expected(False), Expected(True, name)
    if isinstance(value, Raw) and number_text(value) is None and not value.text.startswith(("true", "false")):
        return Expected(True, "(body)")  # not JSON Python reads: the whole body (or line) is refused
    if kind == "extra":
        return refuse
    if kind == "type":
        return either if value == case.kind else Expected(True, "type")
    if kind == "time":
        if value is None:
            return either
        at = business_time(value)
        if isinstance(value, Now | str) and at is not None:
            now = datetime.now(UTC)
            if at.utcoffset() is None:
                return Expected(True, "at")
            try:
                future = at - now > BUSINESS_TIME_SLACK
                away = abs(at - now) > BUSINESS_TIME_SLACK
            except OverflowError:
                return either
            if future or (away and not importer and role not in ("admin", "recorder")):
                return Expected(True, "at", "business-time")
            return either
        return Expected(True, "at")
    if kind == "actor" and not importer:
        return either if value is None or (isinstance(value, str) and storable(value)) else Expected(True, "actor")
    if name in NUMBERS:
        if value is None:
            return either if name in OPTIONAL else refuse
        text = number_text(value)
        if text is None or not GRAMMAR.match(text):
            return Expected(True, name, "number-format" if isinstance(value, str | int | float | Raw) else "")
        number = Decimal(text)
        low, high = NUMBERS[name]
        if (low is not None and number < low) or (high is not None and number > high):
            return refuse
        if kind == "int" and number != number.to_integral_value():
            return refuse
        return either
    if kind == "int":  # a year
        return either if isinstance(value, int) or number_text(value) is not None else refuse
    if value is None:
        return either if name in OPTIONAL else refuse
    if kind in ("text", "ref", "id", "actor"):
        if not isinstance(value, str) or not storable(value) or len(value) > MAX_LENGTH.get(name, 10**9):
            return refuse
        if value == "" and (name in REQUIRED_TEXT or name == "id"):
            return refuse
        return either
    if kind == "name":
        if isinstance(value, str):
            return refuse if not storable(value) or not value else either
        return either if isinstance(value, dict) else refuse
    if kind == "order":
        return either if isinstance(value, list) else refuse
    return either if isinstance(value, dict) else refuse


def names_field(problem_field: str, wanted: str) -> bool:
    return problem_field == wanted or problem_field.startswith((f"{wanted}.", f"{wanted}["))


# --- JSON text ---------------------------------------------------------------------------------------

def to_json(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Now):
        return json.dumps((datetime.now(UTC) + timedelta(seconds=value.seconds)).isoformat())
    if isinstance(value, dict):
        return "{" + ",".join(f"{to_json(str(k))}:{to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=not storable(value) or "\x00" in value)
    return json.dumps(value)


def kept_texts(case: Case) -> list[str]:
    """The free texts of an accepted case that must be kept verbatim: comments, evidence, grounds,
    reasons, names."""
    kept = []
    for name, kind in FIELDS[case.kind].items():
        value = case.body.get(name)
        if kind in ("text", "name") and not (case.kind == "veto.impose" and name == "reason"):
            if isinstance(value, str):
                kept.append(value)
            elif isinstance(value, dict):
                kept.extend(v for v in value.values() if isinstance(v, str))
    return kept


def leaves(value: Any) -> set[str]:
    """Every string inside a JSON value."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(leaves(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(leaves(v) for v in value)) if value else set()
    return set()
