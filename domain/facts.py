"""Recorded facts of an appraisal, as the scoring engine reads them.

Each fact is what one event recorded, with its reference (`2025:p-A#5`: appraisal and event
version), the client command id, the actor, the business time and the recording time. Facts are
values, never edited: a replaced rating or an overturned item stays here and the engine strikes
it, and copies of an aggregate share them. (They are plain slotted dataclasses rather than frozen
ones only because a frozen one costs four times as much to build, and a year is rebuilt from up to
a million of them.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(slots=True)
class Fact:
    ref: str
    command_id: str
    actor: str
    at: datetime
    recorded_at: datetime


@dataclass(slots=True)
class Rating(Fact):
    leaf: str
    period: str
    rater: str
    rater_role: str
    score: Decimal
    comment: str | None


@dataclass(slots=True)
class Measurement(Fact):
    input: str
    value: Decimal
    evidence: str | None


@dataclass(slots=True)
class Occurrence(Fact):
    item: str
    count: int
    evidence: str | None


@dataclass(slots=True)
class SurveyRound(Fact):
    """One questionnaire round of a survey input (SCORING.md §12): how many answered each option,
    never who."""

    input: str
    counts: dict[str, int]
    evidence: str | None


@dataclass(slots=True)
class AdjustmentFact(Fact):
    item: str
    evidence: str | None


@dataclass(slots=True)
class VetoFact(Fact):
    reason: str
    evidence: str | None


@dataclass(slots=True)
class Appeal(Fact):
    target: str
    grounds: str


@dataclass(slots=True)
class Decision(Fact):
    appeal: str
    outcome: str
    points: Decimal | None
    reason: str


def ref_order(ref: str) -> tuple[str, int]:
    """A fact's place in the log, from its reference (`2025:p-A#5` -> ("2025:p-A", 5))."""
    key, _, version = ref.rpartition("#")
    return key, int(version)


APPEALABLE = (Measurement, Occurrence, SurveyRound, AdjustmentFact, VetoFact)
FACT_KINDS = {
    Rating: "rating",
    Measurement: "measurement",
    Occurrence: "occurrence",
    SurveyRound: "survey",
    AdjustmentFact: "adjustment",
    VetoFact: "veto",
    Appeal: "appeal",
    Decision: "decision",
}


@dataclass(slots=True)
class Subject:
    """Who is appraised, as recorded when the appraisal was opened."""

    id: str
    kind: str  # "department" | "person"
    name: dict[str, str]
    position: str | None = None  # staff | department_head for persons
    department: str | None = None
    approved_posts: int | None = None


@dataclass(slots=True)
class AppraisalFacts:
    """Everything recorded on one appraisal, in log order."""

    key: str
    year: int
    subject: Subject
    opened_ref: str
    ratings: list[Rating] = field(default_factory=list)
    measurements: list[Measurement] = field(default_factory=list)
    occurrences: list[Occurrence] = field(default_factory=list)
    surveys: list[SurveyRound] = field(default_factory=list)
    adjustments: list[AdjustmentFact] = field(default_factory=list)
    vetoes: list[VetoFact] = field(default_factory=list)
    appeals: dict[str, Appeal] = field(default_factory=dict)  # by the appeal's command id
    decisions: dict[str, Decision] = field(default_factory=dict)  # by the appeal's command id
    items: dict[str, Fact] = field(default_factory=dict)  # every fact by its command id
    rater_roles: dict[str, Rating] = field(default_factory=dict)  # each rater's first rating

    @property
    def kind(self) -> str:
        return self.subject.kind

    def copy(self) -> AppraisalFacts:
        """A copy whose lists and maps can grow on their own; the frozen facts are shared."""
        return AppraisalFacts(
            key=self.key, year=self.year, subject=self.subject, opened_ref=self.opened_ref,
            ratings=self.ratings.copy(), measurements=self.measurements.copy(),
            occurrences=self.occurrences.copy(), surveys=self.surveys.copy(), adjustments=self.adjustments.copy(),
            vetoes=self.vetoes.copy(), appeals=self.appeals.copy(), decisions=self.decisions.copy(),
            items=self.items.copy(), rater_roles=self.rater_roles.copy(),
        )

    def add(self, fact: Fact) -> None:
        self.items[fact.command_id] = fact
        if isinstance(fact, Rating):
            self.ratings.append(fact)
            self.rater_roles.setdefault(fact.rater, fact)
        elif isinstance(fact, Measurement):
            self.measurements.append(fact)
        elif isinstance(fact, Occurrence):
            self.occurrences.append(fact)
        elif isinstance(fact, SurveyRound):
            self.surveys.append(fact)
        elif isinstance(fact, AdjustmentFact):
            self.adjustments.append(fact)
        elif isinstance(fact, VetoFact):
            self.vetoes.append(fact)
        elif isinstance(fact, Appeal):
            self.appeals[fact.command_id] = fact
        elif isinstance(fact, Decision):
            self.decisions[fact.appeal] = fact

    def appeal_of(self, target: str) -> Appeal | None:
        return next((appeal for appeal in self.appeals.values() if appeal.target == target), None)

    def decision_on(self, target: str) -> Decision | None:
        appeal = self.appeal_of(target)
        return self.decisions.get(appeal.command_id) if appeal else None
