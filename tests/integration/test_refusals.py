"""Bad input (COMMANDS.md): a refused command names the field and the rule, and records nothing.

Every case starts from the worked example of SCORING.md §10 (plus a few setup commands where the
refusal needs them), submits one bad command and checks the refusal and that the log, the
command-id table and the results are exactly as before, also as read by a fresh application.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.ledger import AppraisalLedger, Refused
from domain.scheme import builtin_document
from tests.builders.worked_example import APPEAL, DEDUCTION, OVERTURN, build

WHEN = "2025-12-28T09:00:00+08:00"
SCHEME = {"id": "bianban", "version": 1}


def command(type_: str, case: str, *, actor: str = "admin", at: str = WHEN, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "id": f"bad-{case}", "actor": actor, "at": at, **fields}


def rating(case: str, appraisal: str, rater: str, role: str, *, leaf: str = "business",
           period: str = "2025", score: Any = "80", **extra: Any) -> dict[str, Any]:
    return command("rating.record", case, actor=rater, appraisal=appraisal, leaf=leaf, period=period,
                   rater=rater, rater_role=role, score=score, **extra)


def from_now(**delta: float) -> str:
    """A business time this far from the real clock (the ledgers here keep it)."""
    return (datetime.now(UTC) + timedelta(**delta)).isoformat(timespec="seconds")


def without(body: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in keys}


def example_id(**match: Any) -> str:
    """The command id of the first worked-example command with these fields."""
    return next(c["id"] for c in build() if all(c.get(k) == v for k, v in match.items()))


H1_SELF_RATING = example_id(type="rating.record", appraisal="2025:p-H1", rater="p-H1")
A_FIRST_RATING = example_id(type="rating.record", appraisal="2025:p-A")
D01_COMPLAINT = example_id(type="occurrence.record", appraisal="2025:d-01")
H1_LAST_BONUS = [c["id"] for c in build() if c.get("item") == "innovation_adopted"
                 and c["appraisal"] == "2025:p-H1"][-1]
ORIGINAL_L1 = example_id(type="org.person", person="p-L1")


def scheme_document(version: int, **changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(builtin_document("bianban"))
    document.update(version=version, **changes)
    if version > 1:
        document.setdefault("supersedes", version - 1)
        document.setdefault("reason", "test version")
    return document


# --- setups: commands accepted after the worked example, before the bad one ---------------------

def _setup(type_: str, id_: str, actor: str = "admin", at: str = WHEN, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "id": id_, "actor": actor, "at": at, **fields}


STAFF_B = (_setup("org.person", "s-pB", person="p-B", name="包员", position="staff", department="d-01"),)
OPEN_B = (*STAFF_B, _setup("appraisal.open", "s-open-pB", year=2025, subject="p-B", scheme=SCHEME))
FILED = (DEDUCTION, APPEAL)
DECIDED = (DEDUCTION, APPEAL, OVERTURN)
BONUS_APPEALED = (_setup("appeal.file", "s-appeal-bonus", actor="p-H1", at="2025-11-20T09:00:00+08:00",
                         appraisal="2025:p-H1", target=H1_LAST_BONUS, grounds="复核"),)
L2_TAKES_D01 = (_setup("org.department", "s-d01-L2", department="d-01",
                       name={"zh": "机构编制科", "en": "Staffing Section"}, approved_posts=8,
                       in_charge="p-L2"),)
V2_PUBLISHED = (_setup("scheme.publish", "s-v2", document=scheme_document(2)),)
D02_OPEN = (_setup("appraisal.open", "s-open-d02", year=2025, subject="d-02", scheme=SCHEME),)


def _tied(person: str) -> tuple[dict[str, Any], ...]:
    """A complete staff member of d-01 rated only by the in-charge leader: total 80.53."""
    return (
        _setup("org.person", f"s-{person}", person=person, name=person, position="staff", department="d-01"),
        _setup("appraisal.open", f"s-open-{person}", year=2025, subject=person, scheme=SCHEME),
        *(_setup("rating.record", f"s-{person}-{leaf}", actor="p-L1", appraisal=f"2025:{person}",
                 leaf=leaf, period="2025", rater="p-L1", rater_role="in_charge", score="80")
          for leaf in ("business", "innovation")),
    )


# Four people: H1 89.69, X 80.53, Y 80.53, A 79.16. X and Y share positions 2-3, which get
# grades B and C (A = floor(0.3 × 4) = 1 place, B the next 1): an unresolved tie.
TIE = (*_tied("p-X"), *_tied("p-Y"))


@dataclass(frozen=True)
class Case:
    command: Any
    field: str
    rule: str
    message: str
    status: str = "invalid"
    setup: tuple[dict[str, Any], ...] = ()


def case(id_: str, body: Any, field: str, rule: str, message: str, status: str = "invalid",
         setup: tuple[dict[str, Any], ...] = ()) -> Any:
    return pytest.param(Case(body, field, rule, message, status, setup), id=id_)


NF, CONFLICT = "not_found", "conflict"
A, H1, D01 = "2025:p-A", "2025:p-H1", "2025:d-01"

CASES = [
    # --- malformed bodies --------------------------------------------------------------------
    case("not-an-object", ["rating.record", A], "(command)", "envelope", "JSON object"),
    case("unknown-type", command("rating.delete", "unknown-type", appraisal=A),
         "type", "envelope", "unknown command type"),
    case("missing-type", without(command("x", "missing-type", appraisal=A), "type"),
         "type", "envelope", "unknown command type"),
    case("missing-required-field", without(rating("missing-score", A, "p-L1", "in_charge"), "score"),
         "score", "command-fields", "required"),
    case("missing-required-field-open", without(command("appraisal.open", "open-no-scheme", year=2025,
                                                        subject="d-02", scheme=SCHEME), "scheme"),
         "scheme", "command-fields", "required"),
    case("unknown-field", rating("unknown-field", A, "p-L1", "in_charge", weight="0.6"),
         "weight", "command-fields", "unknown field"),
    case("unknown-envelope-field", command("year.publish", "unknown-env", year=2025, user="p-A"),
         "user", "command-fields", "unknown field"),
    case("wrong-type-integer", command("org.department", "posts-text", department="d-03", name="三科",
                                       approved_posts="eight", in_charge="p-L3"),
         "approved_posts", "number-format", "an integer"),
    case("wrong-type-decimal", rating("score-text", A, "p-L1", "in_charge", score="ninety"),
         "score", "number-format", 'got "ninety"'),
    case("wrong-type-boolean", rating("score-bool", A, "p-L1", "in_charge", score=True),
         "score", "number-format", "got true"),
    # --- numbers outside the grammar (COMMANDS.md "Numbers"): refused, nothing recorded ---------
    case("score-tiny-exponent", rating("score-1e-5000", A, "p-L1", "in_charge", score="1E-5000"),
         "score", "number-format", 'got "1E-5000"'),
    case("score-json-exponent", rating("score-json-1e-300", A, "p-L1", "in_charge", score=1e-300),
         "score", "number-format", "got 1e-300"),
    case("score-full-width", rating("score-fw", A, "p-L1", "in_charge", score="８７"),
         "score", "number-format", 'got "８７"'),
    case("measurement-full-width", command("measurement.record", "value-fw", appraisal=A,
                                           input="review_total", value="４００"),
         "value", "number-format", "number format"),
    case("count-decimal-point", command("occurrence.record", "count-3.0", appraisal=A, item="absence",
                                        count="3.0"),
         "count", "number-format", "an integer"),
    case("count-boolean", command("occurrence.record", "count-true", appraisal=A, item="absence",
                                  count=True),
         "count", "number-format", "got true"),
    case("amended-points-exponent", command("appeal.decide", "points-1e1", appeal="we-appeal",
                                            outcome="amended", points="-1e1", reason="x"),
         "points", "number-format", 'got "-1e1"', setup=FILED),
    case("year-boolean", command("year.publish", "year-true", year=True), "year", "number-format", "got true"),
    case("scheme-weight-exponent", command("scheme.publish", "v2-exponent", document=scheme_document(
        2, composition={"staff": {"department": "5E-1", "individual": "0.5"},
                        "department_head": {"department": "0.6", "individual": "0.4"}})),
         "document.composition.staff.department", "number-format", 'got "5E-1"'),
    case("wrong-type-object", command("appraisal.open", "scheme-text", year=2025, subject="d-02",
                                      scheme="bianban@1"),
         "scheme", "command-fields", "dictionary"),
    case("wrong-type-list", command("year.tie_break", "order-text", year=2025, order="p-A,p-H1",
                                    reason="x"),
         "order", "command-fields", "list"),
    case("unknown-outcome", command("appeal.decide", "outcome-dismissed", appeal="we-appeal",
                                    outcome="dismissed", reason="x"),
         "outcome", "command-fields", "upheld"),
    case("unknown-position", command("org.person", "intern", person="p-I", name="实习", position="intern",
                                     department="d-01"),
         "position", "command-fields", "staff"),
    case("unknown-rater-role", rating("role-boss", A, "p-L1", "boss"), "rater_role", "command-fields",
         "in_charge"),
    case("malformed-appraisal-key", rating("key-no-year", "p-A", "p-L1", "in_charge"),
         "appraisal", "command-fields", "<year>:<subject id>"),
    case("malformed-period", rating("period-13", A, "p-L1", "in_charge", period="2025-13"),
         "period", "command-fields", "a period is"),
    case("count-zero", command("occurrence.record", "count-0", appraisal=A, item="absence", count=0),
         "count", "command-fields", "greater than or equal to 1"),
    case("negative-approved-posts", command("org.department", "posts-neg", department="d-03", name="三科",
                                            approved_posts=-1, in_charge="p-L3"),
         "approved_posts", "command-fields", "greater than or equal to 0"),
    case("missing-actor", without(rating("no-actor", A, "p-L1", "in_charge"), "actor"),
         "actor", "envelope", "required"),
    case("time-without-offset", rating("naive-at", A, "p-L1", "in_charge", at="2025-12-20T10:00:00"),
         "at", "command-fields", "offset"),
    case("date-without-offset", command("org.person", "naive-date", at="2025-12-20", person="p-Z",
                                        name="z", position="leader"),
         "at", "command-fields", "offset"),
    case("time-not-a-time", command("org.person", "bad-at", at="yesterday", person="p-Z", name="z",
                                    position="leader"),
         "at", "command-fields", "datetime"),
    # COMMANDS.md § Envelope: no `at` more than 5 minutes in the future, a batch import's included
    # (a day ahead: these bodies are made when the tests are collected; 10 minutes: below)
    case("time-in-the-future", command("org.person", "future-at", at=from_now(days=1), person="p-Z",
                                       name="z", position="leader"),
         "at", "business-time", "more than 5 minutes after the server's clock"),
    case("rating-in-the-future", rating("future-rating", A, "p-L1", "in_charge", at=from_now(days=1)),
         "at", "business-time", "more than 5 minutes after the server's clock"),
    # --- unknown references ------------------------------------------------------------------
    case("unknown-appraisal", rating("unknown-appraisal", "2025:p-ZZ", "p-L1", "in_charge"),
         "appraisal", "appraisal-open", "no appraisal 2025:p-ZZ", NF),
    case("unknown-appraisal-year", command("measurement.record", "other-year", appraisal="2024:d-01",
                                           input="zombie_cleanup_rate", value="90"),
         "appraisal", "appraisal-open", "no appraisal 2024:d-01", NF),
    case("unknown-leaf", rating("unknown-leaf", A, "p-L1", "in_charge", leaf="charisma"),
         "leaf", "rated-leaves", "not a rated leaf"),
    case("leaf-not-rated", rating("full-leaf", A, "p-L1", "in_charge", leaf="discipline"),
         "leaf", "rated-leaves", "not a rated leaf"),
    case("leaf-of-other-tree", rating("dep-leaf", A, "p-L1", "in_charge", leaf="reform_tasks"),
         "leaf", "rated-leaves", "individual tree"),
    case("unknown-input", command("measurement.record", "unknown-input", appraisal=D01, input="happiness",
                                  value="5"),
         "input", "known-inputs", "not a measurement input"),
    case("input-of-other-tree", command("measurement.record", "dep-input", appraisal=A,
                                        input="function_implementation_rate", value="95"),
         "input", "known-inputs", "not read by the individual tree"),
    case("count-as-measurement", command("measurement.record", "count-input", appraisal=A, input="absence",
                                         value="2"),
         "input", "known-inputs", "not a measurement input"),
    case("unknown-item", command("occurrence.record", "unknown-item", appraisal=A, item="late_arrival"),
         "item", "known-inputs", "not a count input"),
    case("item-of-other-tree", command("occurrence.record", "dep-item", appraisal=A, item="valid_complaint"),
         "item", "known-inputs", "not read by the individual tree"),
    case("unknown-adjustment-item", command("adjustment.apply", "unknown-adj", appraisal=H1, item="bad_mood"),
         "item", "adjustment-catalogue", "not in the adjustment catalogue"),
    case("unknown-veto-reason", command("veto.impose", "unknown-veto", appraisal=A, reason="rudeness"),
         "reason", "veto-catalogue", "not in the veto catalogue"),
    case("unknown-scheme", command("appraisal.open", "unknown-scheme", year=2025, subject="d-02",
                                   scheme={"id": "nope", "version": 1}),
         "scheme", "scheme-published", "nope@1 is not published", NF),
    case("unknown-scheme-version", command("appraisal.open", "unknown-version", year=2026, subject="d-02",
                                           scheme={"id": "bianban", "version": 9}),
         "scheme", "scheme-published", "bianban@9 is not published", NF),
    case("unknown-builtin-scheme", command("scheme.publish", "builtin-other", builtin="other"),
         "builtin", "command-fields", "bianban"),
    case("unknown-subject", command("appraisal.open", "unknown-subject", year=2025, subject="p-ZZ",
                                    scheme=SCHEME),
         "subject", "appraised-subjects", "no department or person p-ZZ", NF),
    case("unknown-department", command("org.person", "unknown-dep", person="p-Z", name="z",
                                       position="staff", department="d-99"),
         "department", "membership", "no department d-99", NF),
    case("unknown-in-charge", command("org.department", "unknown-leader", department="d-03", name="三科",
                                      approved_posts=3, in_charge="p-ZZ"),
         "in_charge", "in-charge-leader", "no person p-ZZ", NF),
    case("unknown-year", command("year.publish", "publish-2024", year=2024),
         "year", "year-open", "no appraisal is open for 2024", NF),
    # --- who may rate in which role (SCORING.md §5) ------------------------------------------
    case("staff-rates-staff-as-in-charge", rating("staff-in-charge", A, "p-B", "in_charge"),
         "rater_role", "rater-roles", "leader in charge of d-01 is p-L1", setup=STAFF_B),
    case("in-charge-leader-as-leadership-team", rating("l1-team", H1, "p-L1", "leadership_team"),
         "rater_role", "rater-roles", "in_charge role only"),
    case("leader-as-department-head", rating("l2-head", A, "p-L2", "department_head"),
         "rater_role", "rater-roles", "head of d-01 is p-H1"),
    case("head-rates-department-as-department-head", rating("h1-dep-head", D01, "p-H1", "department_head",
                                                            leaf="reform_tasks"),
         "rater_role", "rater-roles", "no weight"),
    case("non-person-rater", rating("hr-rater", A, "hr-office", "in_charge"),
         "rater", "rater-roles", "raters must be people", NF),
    case("rater-defaults-to-non-person-actor", without(rating("hr-actor", A, "hr-office", "in_charge"),
                                                       "rater"),
         "rater", "rater-roles", "no person hr-office", NF),
    case("subject-rates-self-as-in-charge", rating("a-in-charge", A, "p-A", "in_charge"),
         "rater_role", "rater-roles", "only as self"),
    case("one-rater-in-two-roles", rating("l2-two-roles", H1, "p-L2", "in_charge"),
         "rater_role", "one-role-per-rater", "one role per rater", setup=L2_TAKES_D01),
    case("role-without-weight", rating("l2-team-staff", A, "p-L2", "leadership_team"),
         "rater_role", "rater-roles", "no weight"),
    case("someone-else-as-self", rating("l1-self", A, "p-L1", "self"),
         "rater_role", "rater-roles", "only the subject"),
    case("non-head-as-department-self", rating("l2-dep-self", D01, "p-L2", "self", leaf="reform_tasks"),
         "rater_role", "rater-roles", "head (p-H1)"),
    case("staff-as-superior", rating("a-superior", H1, "p-A", "superior"),
         "rater_role", "rater-roles", "not a superior leader"),
    case("superior-as-leadership-team", rating("s1-team", H1, "p-S1", "leadership_team"),
         "rater_role", "rater-roles", "not a member of the leadership team"),
    # --- ranges ------------------------------------------------------------------------------
    case("score-above-100", rating("score-101", A, "p-L1", "in_charge", score="100.01"),
         "score", "command-fields", "0 to 100"),
    case("score-negative", rating("score-neg", A, "p-L1", "in_charge", score=-1),
         "score", "command-fields", "0 to 100"),
    case("period-before-year", rating("period-2024", A, "p-L1", "in_charge", period="2024-12"),
         "period", "period-in-year", "not in 2025"),
    case("period-after-year", rating("period-2026", A, "p-L1", "in_charge", period="2026-Q1"),
         "period", "period-in-year", "not in 2025"),
    case("percentage-above-100", command("measurement.record", "rate-101", appraisal=D01,
                                         input="function_implementation_rate", value="100.5"),
         "value", "measurement-range", "above 100"),
    case("measurement-negative", command("measurement.record", "total-neg", appraisal=A,
                                         input="review_total", value="-1"),
         "value", "measurement-range", "negative"),
    case("percentage-negative", command("measurement.record", "rate-neg", appraisal=D01,
                                        input="zombie_cleanup_rate", value=-0.5),
         "value", "measurement-range", "negative"),
    # --- appeals (SCORING.md §8) -------------------------------------------------------------
    case("appeal-by-another-person", command("appeal.file", "a-appeals-h1", actor="p-A", appraisal=H1,
                                             target="we-ded", grounds="x"),
         "actor", "appeal-by-subject", "only the subject (p-H1)", setup=(DEDUCTION,)),
    case("appeal-by-an-admin", command("appeal.file", "admin-appeals", appraisal=H1, target="we-ded",
                                       grounds="x"),
         "actor", "appeal-by-subject", "only the subject (p-H1)", setup=(DEDUCTION,)),
    case("department-appeal-by-non-head", command("appeal.file", "l1-appeals-d01", actor="p-L1",
                                                  at="2025-09-10T09:00:00+08:00", appraisal=D01,
                                                  target=D01_COMPLAINT, grounds="x"),
         "actor", "appeal-by-subject", "only the subject (p-H1)"),
    case("appeal-after-window", command("appeal.file", "late", actor="p-H1", at="2026-01-21T09:00:01+08:00",
                                        appraisal=H1, target="we-ded", grounds="x"),
         "at", "appeal-window", "window closed", setup=(DEDUCTION,)),
    case("appeal-after-window-utc", command("appeal.file", "late-utc", actor="p-H1",
                                            at="2026-01-21T01:00:01Z", appraisal=H1, target="we-ded",
                                            grounds="x"),
         "at", "appeal-window", "window closed", setup=(DEDUCTION,)),
    case("appeal-before-item", command("appeal.file", "early", actor="p-H1", at="2025-12-21T09:00:00+08:00",
                                       appraisal=H1, target="we-ded", grounds="x"),
         "at", "appeal-window", "precede", setup=(DEDUCTION,)),
    case("appeal-of-a-rating", command("appeal.file", "appeal-rating", actor="p-H1", appraisal=H1,
                                       target=H1_SELF_RATING, grounds="x"),
         "target", "appeal-target", "rating cannot be appealed"),
    case("appeal-of-unknown-item", command("appeal.file", "appeal-nothing", actor="p-H1", appraisal=H1,
                                           target="nope", grounds="x"),
         "target", "appeal-target", "no item recorded on 2025:p-H1", NF),
    case("appeal-of-another-appraisals-item", command("appeal.file", "appeal-elsewhere", actor="p-H1",
                                                      appraisal=H1, target=A_FIRST_RATING, grounds="x"),
         "target", "appeal-target", "no item recorded on 2025:p-H1", NF),
    case("second-appeal-of-item", command("appeal.file", "appeal-again", actor="p-H1",
                                          at="2025-12-27T09:00:00+08:00", appraisal=H1, target="we-ded",
                                          grounds="again"),
         "target", "one-appeal-per-item", "already appealed (we-appeal)", CONFLICT, setup=FILED),
    case("decision-by-recorder", command("appeal.decide", "recorder-decides", actor="hr-office",
                                         appeal="we-appeal", outcome="overturned", reason="x"),
         "actor", "independent-decision", "recorded the appealed item", setup=FILED),
    case("decision-by-appellant", command("appeal.decide", "appellant-decides", actor="p-H1",
                                          appeal="we-appeal", outcome="overturned", reason="x"),
         "actor", "independent-decision", "appellant", setup=FILED),
    case("decision-before-appeal", command("appeal.decide", "decides-early", at="2025-12-25T09:00:00+08:00",
                                           appeal="we-appeal", outcome="upheld", reason="x"),
         "at", "decision-time", "precede", setup=FILED),
    case("amended-harsher", command("appeal.decide", "harsher", appeal="we-appeal", outcome="amended",
                                    points="-30", reason="x"),
         "points", "never-harsher", "harsher than the original -20", setup=FILED),
    case("amended-without-points", command("appeal.decide", "no-points", appeal="we-appeal",
                                           outcome="amended", reason="x"),
         "points", "amend-deductions", "required for amended", setup=FILED),
    case("points-with-upheld", command("appeal.decide", "upheld-points", appeal="we-appeal",
                                       outcome="upheld", points="-10", reason="x"),
         "points", "amend-deductions", "only an amended outcome carries points", setup=FILED),
    case("points-with-overturned", command("appeal.decide", "overturned-points", appeal="we-appeal",
                                           outcome="overturned", points="0", reason="x"),
         "points", "amend-deductions", "only an amended outcome carries points", setup=FILED),
    case("amended-occurrence", command("appeal.decide", "amend-bonus", appeal="s-appeal-bonus",
                                       outcome="amended", points="-1", reason="x"),
         "outcome", "amend-deductions", "direct deductions only", setup=BONUS_APPEALED),
    case("decide-unknown-appeal", command("appeal.decide", "decide-nothing", appeal="nope",
                                          outcome="upheld", reason="x"),
         "appeal", "appeal-known", "no appeal filed by command nope", NF),
    case("decide-a-non-appeal", command("appeal.decide", "decide-deduction", appeal="we-ded",
                                        outcome="upheld", reason="x"),
         "appeal", "appeal-known", "no appeal filed by command we-ded", NF, setup=(DEDUCTION,)),
    case("decide-twice", command("appeal.decide", "decide-again", appeal="we-appeal", outcome="upheld",
                                 reason="x"),
         "appeal", "one-decision", "already decided", CONFLICT, setup=DECIDED),
    # --- appraisals --------------------------------------------------------------------------
    case("open-with-another-scheme-version", command("appraisal.open", "open-v2", year=2025, subject="d-02",
                                                     scheme={"id": "bianban", "version": 2}),
         "scheme", "one-scheme-per-year", "year 2025 uses bianban@1", CONFLICT, setup=V2_PUBLISHED),
    case("open-twice", command("appraisal.open", "open-again", year=2025, subject="p-A", scheme=SCHEME),
         "subject", "one-appraisal", "2025:p-A is already open", CONFLICT),
    case("open-for-a-leader", command("appraisal.open", "open-leader", year=2025, subject="p-L1",
                                      scheme=SCHEME),
         "subject", "appraised-subjects", "p-L1 is a leader"),
    case("open-for-a-superior", command("appraisal.open", "open-superior", year=2025, subject="p-S1",
                                        scheme=SCHEME),
         "subject", "appraised-subjects", "p-S1 is a superior"),
    case("adjustment-on-department", command("adjustment.apply", "adj-dep", appraisal=D01,
                                             item="over_quota_hiring"),
         "appraisal", "person-only", "person appraisals only"),
    case("veto-on-department", command("veto.impose", "veto-dep", appraisal=D01, reason="major_accident"),
         "appraisal", "person-only", "person appraisals only"),
    # --- the organisation --------------------------------------------------------------------
    case("department-id-is-a-person", command("org.department", "dep-p-A", department="p-A", name="x",
                                              approved_posts=1, in_charge="p-L3"),
         "department", "unique-ids", "already a person's id", CONFLICT),
    case("person-id-is-a-department", command("org.person", "person-d-01", person="d-01", name="x",
                                              position="leader"),
         "person", "unique-ids", "already a department's id", CONFLICT),
    case("second-head", command("org.person", "head-2", person="p-H2", name="x", position="department_head",
                                department="d-01"),
         "position", "one-head", "already has a head (p-H1)", CONFLICT),
    case("staff-without-department", command("org.person", "staff-nowhere", person="p-Z", name="z",
                                             position="staff"),
         "department", "membership", "required for a staff"),
    case("head-without-department", command("org.person", "head-nowhere", person="p-Z", name="z",
                                            position="department_head"),
         "department", "membership", "required for a department_head"),
    case("leader-with-department", command("org.person", "leader-in-dep", person="p-Z", name="z",
                                           position="leader", department="d-01"),
         "department", "membership", "belongs to no department"),
    case("in-charge-is-a-superior", command("org.department", "dep-superior", department="d-03", name="三科",
                                            approved_posts=3, in_charge="p-S1"),
         "in_charge", "in-charge-leader", "must be a leader"),
    case("in-charge-is-staff", command("org.department", "dep-staff", department="d-03", name="三科",
                                       approved_posts=3, in_charge="p-A"),
         "in_charge", "in-charge-leader", "must be a leader"),
    case("in-charge-leader-demoted", command("org.person", "demote-l1", person="p-L1", name="李一",
                                             position="superior"),
         "position", "in-charge-leader", "reassign those departments first"),
    # --- the year ----------------------------------------------------------------------------
    case("publish-with-unresolved-tie", command("year.publish", "publish-tied", year=2025),
         "year", "publish-ready", "unresolved ties (p-X, p-Y)", setup=TIE),
    case("publish-with-incomplete-department", command("year.publish", "publish-d02", year=2025),
         "year", "publish-ready", "incomplete appraisals: d-02", setup=D02_OPEN),
    case("publish-with-incomplete-person", command("year.publish", "publish-pB", year=2025),
         "year", "publish-ready", "incomplete appraisals: p-B", setup=OPEN_B),
    case("finalize-before-publish", command("year.finalize", "finalize-early", year=2025),
         "year", "finalize-after-publicity", "not published"),
    case("tie-break-unknown-person", command("year.tie_break", "tie-unknown", year=2025,
                                             order=["p-A", "p-ZZ"], reason="x"),
         "order[1]", "tie-break", "p-ZZ has no person appraisal"),
    case("tie-break-person-twice", command("year.tie_break", "tie-twice", year=2025,
                                           order=["p-A", "p-A"], reason="x"),
         "order", "tie-break", "appears twice"),
    # --- schemes -----------------------------------------------------------------------------
    case("scheme-builtin-and-document", command("scheme.publish", "both", builtin="bianban",
                                                document=scheme_document(2)),
         "document", "scheme.publish", "exactly one"),
    case("scheme-version-changed", command("scheme.publish", "v1-edited",
                                           document=scheme_document(1, appeal_window_days=60)),
         "document.version", "scheme-immutable", "already published with other content", CONFLICT),
    case("scheme-supersedes-unknown", command("scheme.publish", "v3", document=scheme_document(3)),
         "document.supersedes", "scheme-supersedes", "bianban@2 is not published", NF),
    # --- idempotency -------------------------------------------------------------------------
    case("reused-id-other-body", {**build()[1], "name": "李一一"},
         "id", "idempotency", f"command id {ORIGINAL_L1} was already used", CONFLICT),
]


@pytest.fixture
def ledger(db_url: str) -> Iterator[AppraisalLedger]:
    ledger = AppraisalLedger(db_url)
    ledger.submit(build())
    yield ledger
    ledger.close()


def _state(ledger: AppraisalLedger) -> tuple[int, dict[str, Any], dict[str, Any]]:
    return ledger.event_count(), ledger.results(2025), ledger.explain("2025:p-H1")


@pytest.mark.parametrize("bad", CASES)
def test_refusal_names_field_and_rule_and_records_nothing(ledger: AppraisalLedger, db_url: str,
                                                          bad: Case) -> None:
    if bad.setup:
        ledger.submit(list(bad.setup))
    before = _state(ledger)
    command_id = bad.command.get("id") if isinstance(bad.command, dict) else None
    rows_before = ledger.commands([command_id]) if command_id else {}

    with pytest.raises(Refused) as refused:
        ledger.submit([bad.command])

    outcome = refused.value.outcome
    assert outcome.error is not None
    error = outcome.error
    assert (error.field, error.rule, error.status) == (bad.field, bad.rule, bad.status), error.message
    assert bad.message in error.message
    assert not outcome.accepted
    assert outcome.index == 0
    # Nothing recorded: not in the log, not in the command-id table, not in what is read back.
    assert _state(ledger) == before
    if command_id:
        assert ledger.commands([command_id]) == rows_before
    fresh = AppraisalLedger(db_url)
    try:
        assert _state(fresh) == before
    finally:
        fresh.close()


def test_refusal_keeps_every_accepted_command_before_it(ledger: AppraisalLedger) -> None:
    start = ledger.event_count()
    good = [_setup("org.person", "k-1", person="p-K1", name="k1", position="leader"),
            _setup("org.person", "k-2", person="p-K2", name="k2", position="leader")]
    bad = _setup("org.person", "k-3", person="p-K3", name="k3", position="staff")
    after = _setup("org.person", "k-4", person="p-K4", name="k4", position="leader")

    with pytest.raises(Refused) as refused:
        ledger.submit([*good, bad, after])

    assert (refused.value.outcome.index, refused.value.outcome.command_id) == (2, "k-3")
    assert ledger.event_count() == start + 2
    assert set(ledger.commands(["k-1", "k-2", "k-3", "k-4"])) == {"k-1", "k-2"}


def test_a_batch_import_gives_no_business_time_10_minutes_ahead(ledger: AppraisalLedger) -> None:
    """COMMANDS.md § Envelope: a batch import keeps the business times it gives (a historical
    year), but none more than 5 minutes after the server's clock; the lines before are kept."""
    before = ledger.event_count()
    past = command("org.person", "past-at", at="2025-03-01T09:00:00+08:00", person="p-P", name="p", position="leader")
    ahead = command("org.person", "ahead-at", at=from_now(minutes=10), person="p-Q", name="q", position="leader")
    with pytest.raises(Refused) as refused:
        ledger.submit([past, ahead])
    error = refused.value.outcome.error
    assert error is not None and (error.field, error.rule, refused.value.outcome.index) == ("at", "business-time", 1)
    assert "业务时间" in error.message and "5 minutes" in error.message  # Chinese first, English beside
    assert set(ledger.commands(["bad-past-at", "bad-ahead-at"])) == {"bad-past-at"}  # (`command` prefixes ids)
    assert ledger.event_count() == before + 1
    organisation = ledger.organisation()
    assert organisation is not None and "p-Q" not in organisation.people


LIMITS = [
    pytest.param([{**APPEAL, "id": "edge-appeal", "at": "2026-01-21T09:00:00+08:00"}], id="appeal-on-day-30"),
    pytest.param([rating("edge-100", A, "p-L1", "in_charge", period="2025-11", score="100"),
                   rating("edge-0", A, "p-H1", "department_head", period="2025-11", score=0)], id="scores-0-100"),
    pytest.param([command("measurement.record", "edge-rate", appraisal=D01, input="zombie_cleanup_rate",
                          value="100")], id="percentage-100"),
    pytest.param([APPEAL, command("appeal.decide", "edge-amend", appeal="we-appeal", outcome="amended",
                                  points="-20", reason="same points")], id="amended-as-severe"),
    pytest.param([rating("edge-6-places", A, "p-L1", "in_charge", period="2025-10", score="85.123456"),
                  rating("edge-json-float", A, "p-H1", "department_head", period="2025-10", score=85.5),
                  rating("edge-minus-zero", A, "p-L1", "in_charge", period="2025-09", score="-0"),
                  command("occurrence.record", "edge-count-text", appraisal=A, item="absence", count="2")],
                 id="number-grammar-edges"),
    pytest.param([command("org.person", "edge-ahead", at=from_now(minutes=4), person="p-Z", name="z",
                          position="leader")], id="at-4-minutes-ahead"),
]


@pytest.mark.parametrize("commands", LIMITS)
def test_values_on_the_limit_are_accepted(ledger: AppraisalLedger, commands: list[dict[str, Any]]) -> None:
    ledger.submit([DEDUCTION])
    outcomes = ledger.submit(commands)
    assert all(o.accepted and not o.duplicate for o in outcomes)
    assert set(ledger.commands([c["id"] for c in commands])) == {c["id"] for c in commands}


# --- idempotency: re-sending an accepted command ---------------------------------------------


@pytest.fixture
def recorded(db_url: str) -> Iterator[tuple[AppraisalLedger, list[Any]]]:
    ledger = AppraisalLedger(db_url)
    outcomes = ledger.submit([*build(), DEDUCTION, APPEAL])
    yield ledger, outcomes
    ledger.close()


@pytest.mark.parametrize("index", [0, 1, 9, 13, 31, -2, -1],
                         ids=["scheme", "person", "open", "rating", "occurrence", "deduction", "appeal"])
def test_resending_an_accepted_command_is_a_no_op_with_the_same_answer(
        recorded: tuple[AppraisalLedger, list[Any]], index: int) -> None:
    ledger, outcomes = recorded
    body = [*build(), DEDUCTION, APPEAL][index]
    original = outcomes[index]
    count, results = ledger.event_count(), ledger.results(2025)

    again = ledger.submit([copy.deepcopy(body)])[0]

    assert again.accepted and again.duplicate
    assert again.command_id == body["id"]
    assert again.answer == original.answer
    assert again.answer["command"] == body["id"] and "position" in again.answer
    assert ledger.event_count() == count
    assert ledger.results(2025) == results


def test_resending_the_whole_example_records_nothing(recorded: tuple[AppraisalLedger, list[Any]],
                                                     db_url: str) -> None:
    ledger, outcomes = recorded
    count = ledger.event_count()

    fresh = AppraisalLedger(db_url)  # the answers come from the store, not from this process
    try:
        again = fresh.submit([*build(), DEDUCTION, APPEAL])
    finally:
        fresh.close()

    assert all(o.duplicate for o in again)
    assert [o.answer for o in again] == [o.answer for o in outcomes]
    assert ledger.event_count() == count


def test_a_command_repeated_in_the_same_batch_gets_the_same_answer(db_url: str) -> None:
    ledger = AppraisalLedger(db_url)
    try:
        body = build()[0]
        first, second = ledger.submit([body, copy.deepcopy(body)])
        assert second.duplicate
        assert second.answer == first.answer
    finally:
        ledger.close()


def test_a_reused_id_in_the_same_batch_is_refused(db_url: str) -> None:
    ledger = AppraisalLedger(db_url)
    try:
        first = build()[:2]
        clash = {**first[1], "name": "别人"}
        with pytest.raises(Refused) as refused:
            ledger.submit([*first, clash])
        error = refused.value.outcome.error
        assert error is not None and (error.field, error.rule) == ("id", "idempotency")
        assert set(ledger.commands([c["id"] for c in first])) == {c["id"] for c in first}
    finally:
        ledger.close()
