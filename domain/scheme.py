"""Scheme documents: the rules of an appraisal year as versioned, validated data (SCORING.md §4).

A scheme holds every weight, threshold and point value; code holds only the rule *types*.
`parse_scheme` turns a document (as parsed JSON) into a `Scheme` or raises `InvalidDocument`
listing each broken invariant with its path (`individual[0].rules[1].points_each: ...`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction
from functools import cached_property
from importlib import resources
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, ValidationError

from domain.errors import InvalidDocument
from domain.numbers import (
    NUMBER_FORMAT,
    RECORDED,
    Count,
    DecimalNumber,
    decimal_fraction,
    decimal_text,
)

DecimalText = Annotated[DecimalNumber, PlainSerializer(decimal_text, return_type=str, when_used="json")]

PERSON_POSITIONS = ("staff", "department_head")
"""Positions that are appraised; leaders and superiors only rate (SCORING.md §2)."""
RATER_SUBJECTS = ("department", "department_head", "staff")
OTHER_ROLES = {
    "department": {"superior", "in_charge", "leadership_team"},
    "department_head": {"superior", "in_charge", "leadership_team"},
    "staff": {"superior", "in_charge", "leadership_team", "department_head"},
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Names(_Strict):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def label(self) -> str:
        return f"{self.zh} {self.en}"


class Weights(_Strict):
    department: DecimalText
    individual: DecimalText


class RaterWeights(_Strict):
    self_share: DecimalText = Field(alias="self")
    others: dict[str, DecimalText]

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SurveyOption(_Strict):
    """One answer of a questionnaire (SCORING.md §12) and the weight its responses carry."""

    id: str = Field(min_length=1)
    name: Names
    weight: DecimalText


class Input(_Strict):
    kind: Literal["measurement", "count", "survey"]
    unit: str | None = None
    required: bool = False
    name: Names
    # surveys only (SCORING.md §12): the options with their weights, the fewest responses that count
    options: list[SurveyOption] | None = None
    min_responses: Count | None = None


class FullBase(_Strict):
    type: Literal["full"]


class RatingBase(_Strict):
    type: Literal["rating"]


class ProportionalBase(_Strict):
    type: Literal["proportional"]
    input: str
    target: DecimalText


Base = Annotated[FullBase | RatingBase | ProportionalBase, Field(discriminator="type")]


class ShortfallRule(_Strict):
    id: str
    type: Literal["shortfall"]
    input: str
    target: DecimalText
    points_per_unit: DecimalText


class PerOccurrenceRule(_Strict):
    id: str
    type: Literal["per_occurrence"]
    input: str
    points_each: DecimalText


class ExcessOverAllowanceRule(_Strict):
    id: str
    type: Literal["excess_over_allowance"]
    input: str
    total: str
    allowance_rate: DecimalText
    points_each: DecimalText


class MinimumCountRule(_Strict):
    id: str
    type: Literal["minimum_count"]
    input: str
    minimum: DecimalText
    penalty: DecimalText


Rule = Annotated[
    ShortfallRule | PerOccurrenceRule | ExcessOverAllowanceRule | MinimumCountRule,
    Field(discriminator="type"),
]


class Node(_Strict):
    id: str = Field(min_length=1)
    name: Names
    points: DecimalText
    children: list[Node] | None = None
    base: Base | None = None
    rules: list[Rule] = Field(default_factory=list)

    @property
    def is_leaf(self) -> bool:
        return self.children is None

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children or ():
            yield from child.walk()

    def leaves(self) -> Iterator[Node]:
        return (node for node in self.walk() if node.is_leaf)

    def inputs_read(self) -> set[str]:
        names: set[str] = set()
        for leaf in self.leaves():
            if isinstance(leaf.base, ProportionalBase):
                names.add(leaf.base.input)
            for rule in leaf.rules:
                names.add(rule.input)
                if isinstance(rule, ExcessOverAllowanceRule):
                    names.add(rule.total)
        return names


class Adjustment(_Strict):
    points: DecimalText
    name: Names


class Veto(_Strict):
    name: Names


class Tier(_Strict):
    id: Count
    share: DecimalText | None = None
    coefficient: DecimalText


class Grade(_Strict):
    id: str = Field(min_length=1)
    share: DecimalText | None = None


class Grading(_Strict):
    share_rounding: Literal["floor"]
    tiers: list[Tier]
    grades: list[Grade]


class Scheme(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    version: Count = Field(ge=1)
    name: Names
    supersedes: Count | None = None
    reason: str | None = None
    composition: dict[Literal["staff", "department_head"], Weights]
    raters: dict[Literal["department", "department_head", "staff"], RaterWeights]
    inputs: dict[str, Input]
    department: list[Node]
    individual: list[Node]
    adjustments: dict[str, Adjustment]
    vetoes: dict[str, Veto]
    grading: Grading
    appeal_window_days: Count = Field(ge=1)
    publicity_working_days: Count = Field(ge=1)

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    def tree(self, kind: str) -> list[Node]:
        return self.department if kind == "department" else self.individual

    def leaves(self, kind: str) -> list[Node]:
        return list(self._leaf_index["department" if kind == "department" else "individual"].values())

    def leaf(self, kind: str, leaf_id: str) -> Node | None:
        return self._leaf_index["department" if kind == "department" else "individual"].get(leaf_id)

    def inputs_read(self, kind: str) -> set[str]:
        return self._inputs_read["department" if kind == "department" else "individual"]

    @cached_property
    def _leaf_index(self) -> dict[str, dict[str, Node]]:
        return {tree: {leaf.id: leaf for node in self.tree(tree) for leaf in node.leaves()}
                for tree in ("department", "individual")}

    @cached_property
    def _inputs_read(self) -> dict[str, set[str]]:
        return {tree: set().union(*(node.inputs_read() for node in self.tree(tree)))
                for tree in ("department", "individual")}

    def rater_weights(self, kind: str, position: str | None) -> RaterWeights:
        """The rater weights of a subject: a department's, or a person's by position."""
        key = "department" if kind == "department" else position
        return self.raters[key]  # type: ignore[index]

    def document(self) -> dict[str, Any]:
        """The canonical JSON document (decimals as strings), as stored and hashed."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if part == "[key]":
            continue  # pydantic's marker for an invalid mapping key: the key itself precedes it
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in ("full", "rating", "proportional", "shortfall", "per_occurrence",
                      "excess_over_allowance", "minimum_count"):
            continue  # pydantic's name for the union member: not part of the document's path
        else:
            text += f".{part}" if text else str(part)
    return text or "(document)"


def parse_scheme(document: Any, *, recorded: bool = False) -> Scheme:
    """Validate a scheme document; raise `InvalidDocument` naming every offending path. A number
    outside the grammar of domain/numbers.py is refused with the rule `number-format` (those
    problems come first, the first one names the field). `recorded`: the document of a version
    already recorded, read again: its numbers are taken as they were accepted then."""
    try:
        scheme = Scheme.model_validate(document, context={RECORDED: True} if recorded else None)
    except ValidationError as exc:
        errors = sorted(exc.errors(), key=lambda err: err["type"] != NUMBER_FORMAT)  # stable
        problems = [(_path(err["loc"]), err["msg"]) for err in errors]
        rule = "number-format" if errors[0]["type"] == NUMBER_FORMAT else "scheme-invariants"
        raise InvalidDocument(problems, rule=rule) from None
    problems = list(_invariant_problems(scheme))
    if problems:
        raise InvalidDocument(problems)
    return scheme


def _invariant_problems(scheme: Scheme) -> Iterator[tuple[str, str]]:
    one = Decimal(1)
    for position in PERSON_POSITIONS:
        if position not in scheme.composition:
            yield f"composition.{position}", "missing: every appraised position needs its weights"
    for position, weights in scheme.composition.items():
        for part in ("department", "individual"):
            value = getattr(weights, part)
            if not Decimal(0) <= value <= one:
                yield f"composition.{position}.{part}", f"weight {value} must lie between 0 and 1"
        total = weights.department + weights.individual
        if total != one:
            yield f"composition.{position}", f"weights must sum to 1 (they sum to {total})"

    for subject in RATER_SUBJECTS:
        if subject not in scheme.raters:
            yield f"raters.{subject}", "missing: every appraised kind needs rater weights"
    for subject, raters in scheme.raters.items():
        if not Decimal(0) <= raters.self_share < one:
            yield f"raters.{subject}.self", "the self share must be at least 0 and below 1"
        if not raters.others:
            yield f"raters.{subject}.others", "at least one other rater role is needed"
        for role, weight in raters.others.items():
            if role not in OTHER_ROLES[subject]:
                allowed = ", ".join(sorted(OTHER_ROLES[subject]))
                yield f"raters.{subject}.others.{role}", f"unknown rater role for {subject} (allowed: {allowed})"
            if weight <= 0:
                yield f"raters.{subject}.others.{role}", f"weight {weight} must be above 0"
        total = sum(raters.others.values(), Decimal(0))
        if raters.others and total != one:
            yield f"raters.{subject}.others", f"weights must sum to 1 (they sum to {total})"

    for name, declared in scheme.inputs.items():
        yield from _survey_problems(name, declared)

    seen_nodes: dict[str, str] = {}
    seen_rules: dict[str, str] = {}
    for tree in ("department", "individual"):
        nodes = scheme.tree(tree)
        if not nodes:
            yield tree, "the indicator tree is empty"
        total = sum((node.points for node in nodes), Decimal(0))
        if nodes and total != 100:
            yield tree, f"top-level points must sum to 100 (they sum to {total})"
        for index, node in enumerate(nodes):
            yield from _node_problems(scheme, node, f"{tree}[{index}]", seen_nodes, seen_rules)

    for item, adjustment in scheme.adjustments.items():
        if adjustment.points == 0:
            yield f"adjustments.{item}.points", "an adjustment must move the total (points is 0)"

    for part in ("tiers", "grades"):
        entries = getattr(scheme.grading, part)
        path = f"grading.{part}"
        if len(entries) < 2:
            yield path, "at least two entries are needed"
        ids = [entry.id for entry in entries]
        for index, entry_id in enumerate(ids):
            if ids.index(entry_id) != index:
                yield f"{path}[{index}].id", f"duplicate id {entry_id!r}"
        rest = [index for index, entry in enumerate(entries) if entry.share is None]
        if len(rest) != 1:
            yield path, f"exactly one entry must have no share (it takes the rest); found {len(rest)}"
        shares = [entry.share for entry in entries if entry.share is not None]
        for index, entry in enumerate(entries):
            if entry.share is not None and not Decimal(0) < entry.share < one:
                yield f"{path}[{index}].share", f"share {entry.share} must lie between 0 and 1"
        if sum(shares, Decimal(0)) > one:
            yield path, "shares must not sum to more than 1"
    for index, tier in enumerate(scheme.grading.tiers):
        if tier.coefficient <= 0:
            yield f"grading.tiers[{index}].coefficient", "a coefficient must be above 0"

    if scheme.supersedes is not None:
        if scheme.supersedes >= scheme.version:
            yield "supersedes", f"must name an earlier version than {scheme.version}"
        if not scheme.reason:
            yield "reason", "a version that supersedes another must say why"
    elif scheme.version > 1:
        yield "supersedes", f"version {scheme.version} must name the version it supersedes"


def _node_problems(
    scheme: Scheme, node: Node, path: str, seen_nodes: dict[str, str], seen_rules: dict[str, str]
) -> Iterator[tuple[str, str]]:
    if node.id in seen_nodes:
        yield f"{path}.id", f"duplicate node id {node.id!r} (also at {seen_nodes[node.id]})"
    seen_nodes.setdefault(node.id, path)
    if node.points <= 0:
        yield f"{path}.points", f"points {node.points} must be above 0"
    if node.children is not None:
        if node.base is not None or node.rules:
            yield path, "a node with children takes its score from them: no base or rules"
        if not node.children:
            yield f"{path}.children", "a parent node needs at least one child"
        total = sum((child.points for child in node.children), Decimal(0))
        if node.children and total != node.points:
            yield f"{path}.points", f"{node.points} differs from the sum of its children's points ({total})"
        for index, child in enumerate(node.children):
            yield from _node_problems(scheme, child, f"{path}.children[{index}]", seen_nodes, seen_rules)
        return
    if node.base is None:
        yield f"{path}.base", "a leaf needs a base (full, rating or proportional)"
    elif isinstance(node.base, ProportionalBase):
        yield from _input_problems(scheme, node.base.input, f"{path}.base.input", RATE_KINDS)
        if node.base.target <= 0:
            yield f"{path}.base.target", "the target must be above 0"
    for index, rule in enumerate(node.rules):
        rule_path = f"{path}.rules[{index}]"
        if rule.id in seen_rules:
            yield f"{rule_path}.id", f"duplicate rule id {rule.id!r} (also at {seen_rules[rule.id]})"
        seen_rules.setdefault(rule.id, rule_path)
        if isinstance(rule, ShortfallRule):
            yield from _input_problems(scheme, rule.input, f"{rule_path}.input", RATE_KINDS)
            if rule.points_per_unit < 0:
                yield f"{rule_path}.points_per_unit", "must not be negative (the shortfall deducts it)"
        elif isinstance(rule, PerOccurrenceRule):
            yield from _input_problems(scheme, rule.input, f"{rule_path}.input", ("count",))
            if rule.points_each == 0:
                yield f"{rule_path}.points_each", "must not be 0"
        elif isinstance(rule, ExcessOverAllowanceRule):
            yield from _input_problems(scheme, rule.input, f"{rule_path}.input", NUMBER_KINDS)
            yield from _input_problems(scheme, rule.total, f"{rule_path}.total", NUMBER_KINDS)
            if not Decimal(0) <= rule.allowance_rate <= 100:
                yield f"{rule_path}.allowance_rate", "must lie between 0 and 100 (a percentage)"
            if rule.points_each > 0:
                yield f"{rule_path}.points_each", "must be negative or 0 (errors deduct)"
        elif isinstance(rule, MinimumCountRule):
            yield from _input_problems(scheme, rule.input, f"{rule_path}.input", NUMBER_KINDS)
            if rule.minimum < 0:
                yield f"{rule_path}.minimum", "must not be negative"
            if rule.penalty > 0:
                yield f"{rule_path}.penalty", "must be negative or 0 (a penalty deducts)"


RATE_KINDS = ("measurement", "survey")
"""Inputs read as a rate (`proportional`, `shortfall`): a measured value or a survey's rate (§12)."""
NUMBER_KINDS = ("measurement", "count")
"""Inputs read as numbers of cases (`excess_over_allowance`, `minimum_count`): never a survey's rate."""


def _input_problems(scheme: Scheme, name: str, path: str, kinds: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    declared = scheme.inputs.get(name)
    if declared is None:
        yield path, f"unknown input {name!r} (not declared in inputs)"
    elif declared.kind not in kinds:
        yield path, f"input {name!r} is a {declared.kind}, this needs a {' or a '.join(kinds)}"


def _survey_problems(name: str, declared: Input) -> Iterator[tuple[str, str]]:
    """SCORING.md §12: option ids unique, weights in [0, 1] with at least one 1, `min_responses` ≥ 1.
    Other kinds carry neither options nor `min_responses`."""
    path = f"inputs.{name}"
    if declared.kind != "survey":
        for part in ("options", "min_responses"):
            if getattr(declared, part) is not None:
                yield f"{path}.{part}", f"only a survey input has {part} (this is a {declared.kind})"
        return
    if declared.min_responses is None:
        yield f"{path}.min_responses", "required for a survey: the fewest responses that count"
    elif declared.min_responses < 1:
        yield f"{path}.min_responses", f"{declared.min_responses} must be at least 1"
    if not declared.options:
        yield f"{path}.options", "a survey needs at least one option"
        return
    seen: dict[str, int] = {}
    for index, option in enumerate(declared.options):
        if option.id in seen:
            yield f"{path}.options[{index}].id", f"duplicate option id {option.id!r} (also at options[{seen[option.id]}])"
        seen.setdefault(option.id, index)
        if not Decimal(0) <= option.weight <= Decimal(1):
            yield f"{path}.options[{index}].weight", f"weight {option.weight} must lie between 0 and 1"
    if all(option.weight != 1 for option in declared.options):
        yield f"{path}.options", "at least one option must weigh exactly 1 (the full answer)"


def builtin_document(name: str) -> dict[str, Any]:
    """The shipped default scheme document (`bianban` version 1)."""
    if name != "bianban":
        raise KeyError(name)
    text = resources.files("domain").joinpath("schemes/bianban-v1.json").read_text("utf-8")
    return json.loads(text)


def fraction(value: Decimal) -> Fraction:
    return decimal_fraction(value)


Node.model_rebuild()
