"""Refusals: every refused command names the field and the rule it broke, and records nothing."""

from __future__ import annotations


class DomainError(Exception):
    """A command or document broke a rule. `field` is the path of the offending value."""

    status = "invalid"

    def __init__(self, field: str, message: str, rule: str = "") -> None:
        self.field = field
        self.message = message
        self.rule = rule
        super().__init__(f"{field}: {message}" if field else message)

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule, "message": self.message}


class NotFound(DomainError):
    """The command names something that does not exist (an appraisal, a person, a scheme)."""

    status = "not_found"


class Conflict(DomainError):
    """The command clashes with what was already recorded (a reused id with another body)."""

    status = "conflict"


class InvalidDocument(DomainError):
    """A scheme document broke one or more invariants; every problem is listed with its path."""

    def __init__(self, problems: list[tuple[str, str]], rule: str = "scheme-invariants") -> None:
        self.problems = problems
        field, message = problems[0]
        super().__init__(field, message, rule=rule)

    def __str__(self) -> str:
        return "; ".join(f"{path}: {message}" for path, message in self.problems)
