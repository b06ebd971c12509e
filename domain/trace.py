"""The trace: a flat list of figures, each naming the rule, parameter values and events behind it.

Explanations, the results export, replay diffs and audits all read this one trace; nothing
computes a score a second way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from domain.numbers import decimal_text, exact_text, shown


@dataclass(slots=True)
class RuleRef:
    scheme: str  # "bianban@1"
    id: str  # rule, leaf or engine rule id
    type: str  # shortfall, base.rating, sum, composition, ...
    path: str = ""  # where it stands in the scheme document ("individual[0].rules[0]")

    def as_dict(self) -> dict[str, str]:
        data = {"scheme": self.scheme, "id": self.id, "type": self.type}
        if self.path:
            data["path"] = self.path
        return data


@dataclass(slots=True)
class Struck:
    """A recorded fact that does not count, and why (replaced, overturned, not applicable)."""

    ref: str
    command_id: str
    kind: str
    why: str
    by: str | None = None  # the ref of the fact that struck it (the replacing rating, the decision)
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"ref": self.ref, "command": self.command_id, "kind": self.kind,
                                "why": self.why}
        if self.by:
            data["by"] = self.by
        if self.detail:
            data["detail"] = self.detail
        return data


@dataclass(slots=True)
class Figure:
    key: str
    label: dict[str, str]
    value: Fraction | None
    rule: RuleRef | None = None
    params: dict[str, Any] = field(default_factory=dict)  # str, or exact numbers written out on output
    inputs: dict[str, Any] = field(default_factory=dict)
    terms: list[tuple[str, Fraction]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    struck: list[Struck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    bounds: tuple[Fraction, Fraction | None] | None = None  # (floor, ceiling) applied last

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"key": self.key, "label": self.label}
        if self.value is not None:
            data["value"] = shown(self.value)
            data["exact"] = exact_text(self.value)
        else:
            data["value"] = None
        if self.rule:
            data["rule"] = self.rule.as_dict()
        if self.params:
            data["params"] = {key: _text(value) for key, value in self.params.items()}
        if self.inputs:
            data["inputs"] = {key: _text(value) for key, value in self.inputs.items()}
        if self.terms:
            data["terms"] = [{"of": key, "weight": exact_text(weight)} for key, weight in self.terms]
        if self.bounds:
            low, high = self.bounds
            data["bounds"] = {"min": exact_text(low), "max": exact_text(high) if high is not None else None}
        if self.events:
            data["events"] = self.events
        if self.struck:
            data["struck"] = [item.as_dict() for item in self.struck]
        if self.notes:
            data["notes"] = self.notes
        return data


def _text(value: Any) -> str:
    if isinstance(value, Fraction):
        return exact_text(value)
    if isinstance(value, Decimal):
        return decimal_text(value)
    return str(value)


def label(zh: str, en: str) -> dict[str, str]:
    return {"zh": zh, "en": en}
