"""The scoring engine: a pure function from (scheme version, recorded facts) to results with a trace.

SCORING.md §4–6 and §12: leaf bases, rules, rating composites, survey rates, trees, department and
person totals, adjustments and vetoes. Grading of the year (§7) is in domain/grading.py. Every value is an
exact `Fraction`; rounding happens only where a figure is shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from itertools import groupby
from math import lcm
from operator import attrgetter
from typing import Any

from domain import facts as f
from domain.numbers import ZERO, decimal_fraction, exact, exact_text, shown
from domain.scheme import (
    ExcessOverAllowanceRule,
    FullBase,
    MinimumCountRule,
    Node,
    PerOccurrenceRule,
    ProportionalBase,
    RatingBase,
    Scheme,
    ShortfallRule,
)
from domain.trace import Figure, RuleRef, Struck, label

HUNDRED = Fraction(100)
_LEAF = attrgetter("leaf")
_REF = attrgetter("ref")


@dataclass(slots=True)
class SubjectScore:
    """One appraisal's figures before grading."""

    key: str
    subject: f.Subject
    scheme: str
    score: Fraction  # D for a department, I for a person
    leaves: dict[str, Fraction]
    incomplete: list[str]  # why, empty when complete
    trace: list[Figure]
    struck: list[Struck]
    not_applicable: list[Struck]
    # persons only
    department_score: Fraction | None = None
    adjustments: Fraction = ZERO
    total: Fraction | None = None
    vetoed: bool = False
    vetoes: list[str] = field(default_factory=list)
    # persons: their individual tree as scored before the department's score was composed in (a
    # function of the scheme and their facts alone), to compose again with another department score
    individual_part: IndividualPart | None = field(default=None, repr=False, compare=False)
    # What is derived from its figures for showing and ordering (`shown_texts`, `order_key`), made
    # once: a score is never changed once made, and a year is exported and graded again after
    # every batch of commands with most of its scores as they were.
    derived: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_incomplete(self) -> bool:
        return bool(self.incomplete)

    def shown_texts(self) -> dict[str, Any]:
        """The 2-decimal texts a person sees of the score, its leaves, and (a person's) department
        score, adjustments and total. Shared: copy the leaves before changing them."""
        texts = self.derived.get("shown")
        if texts is None:
            texts = self.derived["shown"] = {
                "score": shown(self.score), "leaves": {leaf: shown(value) for leaf, value in self.leaves.items()},
                "department_score": shown(self.department_score or ZERO), "adjustments": shown(self.adjustments),
                "total": shown(self.total or ZERO)}
        return texts


@dataclass(slots=True, frozen=True)
class IndividualPart:
    """A person's scorer state after their individual tree (SCORING.md §4–5), kept to compose the
    same person again with a new department score (§6) without scoring the tree again."""

    score: Fraction
    leaves: dict[str, Fraction]
    trace: tuple[Figure, ...]
    incomplete: tuple[str, ...]
    not_applicable: tuple[Struck, ...]


def _fact_text(value: Decimal | int) -> str:
    return exact_text(exact(value)) if isinstance(value, Decimal) else str(value)


class _AppraisalScorer:
    """Scores one appraisal's indicator tree under one scheme version."""

    def __init__(self, scheme: Scheme, facts: f.AppraisalFacts, earlier: SubjectScore | None = None) -> None:
        """`earlier`: this appraisal's score under the same scheme before its latest facts: its
        period figures are taken again for the periods whose ratings are the same facts (a
        period figure is a function of the scheme, the subject and those ratings alone)."""
        self.scheme = scheme
        self.facts = facts
        self.kind = facts.kind
        self.tree_name = "department" if self.kind == "department" else "individual"
        self.trace: list[Figure] = []
        self.struck: list[Struck] = []
        self.not_applicable: list[Struck] = []
        self.incomplete: list[str] = []
        self._decisions = self._decisions_by_target()
        self._surveys: dict[str, Figure] = {}  # a survey input's figure, made on its first reading
        self._ratings_by_leaf: dict[str, list[f.Rating]] | None = None
        self._earlier: dict[str, Figure] = (
            {figure.key: figure for figure in earlier.trace if figure.key.startswith("period:")}
            if earlier is not None else {})

    # --- appeals ------------------------------------------------------------------------------

    def _decisions_by_target(self) -> dict[str, f.Decision]:
        by_target: dict[str, f.Decision] = {}
        for appeal_id, decision in self.facts.decisions.items():
            appeal = self.facts.appeals.get(appeal_id)
            if appeal is not None:
                by_target[appeal.target] = decision
        return by_target

    def overturned(self, fact: f.Fact) -> f.Decision | None:
        decision = self._decisions.get(fact.command_id)
        return decision if decision is not None and decision.outcome == "overturned" else None

    def strike_overturned(self, fact: f.Fact, kind: str, into: list[Struck]) -> bool:
        decision = self.overturned(fact)
        if decision is None:
            return False
        into.append(Struck(fact.ref, fact.command_id, kind,
                           f"overturned on appeal {decision.appeal}: {decision.reason}", by=decision.ref))
        return True

    # --- inputs -------------------------------------------------------------------------------

    def input_value(self, name: str, figure: Figure) -> Fraction | None:
        """The value of a named input: None when a required measurement was never recorded."""
        declared = self.scheme.inputs[name]
        if declared.kind == "survey":
            return self.survey_value(name, figure)
        if declared.kind == "count":
            total = 0
            for occurrence in self.facts.occurrences:
                if occurrence.item != name:
                    continue
                if self.strike_overturned(occurrence, "occurrence", figure.struck):
                    continue
                total += occurrence.count
                figure.events.append(occurrence.ref)
            figure.inputs[name] = str(total)
            return Fraction(total)
        latest: f.Measurement | None = None
        for measurement in self.facts.measurements:
            if measurement.input != name:
                continue
            if self.strike_overturned(measurement, "measurement", figure.struck):
                continue
            if latest is not None:
                figure.struck.append(Struck(latest.ref, latest.command_id, "measurement",
                                            "replaced by a later measurement", by=measurement.ref))
            latest = measurement
        if latest is None:
            if declared.required:
                figure.inputs[name] = "missing"
                self.mark_incomplete(f"required measurement {name} not recorded")
                return None
            figure.inputs[name] = "0 (never recorded)"
            return ZERO
        figure.events.append(latest.ref)
        figure.inputs[name] = _fact_text(latest.value)
        return exact(latest.value)

    def survey_value(self, name: str, reader: Figure) -> Fraction | None:
        """A survey input's rate (SCORING.md §12): 100 × Σ(count × weight) / Σ count over the
        rounds that count; None (missing: the appraisal incomplete) below `min_responses`.
        The survey has figures of its own, made once however many leaves read it: one per round
        that counts (`survey-round:<ref>`: its weighted sum, counts per option, recorder, evidence,
        both times) and the survey's (`survey:<input>`: the rate as 100 / responses × each round's
        weighted sum, the total responses, the weighted sum, the rounds struck). The reading figure
        names the survey's figure and the rounds behind it. The decisions where SCORING.md is
        silent are in the README (§ Surveys): an overturned round stops counting, fewer than
        `min_responses` is always missing (whatever `required` says), a round naming an option
        this version has not is not applicable as a whole, an option it lacks counts 0."""
        figure = self._surveys.get(name)
        if figure is None:
            figure = self._surveys[name] = self.survey_figure(name)
        reader.events.extend(figure.events)
        reader.inputs[f"{name}.figure"] = figure.key
        if figure.value is None:
            reader.inputs[name] = "missing"
            return None
        reader.inputs[name] = figure.value
        return figure.value

    def survey_figure(self, name: str) -> Figure:
        declared = self.scheme.inputs[name]
        weights = {option.id: exact(option.weight) for option in declared.options or ()}
        minimum = declared.min_responses or 1
        rule = RuleRef(self.scheme.ref, name, "survey", f"inputs.{name}")
        weight_params: dict[str, Any] = {f"weight.{option}": weight for option, weight in weights.items()}
        figure = Figure(f"survey:{name}", declared.name.model_dump(), None, rule=rule,
                        params={"min_responses": minimum, **weight_params})
        rounds: list[Figure] = []
        for survey in self.facts.surveys:
            if survey.input != name:
                continue
            if self.strike_overturned(survey, "survey", figure.struck):
                continue
            unknown = sorted(option for option in survey.counts if option not in weights)
            if unknown:  # recorded under a version with other options (a replay): it does not count
                self.not_applicable.append(Struck(
                    survey.ref, survey.command_id, "survey",
                    f"option(s) {', '.join(unknown)} of {name} are not in {self.scheme.ref}"))
                continue
            counts = {option: survey.counts.get(option, 0) for option in weights}
            round_figure = Figure(
                f"survey-round:{survey.ref}", label("问卷轮次", "questionnaire round"),
                sum((weights[option] * count for option, count in counts.items()), ZERO),
                rule=RuleRef(self.scheme.ref, name, "survey.round", f"inputs.{name}"), params=weight_params,
                inputs={**{f"count.{option}": count for option, count in counts.items()},
                        "responses": sum(counts.values()), "recorder": survey.actor,
                        "at": survey.at.isoformat(), "recorded_at": survey.recorded_at.isoformat(),
                        **({"evidence": survey.evidence} if survey.evidence else {})},
                events=[survey.ref])
            rounds.append(round_figure)
            self.trace.append(round_figure)
            figure.events.append(survey.ref)
        responses = sum((round_figure.inputs["responses"] for round_figure in rounds), 0)
        weighted = sum((round_figure.value or ZERO for round_figure in rounds), ZERO)
        figure.inputs.update({"rounds": len(rounds), "responses": responses, "weighted": weighted})
        if responses < minimum:
            figure.inputs["rate"] = "missing"
            figure.notes.append(f"{responses} responses, fewer than min_responses {minimum}: the input is "
                                "missing, the appraisal incomplete, and what reads it adjusts nothing")
            self.mark_incomplete(f"survey {name}: {responses} responses, fewer than {minimum}")
        else:
            figure.value = HUNDRED * weighted / responses
            figure.inputs["rate"] = figure.value
            figure.terms = [(round_figure.key, HUNDRED / responses) for round_figure in rounds]
        self.trace.append(figure)
        return figure

    def mark_incomplete(self, reason: str) -> None:
        if reason not in self.incomplete:
            self.incomplete.append(reason)

    # --- the tree -----------------------------------------------------------------------------

    def score(self) -> tuple[Fraction, dict[str, Fraction]]:
        leaves: dict[str, Fraction] = {}
        nodes = self.scheme.tree(self.tree_name)
        values = [self.node(node, f"{self.tree_name}[{index}]", leaves) for index, node in enumerate(nodes)]
        total = sum(values, ZERO)
        name = (label("部门得分", "department score") if self.kind == "department"
                else label("个人得分", "individual score"))
        self.trace.append(Figure(
            key=self.tree_name, label=name, value=total,
            rule=RuleRef(self.scheme.ref, self.tree_name, "sum", self.tree_name),
            terms=[(f"node:{node.id}", Fraction(1)) for node in nodes],
        ))
        self.check_not_applicable()
        return total, leaves

    def node(self, node: Node, path: str, leaves: dict[str, Fraction]) -> Fraction:
        if node.children is None:
            value = self.leaf(node, path)
            leaves[node.id] = value
            return value
        values = [self.node(child, f"{path}.children[{index}]", leaves)
                  for index, child in enumerate(node.children)]
        value = sum(values, ZERO)
        self.trace.append(Figure(
            key=f"node:{node.id}", label=node.name.model_dump(), value=value,
            rule=RuleRef(self.scheme.ref, node.id, "sum", path),
            params={"points": node.points},
            terms=[(f"node:{child.id}", Fraction(1)) for child in node.children],
        ))
        return value

    def leaf(self, node: Node, path: str) -> Fraction:
        points = exact(node.points)
        base_figure = self.base(node, path, points)
        rule_figures = [self.rule(node, rule, f"{path}.rules[{index}]")
                        for index, rule in enumerate(node.rules)]
        raw = (base_figure.value or ZERO) + sum((fig.value or ZERO for fig in rule_figures), ZERO)
        value = min(max(raw, ZERO), points)
        notes = []
        if raw != value:
            notes.append(f"clamped to {'0' if raw < 0 else exact_text(points)} "
                         f"(base + adjustments = {exact_text(raw)})")
        self.trace.append(Figure(
            key=f"node:{node.id}", label=node.name.model_dump(), value=value,
            rule=RuleRef(self.scheme.ref, node.id, "leaf", path),
            params={"points": points},
            terms=[(base_figure.key, Fraction(1))] + [(fig.key, Fraction(1)) for fig in rule_figures],
            bounds=(ZERO, points), notes=notes,
        ))
        return value

    def base(self, node: Node, path: str, points: Fraction) -> Figure:
        base = node.base
        key = f"base:{node.id}"
        if isinstance(base, FullBase) or base is None:
            figure = Figure(key, label("基础分(满分)", "base: full points"), points,
                            rule=RuleRef(self.scheme.ref, node.id, "base.full", f"{path}.base"),
                            params={"points": points})
        elif isinstance(base, ProportionalBase):
            figure = Figure(key, label("基础分(按比例)", "base: proportional"), None,
                            rule=RuleRef(self.scheme.ref, node.id, "base.proportional", f"{path}.base"),
                            params={"points": points, "input": base.input,
                                    "target": base.target})
            value = self.input_value(base.input, figure)
            target = exact(base.target)
            figure.value = ZERO if value is None else points * min(value, target) / target
            if value is not None and self.scheme.inputs[base.input].kind == "survey":
                # points / target × rate, at most the points: the property tests read it from the trace
                figure.terms = [(f"survey:{base.input}", points / target)]
                figure.bounds = (ZERO, points)
        else:
            assert isinstance(base, RatingBase)
            figure = self.rating_base(node, path, points)
        self.trace.append(figure)
        return figure

    # --- ratings (SCORING.md §5) --------------------------------------------------------------

    def rating_base(self, node: Node, path: str, points: Fraction) -> Figure:
        raters = self.scheme.rater_weights(self.kind, self.facts.subject.position)
        self_share = exact(raters.self_share)
        weights = {role: exact(weight) for role, weight in raters.others.items()}
        figure = Figure(f"base:{node.id}", label("基础分(评分)", "base: rating"), None,
                        rule=RuleRef(self.scheme.ref, node.id, "base.rating", f"{path}.base"),
                        params={"points": points, "self": self_share,
                                **{f"others.{role}": w for role, w in weights.items()}})
        ratings = self.ratings_by_leaf.get(node.id, ())
        # The usual case first: one rating per rater and period, every role weighted (no loop in Python).
        latest = {(rating.rater, rating.period): rating for rating in ratings}
        every_rating_counts = (len(latest) == len(ratings)
                               and all(role == "self" or role in weights
                                       for role in {rating.rater_role for rating in ratings}))
        if not every_rating_counts:
            latest = {}
            for rating in ratings:
                if rating.rater_role != "self" and rating.rater_role not in weights:
                    self.not_applicable.append(Struck(
                        rating.ref, rating.command_id, "rating",
                        f"rater role {rating.rater_role} has no weight in {self.scheme.ref}"))
                    continue
                slot = (rating.rater, rating.period)
                previous = latest.get(slot)
                if previous is not None:
                    figure.struck.append(Struck(previous.ref, previous.command_id, "rating",
                                                "replaced by a later rating of the same rater and period",
                                                by=rating.ref))
                latest[slot] = rating
        by_period: dict[str, list[f.Rating]] = {}
        for rating in latest.values():
            members = by_period.get(rating.period)
            if members is None:
                by_period[rating.period] = [rating]
            else:
                members.append(rating)
        mix = _RaterMix(self_share, weights)
        rule = RuleRef(self.scheme.ref, node.id, "rating.composite")  # one for all periods of the leaf
        composites: list[Fraction] = []
        periods: list[str] = []
        for period in sorted(by_period):
            composite = self.period_composite(node, period, by_period[period], mix, rule)
            if composite is not None:
                composites.append(composite)
                periods.append(period)
        if composites:
            # R = mean of the composites; base = points × R / 100 (exact, one normalisation each).
            total, denominator = _sum_exactly(composites)
            r_value = Fraction(total, denominator * len(composites))
            figure.value = Fraction(points.numerator * total,
                                    points.denominator * denominator * len(composites) * 100)
            figure.inputs["R"] = r_value
            weight = Fraction(points.numerator, points.denominator * len(composites) * 100)
            figure.terms = [(_period_names(node.id, period)[0], weight) for period in periods]
        else:
            figure.value = ZERO
            figure.notes.append("no period with ratings by others: the leaf scores 0")
            self.mark_incomplete(f"no usable ratings for {node.id}")
        if every_rating_counts:  # nothing replaced or without weight: every rating is a latest one
            figure.events = list(map(_REF, ratings))
        else:
            figure.events = [r.ref for r in ratings if latest.get((r.rater, r.period)) is r]
        return figure

    @property
    def ratings_by_leaf(self) -> dict[str, list[f.Rating]]:
        """The appraisal's ratings per leaf, in log order (grouped once, not once per leaf)."""
        if self._ratings_by_leaf is None:
            ordered = sorted(self.facts.ratings, key=_LEAF)  # stable: log order within each leaf
            self._ratings_by_leaf = {leaf: list(group) for leaf, group in groupby(ordered, key=_LEAF)}
        return self._ratings_by_leaf

    def period_composite(self, node: Node, period: str, ratings: list[f.Rating], mix: _RaterMix,
                         rule: RuleRef) -> Fraction | None:
        key, name = _period_names(node.id, period)
        refs = list(map(_REF, ratings))
        earlier = self._earlier.get(key)
        if earlier is not None and earlier.events == refs:  # the same ratings: the same figure
            self.trace.append(earlier)
            return earlier.value
        groups: dict[str, list[f.Rating]] = {}
        for rating in ratings:
            members = groups.get(rating.rater_role)
            if members is None:
                groups[rating.rater_role] = [rating]
            else:
                members.append(rating)
        figure = Figure(key, name, None, rule=rule, events=refs)
        inputs = figure.inputs
        means: dict[str, tuple[int, int]] = {}  # role -> its mean as (numerator, denominator)
        roles = tuple(sorted(groups))
        for role in roles:
            members = groups[role]
            means[role], mean = _mean(members)
            # Group means only: an individual rater's score is read from the events, not the trace.
            mean_key, raters_key = _role_keys(role)
            inputs[mean_key] = mean
            inputs[raters_key] = len(members)
        present, missing = mix.present(roles)
        if missing:
            figure.notes.append(missing)
        if not present:
            figure.notes.append("only a self rating: the period is skipped")
            self.trace.append(figure)
            return None
        others_num, others_den = mix.others(present, means)
        others = inputs[_role_keys(present[0])[0]] if len(present) == 1 else Fraction(others_num, others_den)
        inputs["others"] = others
        if "self" in groups:
            composite = mix.composite(means["self"], others_num, others_den)
            figure.params["self"] = mix.self_share
        else:
            composite = others
            figure.notes.append("no self rating: the composite is the others' score")
        figure.value = composite
        self.trace.append(figure)
        return composite

    # --- rules --------------------------------------------------------------------------------

    def rule(self, node: Node, rule: Any, path: str) -> Figure:
        ref = RuleRef(self.scheme.ref, rule.id, rule.type, path)
        figure = Figure(f"rule:{rule.id}", label(*_RULE_LABELS[rule.type]), ZERO, rule=ref)
        if isinstance(rule, ShortfallRule):
            target, per_unit = exact(rule.target), exact(rule.points_per_unit)
            figure.params = {"input": rule.input, "target": target,
                             "points_per_unit": per_unit}
            value = self.input_value(rule.input, figure)
            if value is not None:
                figure.value = -per_unit * max(ZERO, target - value)
        elif isinstance(rule, PerOccurrenceRule):
            each = exact(rule.points_each)
            figure.params = {"input": rule.input, "points_each": each}
            count = self.input_value(rule.input, figure)
            if count is not None:
                figure.value = each * count
        elif isinstance(rule, ExcessOverAllowanceRule):
            rate, each = exact(rule.allowance_rate), exact(rule.points_each)
            figure.params = {"input": rule.input, "total": rule.total,
                             "allowance_rate": rate, "points_each": each}
            errors = self.input_value(rule.input, figure)
            total = self.input_value(rule.total, figure)
            if errors is not None and total is not None:
                allowance = _floor(total * rate / HUNDRED)
                figure.inputs["allowance"] = exact_text(Fraction(allowance))
                figure.value = each * max(ZERO, errors - allowance)
        elif isinstance(rule, MinimumCountRule):
            minimum, penalty = exact(rule.minimum), exact(rule.penalty)
            figure.params = {"input": rule.input, "minimum": minimum,
                             "penalty": penalty}
            count = self.input_value(rule.input, figure)
            if count is not None:
                figure.value = penalty if count < minimum else ZERO
        if figure.inputs and "missing" in figure.inputs.values():
            figure.notes.append("a required input is missing: the rule adjusts nothing")
        self.trace.append(figure)
        return figure

    # --- facts this scheme has no place for (replay under another version) --------------------

    def check_not_applicable(self) -> None:
        read = self.scheme.inputs_read(self.tree_name)
        # Checked once per leaf the ratings name, then (only if one is missing) rating by rating in log order.
        missing = {leaf_id for leaf_id in self.ratings_by_leaf
                   if not isinstance(getattr(self.scheme.leaf(self.tree_name, leaf_id), "base", None), RatingBase)}
        if missing:
            for rating in self.facts.ratings:
                if rating.leaf in missing:
                    self.not_applicable.append(Struck(rating.ref, rating.command_id, "rating",
                                                      f"no rating leaf {rating.leaf} in {self.scheme.ref}"))
        for measurement in self.facts.measurements:
            if measurement.input not in read:
                self.not_applicable.append(Struck(measurement.ref, measurement.command_id, "measurement",
                                                  f"input {measurement.input} is not read in {self.scheme.ref}"))
        for occurrence in self.facts.occurrences:
            if occurrence.item not in read:
                self.not_applicable.append(Struck(occurrence.ref, occurrence.command_id, "occurrence",
                                                  f"item {occurrence.item} is not read in {self.scheme.ref}"))
        for survey in self.facts.surveys:
            if survey.input not in read or self.scheme.inputs[survey.input].kind != "survey":
                self.not_applicable.append(Struck(survey.ref, survey.command_id, "survey",
                                                  f"survey {survey.input} is not read in {self.scheme.ref}"))


_RULE_LABELS = {
    "shortfall": ("未达标扣分", "shortfall deduction"),
    "per_occurrence": ("按次计分", "per occurrence"),
    "excess_over_allowance": ("超出容错扣分", "excess over allowance"),
    "minimum_count": ("最低数量", "minimum count"),
}


@lru_cache(maxsize=8192)
def _period_names(leaf: str, period: str) -> tuple[str, dict[str, str]]:
    """The key and label of a period's figure. The same few hundred serve every subject of a year,
    so they are made once and shared (figures are read, never changed): a year's trace holds
    hundreds of thousands of period figures."""
    return f"period:{leaf}:{period}", label(f"评分 {period}", f"ratings {period}")


@lru_cache(maxsize=64)
def _role_keys(role: str) -> tuple[str, str]:
    return f"{role}.mean", f"{role}.raters"


def _mean(ratings: list[f.Rating]) -> tuple[tuple[int, int], Fraction]:
    """A rater group's mean score, as an integer pair for arithmetic and as a Fraction for the trace.
    Scores have a few decimals: their Decimal sum is exact; one Fraction per group, not per rating."""
    if len(ratings) == 1:
        return _score(ratings[0].score)
    numerator, denominator = sum((r.score for r in ratings), Decimal(0)).as_integer_ratio()
    return (numerator, denominator * len(ratings)), Fraction(numerator, denominator * len(ratings))


@lru_cache(maxsize=65536)
def _score(score: Decimal) -> tuple[tuple[int, int], Fraction]:
    """One rating's score as a mean of one. A year holds about a thousand distinct scores
    (0.0 to 100.0) among its hundreds of thousands of ratings: each exact value is made once, and
    shared (a Fraction never changes)."""
    exact_score = decimal_fraction(score)
    return exact_score.as_integer_ratio(), exact_score


def _sum_exactly(values: list[Fraction]) -> tuple[int, int]:
    """Σ values as (numerator, denominator) over the least common denominator: integer arithmetic,
    no normalisation per term (the caller normalises the result once)."""
    total, denominator = 0, 1
    for value in values:
        d = value.denominator
        if d != denominator:
            common = lcm(denominator, d)
            total *= common // denominator
            denominator = common
        total += value.numerator * (denominator // d)
    return total, denominator


class _RaterMix:
    """One leaf's rater weights (SCORING.md §5) as integers over a common denominator, so that a
    period's composite is integer arithmetic normalised once, not a chain of Fraction operations
    (the engine computes one per rater, leaf and period: the bulk of scoring a year)."""

    __slots__ = ("self_share", "weights", "_scale", "_self", "_others", "_role_weights", "_sums", "_present")

    def __init__(self, self_share: Fraction, weights: dict[str, Fraction]) -> None:
        self.self_share = self_share
        self.weights = weights
        scale = lcm(self_share.denominator, *(w.denominator for w in weights.values()))
        self._scale = scale
        self._self = self_share.numerator * (scale // self_share.denominator)  # self share × scale
        self._others = scale - self._self  # (1 − self share) × scale
        self._role_weights = {role: w.numerator * (scale // w.denominator) for role, w in weights.items()}
        self._sums: dict[tuple[str, ...], int] = {}
        self._present: dict[tuple[str, ...], tuple[tuple[str, ...], str | None]] = {}

    def present(self, roles: tuple[str, ...]) -> tuple[tuple[str, ...], str | None]:
        """The weighted roles among those that rated a period (in the scheme's order), and the note
        naming the missing ones (None when none is missing); worked out once per set of roles."""
        found = self._present.get(roles)
        if found is None:
            present = tuple(role for role in self.weights if role in roles)
            missing = sorted(role for role in self.weights if role not in roles)
            note = "missing rater group(s): " + ", ".join(missing) if missing else None
            found = self._present[roles] = (present, note)
        return found

    def others(self, present: tuple[str, ...], means: dict[str, tuple[int, int]]) -> tuple[int, int]:
        """Σ w(role) × mean(role) / Σ w(role) over the roles present, as (numerator, denominator)."""
        role_weights = self._role_weights
        weight_sum = self._sums.get(present)
        if weight_sum is None:
            weight_sum = self._sums[present] = sum(role_weights[role] for role in present)
        numerator, denominator = 0, 1
        for role in present:
            p, q = means[role]
            numerator = numerator * q + role_weights[role] * p * denominator
            denominator *= q
        return numerator, denominator * weight_sum

    def composite(self, self_mean: tuple[int, int], others_num: int, others_den: int) -> Fraction:
        """self share × self + (1 − self share) × others."""
        p, q = self_mean
        return Fraction(self._self * p * others_den + self._others * others_num * q,
                        self._scale * q * others_den)


def _floor(value: Fraction) -> int:
    return value.numerator // value.denominator


# --- subjects --------------------------------------------------------------------------------------


def score_department(scheme: Scheme, facts: f.AppraisalFacts, earlier: SubjectScore | None = None) -> SubjectScore:
    scorer = _AppraisalScorer(scheme, facts, earlier)
    score, leaves = scorer.score()
    return SubjectScore(
        key=facts.key, subject=facts.subject, scheme=scheme.ref, score=score, leaves=leaves,
        incomplete=scorer.incomplete, trace=scorer.trace, struck=_all_struck(scorer),
        not_applicable=scorer.not_applicable,
    )


def score_person(scheme: Scheme, facts: f.AppraisalFacts, department: SubjectScore | None,
                 individual_part: IndividualPart | None = None, earlier: SubjectScore | None = None) -> SubjectScore:
    """A person's score. With `individual_part` (from this person's earlier score under the same
    scheme, their facts unchanged since) the individual tree is taken from it, not scored again:
    only the composition with the department's score (and what follows it) is done again. With
    `earlier` (see `_AppraisalScorer`) unchanged periods keep their figures."""
    scorer = _AppraisalScorer(scheme, facts, earlier)
    if individual_part is None:
        individual, leaves = scorer.score()
        individual_part = IndividualPart(individual, leaves, tuple(scorer.trace), tuple(scorer.incomplete),
                                         tuple(scorer.not_applicable))
    else:
        individual, leaves = individual_part.score, individual_part.leaves
        scorer.trace = list(individual_part.trace)
        scorer.incomplete = list(individual_part.incomplete)
        scorer.not_applicable = list(individual_part.not_applicable)
    position = facts.subject.position or "staff"
    weights = scheme.composition[position]  # type: ignore[index]
    w_dep, w_ind = exact(weights.department), exact(weights.individual)

    dep_figure = Figure("department_score", label("所在部门得分", "department score"), ZERO,
                        rule=RuleRef(scheme.ref, "department", "department_score"))
    if department is None:
        dep_figure.notes.append(f"no appraisal of department {facts.subject.department} this year: counts as 0")
        scorer.mark_incomplete(f"department {facts.subject.department} has no appraisal this year")
    else:
        dep_figure.value = department.score
        dep_figure.events = [department.key]
        dep_figure.inputs = {"department": department.subject.id}
        if department.is_incomplete:
            scorer.mark_incomplete(f"department {department.subject.id} is incomplete")
            dep_figure.notes.append("the department's appraisal is incomplete")
    scorer.trace.append(dep_figure)

    adjustments, adjustment_terms = _adjustments(scorer, scheme, facts)
    raw = w_dep * (dep_figure.value or ZERO) + w_ind * individual + adjustments
    total = max(raw, ZERO)
    total_figure = Figure(
        "total", label("总分", "total"), total,
        rule=RuleRef(scheme.ref, position, "composition", f"composition.{position}"),
        params={"department": w_dep, "individual": w_ind},
        terms=[("department_score", w_dep), ("individual", w_ind)] + adjustment_terms,
        bounds=(ZERO, None),
    )
    if raw < 0:
        total_figure.notes.append(f"floored at 0 (the sum is {exact_text(raw)})")
    scorer.trace.append(total_figure)

    vetoes = _vetoes(scorer, scheme, facts)
    return SubjectScore(
        key=facts.key, subject=facts.subject, scheme=scheme.ref, score=individual, leaves=leaves,
        incomplete=scorer.incomplete, trace=scorer.trace, struck=_all_struck(scorer),
        not_applicable=scorer.not_applicable, department_score=dep_figure.value,
        adjustments=adjustments, total=total, vetoed=bool(vetoes), vetoes=vetoes,
        individual_part=individual_part,
    )


def _adjustments(scorer: _AppraisalScorer, scheme: Scheme,
                 facts: f.AppraisalFacts) -> tuple[Fraction, list[tuple[str, Fraction]]]:
    total = ZERO
    terms: list[tuple[str, Fraction]] = []
    for adjustment in facts.adjustments:
        item = scheme.adjustments.get(adjustment.item)
        key = f"adjustment:{adjustment.command_id}"
        if item is None:
            scorer.not_applicable.append(Struck(adjustment.ref, adjustment.command_id, "adjustment",
                                                f"item {adjustment.item} is not in {scheme.ref}'s catalogue"))
            continue
        figure = Figure(key, item.name.model_dump(), None,
                        rule=RuleRef(scheme.ref, adjustment.item, "adjustment",
                                     f"adjustments.{adjustment.item}"),
                        params={"points": item.points}, events=[adjustment.ref])
        if adjustment.evidence:
            figure.inputs["evidence"] = adjustment.evidence
        decision = scorer._decisions.get(adjustment.command_id)
        if decision is not None and decision.outcome == "overturned":
            figure.value = ZERO
            figure.struck.append(Struck(adjustment.ref, adjustment.command_id, "adjustment",
                                        f"overturned on appeal {decision.appeal}: {decision.reason}",
                                        by=decision.ref))
        elif decision is not None and decision.outcome == "amended" and decision.points is not None:
            figure.value = exact(decision.points)
            figure.events.append(decision.ref)
            figure.notes.append(f"amended on appeal {decision.appeal} from {exact_text(exact(item.points))} "
                                f"to {exact_text(exact(decision.points))}: {decision.reason}")
        else:
            figure.value = exact(item.points)
            if decision is not None:
                figure.events.append(decision.ref)
                figure.notes.append(f"appeal {decision.appeal} {decision.outcome}: {decision.reason}")
        scorer.trace.append(figure)
        total += figure.value
        terms.append((key, Fraction(1)))
    return total, terms


def _vetoes(scorer: _AppraisalScorer, scheme: Scheme, facts: f.AppraisalFacts) -> list[str]:
    standing: list[str] = []
    for veto in facts.vetoes:
        if veto.reason not in scheme.vetoes:
            scorer.not_applicable.append(Struck(veto.ref, veto.command_id, "veto",
                                                f"reason {veto.reason} is not in {scheme.ref}'s catalogue"))
            continue
        figure = Figure(f"veto:{veto.command_id}", scheme.vetoes[veto.reason].name.model_dump(), None,
                        rule=RuleRef(scheme.ref, veto.reason, "veto", f"vetoes.{veto.reason}"),
                        events=[veto.ref])
        if scorer.strike_overturned(veto, "veto", figure.struck):
            figure.notes.append("lifted on appeal")
        else:
            figure.notes.append("一票否决 veto: grade D and tier 3 regardless of score")
            standing.append(veto.reason)
        scorer.trace.append(figure)
    return standing


def _all_struck(scorer: _AppraisalScorer) -> list[Struck]:
    seen: dict[str, Struck] = {}
    for figure in scorer.trace:
        for item in figure.struck:
            seen.setdefault(item.ref, item)
    return sorted(seen.values(), key=lambda s: f.ref_order(s.ref))
