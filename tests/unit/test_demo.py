"""The demo year generator: deterministic, and every command valid under SCORING.md §5 and §8.

The checks of roles and appeals are written here from the organisation commands themselves,
independently of the generator's own bookkeeping.
"""

import json
import re
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from api.cli.demo import demo_commands, write_jsonl

KNOWN_TYPES = {
    "scheme.publish", "org.department", "org.person", "appraisal.open", "rating.record",
    "measurement.record", "occurrence.record", "adjustment.apply", "veto.impose",
    "appeal.file", "appeal.decide",
}
APPEALABLE = {"occurrence.record", "measurement.record", "adjustment.apply", "veto.impose"}
DEPARTMENT_RATING_LEAVES = {"reform_tasks"}
INDIVIDUAL_RATING_LEAVES = {"business", "innovation"}
LEADERS = 4
CJK = re.compile(r"[\u4e00-\u9fff]")
MONTHS_2025 = [f"2025-{m:02d}" for m in range(1, 13)]


@pytest.fixture(scope="module")
def commands():
    return demo_commands()


@pytest.fixture(scope="module")
def weekly():
    return demo_commands(departments=10, staff_per_department=29, periods="weekly")


class Org:
    """The organisation as the org.* commands describe it."""

    def __init__(self, commands):
        self.departments = {}
        self.people = {}
        for c in commands:
            if c["type"] == "org.department":
                self.departments[c["department"]] = c
            elif c["type"] == "org.person":
                self.people[c["person"]] = c
        self.leaders = {p for p, c in self.people.items() if c["position"] == "leader"}
        self.superiors = {p for p, c in self.people.items() if c["position"] == "superior"}
        self.heads = {c["department"]: p for p, c in self.people.items()
                      if c["position"] == "department_head"}

    def allowed(self, subject, rater, role):
        """May `rater` rate `subject` in `role`? (SCORING.md §5, for the raters of bianban v1)"""
        if subject in self.departments:
            return ((role == "self" and rater == self.heads.get(subject))
                    or (role == "leadership_team" and rater in self.leaders))
        person = self.people[subject]
        in_charge = self.departments[person["department"]]["in_charge"]
        head = self.heads[person["department"]]
        if role == "self":
            return rater == subject
        if person["position"] == "staff":
            return ((role == "in_charge" and rater == in_charge)
                    or (role == "department_head" and rater == head and rater != subject))
        if person["position"] == "department_head":
            return ((role == "superior" and rater in self.superiors)
                    or (role == "in_charge" and rater == in_charge)
                    or (role == "leadership_team" and rater in self.leaders
                        and rater != in_charge))
        return False


def of_type(commands, type_):
    return [c for c in commands if c["type"] == type_]


def subject_of(appraisal):
    return appraisal.split(":", 1)[1]


def when(command):
    return datetime.fromisoformat(command["at"])


def rating_key(c):
    return c["appraisal"], c["leaf"], c["period"], c["rater"]


# -- determinism and envelope ---------------------------------------------------------------

def test_same_seed_gives_the_same_commands(commands):
    assert demo_commands() == commands
    assert demo_commands(seed=7) == demo_commands(seed=7)


def test_another_seed_gives_other_commands(commands):
    assert demo_commands(seed=2026) != commands


def test_every_command_has_a_unique_id_an_actor_and_a_business_time(commands):
    ids = [c["id"] for c in commands]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"demo-2025-\d{6}", i) for i in ids)
    for c in commands:
        assert c["type"] in KNOWN_TYPES
        assert c["actor"]
        assert c["at"].endswith("+08:00")
        assert when(c).utcoffset() == timedelta(hours=8)


def test_business_time_never_decreases_and_stays_in_the_year(commands):
    times = [when(c) for c in commands]
    assert times == sorted(times)
    assert times[0].year == times[-1].year == 2025


def test_no_year_commands(commands):
    assert not [c for c in commands if c["type"].startswith("year.")]


# -- organisation and openings --------------------------------------------------------------

def test_scheme_then_leaders_superior_departments_people_then_openings(commands):
    assert commands[0] == {**commands[0], "type": "scheme.publish", "builtin": "bianban",
                           "actor": "admin"}
    setup = commands[1:]
    types = [c["type"] for c in setup]
    opened_from = types.index("appraisal.open")
    assert set(types[opened_from:opened_from + 6 + 48]) == {"appraisal.open"}
    org = setup[:opened_from]
    assert [c["person"] for c in org[:LEADERS + 1]] == ["p-L1", "p-L2", "p-L3", "p-L4", "p-S1"]
    assert [c["position"] for c in org[:LEADERS + 1]] == ["leader"] * LEADERS + ["superior"]
    assert [c["type"] for c in org[LEADERS + 1:LEADERS + 7]] == ["org.department"] * 6
    assert {c["type"] for c in org[LEADERS + 7:]} == {"org.person"}
    assert all(c["actor"] == "admin" for c in commands[:opened_from + 1 + 6 + 48])


@pytest.mark.parametrize(("departments", "staff"), [(6, 7), (1, 1), (9, 3)])
def test_organisation_matches_the_parameters(departments, staff):
    commands = demo_commands(departments=departments, staff_per_department=staff)
    org = Org(commands)
    assert len(org.departments) == departments
    assert len(org.leaders) == LEADERS
    assert len(org.superiors) == 1
    positions = Counter(c["position"] for c in org.people.values())
    assert positions == {"leader": LEADERS, "superior": 1, "department_head": departments,
                         "staff": departments * staff}
    assert set(org.heads) == set(org.departments)
    for department_id, d in org.departments.items():
        assert re.fullmatch(r"d-\d{2}", department_id)
        assert d["in_charge"] in org.leaders
        assert 4 <= d["approved_posts"] <= 12
        assert CJK.search(d["name"]["zh"]) and d["name"]["en"].isascii()
        members = [p for p, c in org.people.items() if c.get("department") == department_id]
        assert len(members) == staff + 1
    for person_id, p in org.people.items():
        assert CJK.fullmatch(p["name"][0]) and 2 <= len(p["name"]) <= 3
        if p["position"] in ("staff", "department_head"):
            assert re.fullmatch(r"p-\d{3}", person_id)
            assert p["department"] in org.departments
    opened = [c["subject"] for c in of_type(commands, "appraisal.open")]
    assert sorted(opened) == sorted(
        [*org.departments, *(p for p, c in org.people.items()
                             if c["position"] in ("staff", "department_head"))])


def test_in_charge_leaders_are_spread(commands):
    in_charge = Counter(d["in_charge"] for d in Org(commands).departments.values())
    assert set(in_charge) == {"p-L1", "p-L2", "p-L3", "p-L4"}
    assert max(in_charge.values()) - min(in_charge.values()) <= 1


def test_openings_name_the_year_and_scheme(commands):
    for c in of_type(commands, "appraisal.open"):
        assert c["year"] == 2025
        assert c["scheme"] == {"id": "bianban", "version": 1}


def test_every_appraisal_is_opened_before_it_is_used(commands):
    opened = set()
    for c in commands:
        if c["type"] == "appraisal.open":
            opened.add(f"{c['year']}:{c['subject']}")
        elif "appraisal" in c:
            assert c["appraisal"] in opened, c


# -- ratings -----------------------------------------------------------------------------------

def test_every_rating_is_in_a_role_its_rater_may_take(commands, weekly):
    for batch in (commands, weekly):
        org = Org(batch)
        for c in of_type(batch, "rating.record"):
            assert c["actor"] == c["rater"]
            assert org.allowed(subject_of(c["appraisal"]), c["rater"], c["rater_role"]), c


def test_one_role_per_rater_per_subject(commands):
    roles = defaultdict(set)
    for c in of_type(commands, "rating.record"):
        roles[c["appraisal"], c["rater"]].add(c["rater_role"])
    assert all(len(r) == 1 for r in roles.values())


def test_ratings_go_to_the_rating_leaves_of_the_subjects_tree(commands):
    org = Org(commands)
    for c in of_type(commands, "rating.record"):
        expected = (DEPARTMENT_RATING_LEAVES if subject_of(c["appraisal"]) in org.departments
                    else INDIVIDUAL_RATING_LEAVES)
        assert c["leaf"] in expected


def test_scores_are_strings_from_0_to_100_with_at_most_one_decimal(commands):
    scores = [c["score"] for c in of_type(commands, "rating.record")]
    assert all(isinstance(s, str) and re.fullmatch(r"\d{1,3}(\.\d)?", s) for s in scores)
    assert all(0 <= Decimal(s) <= 100 for s in scores)
    assert len(set(scores)) > 200  # spread wide enough to keep totals apart


@pytest.mark.parametrize(("departments", "staff"), [(6, 7), (2, 3)])
def test_ratings_per_period_match_the_parameters(departments, staff):
    commands = demo_commands(departments=departments, staff_per_department=staff)
    distinct = {rating_key(c) for c in of_type(commands, "rating.record")}
    per_period = Counter((leaf, period) for _, leaf, period, _ in distinct)
    # staff: self, in_charge, department_head; heads: self, superior, in_charge, 3 other leaders
    per_person_period = 3 * departments * staff + (3 + LEADERS - 1) * departments
    expected = {("business", m): per_person_period for m in MONTHS_2025}
    expected[("innovation", "2025")] = per_person_period
    expected[("reform_tasks", "2025")] = departments * (1 + LEADERS)  # head + every leader
    assert per_period == expected


def test_a_few_ratings_are_replaced_later_with_another_score_and_a_comment(commands):
    first: dict[tuple, dict] = {}
    replaced = []
    for c in of_type(commands, "rating.record"):
        key = rating_key(c)
        if key in first:
            replaced.append((first[key], c))
        else:
            first[key] = c
    assert 2 <= len(replaced) <= 3
    for original, again in replaced:
        assert again["score"] != original["score"]
        assert again["comment"] and CJK.search(again["comment"])
        assert again["rater_role"] == original["rater_role"]
        assert when(again) > when(original)


def test_weekly_mode_rates_business_per_iso_week_and_innovation_per_month(weekly):
    periods = defaultdict(set)
    for c in of_type(weekly, "rating.record"):
        periods[c["leaf"]].add(c["period"])
    assert periods["business"] == {f"2025-W{w:02d}" for w in range(1, 53)}
    assert periods["innovation"] == set(MONTHS_2025)
    assert periods["reform_tasks"] == set(MONTHS_2025)


def test_weekly_mode_gives_hundreds_of_ratings_per_person(weekly):
    org = Org(weekly)
    assert len(org.people) - LEADERS - 1 == 300
    per_subject = Counter(c["appraisal"] for c in of_type(weekly, "rating.record")
                          if subject_of(c["appraisal"]) in org.people)
    weeks_and_months = 52 + 12
    for appraisal, count in per_subject.items():
        raters = 3 if org.people[subject_of(appraisal)]["position"] == "staff" else 6
        assert count - raters * weeks_and_months in (0, 1, 2, 3)  # plus any replaced rating
    assert len(per_subject) == 300
    assert 150 <= sum(per_subject.values()) / len(per_subject) <= 400


def test_weekly_mode_follows_the_iso_weeks_of_the_year():
    commands = demo_commands(2026, departments=1, staff_per_department=1, periods="weekly")
    weeks = {c["period"] for c in of_type(commands, "rating.record") if c["leaf"] == "business"}
    assert weeks == {f"2026-W{w:02d}" for w in range(1, 54)}  # 2026 has 53 ISO weeks
    assert {when(c).year for c in commands} == {2026}


def test_the_year_parameter_names_appraisals_periods_and_times():
    commands = demo_commands(2024, departments=2, staff_per_department=2)
    assert all(c["id"].startswith("demo-2024-") for c in commands)
    assert {c["appraisal"][:5] for c in commands if "appraisal" in c} == {"2024:"}
    periods = {c["period"] for c in of_type(commands, "rating.record")}
    assert periods == {f"2024-{m:02d}" for m in range(1, 13)} | {"2024"}
    assert {when(c).year for c in commands} == {2024}


# -- measurements and counted items -------------------------------------------------------------

def test_measurements_cover_every_subject_within_their_ranges(commands):
    org = Org(commands)
    values: defaultdict[str, dict[str, Decimal]] = defaultdict(dict)
    for c in of_type(commands, "measurement.record"):
        assert c["actor"] == "hr-office" and CJK.search(c["evidence"])
        assert isinstance(c["value"], str)
        values[subject_of(c["appraisal"])][c["input"]] = Decimal(c["value"])
    for department in org.departments:
        assert 88 <= values[department]["function_implementation_rate"] <= 100
        assert 70 <= values[department]["zombie_cleanup_rate"] <= 100
    appraised = [p for p, c in org.people.items() if c["position"] in ("staff", "department_head")]
    for person in appraised:
        total, errors = values[person]["review_total"], values[person]["review_errors"]
        assert 0 <= total <= 400 and total == total.to_integral_value()
        assert 0 <= errors <= 8 and errors == errors.to_integral_value()
    assert len(values) == len(org.departments) + len(appraised)


def test_counted_items_are_spread_as_a_real_year_would_have_them(commands):
    org = Org(commands)
    appraised = {p for p, c in org.people.items() if c["position"] in ("staff", "department_head")}
    subjects = defaultdict(set)
    for c in of_type(commands, "occurrence.record"):
        assert c["actor"] == "hr-office" and CJK.search(c["evidence"])
        assert c["count"] >= 1
        subjects[c["item"]].add(subject_of(c["appraisal"]))
    assert set(subjects) == {"valid_complaint", "absence", "report_adopted_provincial",
                             "innovation_adopted"}
    assert subjects["valid_complaint"] < set(org.departments)
    for item in ("absence", "report_adopted_provincial", "innovation_adopted"):
        assert subjects[item] <= appraised
    assert 0 < len(subjects["absence"]) < len(appraised) / 2
    assert 0 < len(subjects["innovation_adopted"]) < len(appraised) / 2
    without_report = appraised - subjects["report_adopted_provincial"]
    assert 0 < len(without_report) <= len(appraised) * 0.2  # the -10 penalty hits only a few
    counts = Counter(c["count"] for c in of_type(commands, "occurrence.record"))
    assert counts[1] > 0.9 * sum(counts.values())


# -- deduction, veto and appeals ----------------------------------------------------------------

def test_one_deduction_and_one_veto_on_different_people(commands):
    org = Org(commands)
    (adjustment,) = of_type(commands, "adjustment.apply")
    (veto,) = of_type(commands, "veto.impose")
    assert adjustment["item"] == "over_quota_hiring" and adjustment["actor"] == "hr-office"
    assert veto["reason"] == "data_falsification" and veto["actor"] == "discipline-office"
    assert subject_of(adjustment["appraisal"]) in org.people
    assert org.people[subject_of(veto["appraisal"])]["position"] == "staff"
    assert subject_of(adjustment["appraisal"]) != subject_of(veto["appraisal"])
    assert CJK.search(adjustment["evidence"]) and CJK.search(veto["evidence"])


@pytest.mark.parametrize("seed", [2025, 1, 99])
def test_appeals_are_filed_by_the_subject_in_time_and_decided_by_someone_else(seed):
    commands = demo_commands(seed=seed)
    earlier: dict[str, dict] = {}
    filed: dict[str, dict] = {}
    decided: dict[tuple, str] = {}
    for c in commands:
        if c["type"] == "appeal.file":
            target = earlier[c["target"]]  # an existing, earlier command
            assert target["type"] in APPEALABLE
            assert target["appraisal"] == c["appraisal"]
            assert c["actor"] == subject_of(c["appraisal"])
            assert timedelta(0) < when(c) - when(target) <= timedelta(days=30)
            assert CJK.search(c["grounds"])
            filed[c["id"]] = c
        elif c["type"] == "appeal.decide":
            appeal = filed[c["appeal"]]
            item = earlier[appeal["target"]]
            assert c["actor"] != item["actor"]
            assert c["actor"] == "admin-2"
            assert timedelta(0) < when(c) - when(appeal) <= timedelta(days=30)
            assert CJK.search(c["reason"])
            decided[item["type"], item.get("item")] = c["outcome"]
        earlier[c["id"]] = c
    assert len(filed) == 2
    assert decided == {("adjustment.apply", "over_quota_hiring"): "overturned",
                       ("occurrence.record", "absence"): "upheld"}


# -- parameters and output ----------------------------------------------------------------------

@pytest.mark.parametrize("arguments", [{"departments": 0}, {"staff_per_department": 0},
                                       {"periods": "daily"}])
def test_bad_parameters_are_refused(arguments):
    with pytest.raises(ValueError):
        demo_commands(**arguments)


def test_write_jsonl_round_trips(tmp_path, commands):
    path = tmp_path / "demo.jsonl"
    assert write_jsonl(path, commands) == len(commands)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == commands
    assert lines[0] == json.dumps(commands[0], ensure_ascii=False, separators=(",", ":"))
    assert any(CJK.search(line) for line in lines)  # Chinese kept as is, not \u-escaped
