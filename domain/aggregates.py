"""The event model: aggregates and their explicit, past-tense events.

Every event carries who (`actor`), when it happened (`at`, business time), the client command id
(`command_id`) and, through the library, when it was recorded (`timestamp`). Apply code only
assigns state: every decision is taken before an event is triggered (domain/handlers.py), because
the library re-runs apply code on every rebuild.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain import facts as f

NAMESPACE = UUID("5b1d6c1e-6f0a-4d0c-9d8e-61707072616c")  # "appral"


@lru_cache(maxsize=8192)  # a year's appraisals and people, and then some; a few MB, whatever the years
def ledger_id(kind: str, key: str) -> UUID:
    return uuid5(NAMESPACE, f"{kind}:{key}")


class CheapCopy:
    """A private copy for deciding, at almost no cost: copy on write. The copy shares the state's
    containers with the original, and both are marked shared; whichever is changed first (every
    change is an event's `mutate`, see `LedgerEvent`) copies its containers one level before the
    change (`_own`). What the containers hold is shared for good, because apply code only ever adds
    or replaces entries (facts are frozen; people, department and publication records are replaced
    whole, never edited in place). A command that only reads the organisation and the year (a
    rating) copies neither; one that changes its appraisal copies that appraisal's containers once."""

    _shared = False

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        clone = self.__class__.__new__(self.__class__)
        clone.__dict__.update(self.__dict__)
        clone._shared = self._shared = True
        return clone

    def _own(self) -> None:
        """Containers of its own, before a change (see the class)."""
        for name, value in self.__dict__.items():
            if isinstance(value, list | dict | set | f.AppraisalFacts):
                self.__dict__[name] = value.copy()
        self._shared = False


class LeanEvents:
    """The library's `trigger_event` without its per-event overhead on the import's hot path:
    the event gets exactly the attributes, in the order, that its dataclass `__init__` would
    give it (the stored bytes follow that order), the library's id check (`__post_init__`), and
    is applied with the library's own `mutate` (sequence checks, apply, version, modified_on).
    Anything unusual (a field missing or unknown, an explicit topic) takes the library's way."""

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        names, known = _FIELD_NAMES.get(event_class) or _field_names(event_class)
        aggregate: Any = self
        if kwargs.get("timestamp") is None:
            kwargs["timestamp"] = event_class.create_timestamp()
        kwargs["originator_id"] = aggregate.id
        kwargs["originator_version"] = aggregate.version + 1
        if kwargs.keys() != known or getattr(type(self), "TOPIC", None):
            super().trigger_event(event_class, **kwargs)  # type: ignore[misc]
            return
        event = object.__new__(event_class)
        event.__dict__.update({name: kwargs[name] for name in names})
        event.__post_init__()
        event.mutate(aggregate)
        aggregate._pending_events.append(event)


_FIELD_NAMES: dict[type, tuple[tuple[str, ...], frozenset[str]]] = {}


def _field_names(event_class: type) -> tuple[tuple[str, ...], frozenset[str]]:
    names = tuple(field.name for field in dataclasses.fields(event_class))  # type: ignore[arg-type]
    _FIELD_NAMES[event_class] = (names, frozenset(names))
    return _FIELD_NAMES[event_class]


class LedgerEvent(Aggregate.Event):
    actor: str
    at: datetime
    command_id: str

    def mutate(self, aggregate: Any) -> Any:
        # Every change of an aggregate goes through here: one that shares its containers with a
        # copy takes containers of its own first (`CheapCopy`).
        if aggregate is not None and aggregate._shared:
            aggregate._own()
        return super().mutate(aggregate)


class FactEvent(LedgerEvent):
    """An event that adds one fact to an appraisal."""

    def fact(self, key: str) -> f.Fact:
        raise NotImplementedError

    def base(self, key: str) -> tuple[str, str, str, datetime, datetime]:
        """The fields every fact starts with, in `facts.Fact`'s order (built positionally: a
        year's replay builds up to a million facts)."""
        return f"{key}#{self.originator_version}", self.command_id, self.actor, self.at, self.timestamp

    def apply(self, aggregate: Any) -> None:
        aggregate.facts.add(self.fact(aggregate.key))


# --- the organisation --------------------------------------------------------------------------


class Organisation(CheapCopy, LeanEvents, Aggregate):
    """Departments and people: one aggregate, so that ids stay unique across both."""

    class Started(LedgerEvent, Aggregate.Created):
        pass

    class DepartmentRecorded(LedgerEvent):
        department: str
        name: dict[str, str]
        approved_posts: int
        in_charge: str | None

        def apply(self, org: Organisation) -> None:
            org.departments[self.department] = {
                "id": self.department, "name": self.name, "approved_posts": self.approved_posts,
                "in_charge": self.in_charge,
            }

    class PersonRecorded(LedgerEvent):
        person: str
        name: dict[str, str]
        position: str
        department: str | None

        def apply(self, org: Organisation) -> None:
            previous = org.people.get(self.person)
            if previous and previous["position"] == "department_head":
                org.heads.pop(previous["department"], None)
            org.people[self.person] = {
                "id": self.person, "name": self.name, "position": self.position,
                "department": self.department,
            }
            if self.position == "department_head" and self.department:
                org.heads[self.department] = self.person

    def __init__(self, actor: str, at: datetime, command_id: str) -> None:
        self.departments: dict[str, dict[str, Any]] = {}
        self.people: dict[str, dict[str, Any]] = {}
        self.heads: dict[str, str] = {}  # department -> its head

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return ledger_id("organisation", "main")

    @classmethod
    def start(cls, actor: str, at: datetime, command_id: str) -> Organisation:
        return cls._create(cls.Started, id=cls.create_id(), actor=actor, at=at, command_id=command_id)

    def head_of(self, department: str) -> str | None:
        return self.heads.get(department)

    def record_department(self, **fields: Any) -> None:
        self.trigger_event(self.DepartmentRecorded, **fields)

    def record_person(self, **fields: Any) -> None:
        self.trigger_event(self.PersonRecorded, **fields)


# --- schemes -------------------------------------------------------------------------------------


class SchemeVersion(CheapCopy, LeanEvents, Aggregate):
    """One published version of a scheme document; it never changes once published."""

    class Published(LedgerEvent, Aggregate.Created):
        scheme_id: str
        version: int
        document: dict[str, Any]
        digest: str

    def __init__(self, scheme_id: str, version: int, document: dict[str, Any], digest: str,
                 actor: str, at: datetime, command_id: str) -> None:
        self.scheme_id = scheme_id
        self.scheme_version = version
        self.document = document
        self.digest = digest
        self.published_at = at

    @staticmethod
    def create_id(scheme_id: str, version: int, **_: Any) -> UUID:
        return ledger_id("scheme", f"{scheme_id}@{version}")

    @classmethod
    def publish(cls, *, scheme_id: str, version: int, document: dict[str, Any], digest: str,
                actor: str, at: datetime, command_id: str) -> SchemeVersion:
        return cls._create(
            cls.Published, id=cls.create_id(scheme_id, version), scheme_id=scheme_id,
            version=version, document=document, digest=digest, actor=actor, at=at,
            command_id=command_id,
        )


class SchemeCatalogue(CheapCopy, LeanEvents, Aggregate):
    """Which versions of which schemes exist, so that they can be listed and superseded."""

    class Started(LedgerEvent, Aggregate.Created):
        pass

    class VersionListed(LedgerEvent):
        scheme_id: str
        version: int
        digest: str

        def apply(self, catalogue: SchemeCatalogue) -> None:
            catalogue.versions.setdefault(self.scheme_id, {})[self.version] = self.digest

    def __init__(self, actor: str, at: datetime, command_id: str) -> None:
        self.versions: dict[str, dict[int, str]] = {}

    def _own(self) -> None:
        super()._own()
        self.versions = {scheme: versions.copy() for scheme, versions in self.versions.items()}

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return ledger_id("schemes", "catalogue")

    @classmethod
    def start(cls, actor: str, at: datetime, command_id: str) -> SchemeCatalogue:
        return cls._create(cls.Started, id=cls.create_id(), actor=actor, at=at, command_id=command_id)

    def list_version(self, **fields: Any) -> None:
        self.trigger_event(self.VersionListed, **fields)


# --- the appraisal year --------------------------------------------------------------------------


class Year(CheapCopy, LeanEvents, Aggregate):
    """An appraisal year: its scheme binding, its subjects, tie-breaks, publications."""

    class Opened(LedgerEvent, Aggregate.Created):
        year: int
        scheme_id: str
        scheme_version: int

    class SubjectEnrolled(LedgerEvent):
        subject: str
        kind: str

        def apply(self, year: Year) -> None:
            year.subjects[self.subject] = self.kind

    class TieBroken(LedgerEvent):
        order: list[str]
        reason: str

        def apply(self, year: Year) -> None:
            year.tie_breaks.append({
                "ref": f"{year.year}#{self.originator_version}", "order": list(self.order),
                "reason": self.reason, "actor": self.actor, "at": self.at,
                "command_id": self.command_id,
            })

    class Published(LedgerEvent):
        document: dict[str, Any]
        digest: str

        def apply(self, year: Year) -> None:
            # The publication before gives way to its tiers: what is read of it from here on (a
            # look-back's consequences, `Year.tiers`). Its document is the year's results export,
            # some megabytes for a large office, and after the first publication every batch that
            # moves a figure brings a revision; each stays readable in the log and the read models.
            if year.publications:
                year.publications[-1] = Year.tiered(year.publications[-1])
            year.publications.append({
                "ref": f"{year.year}#{self.originator_version}", "document": self.document,
                "digest": self.digest, "at": self.at, "actor": self.actor,
                "recorded_at": self.timestamp,
            })

    class Finalized(LedgerEvent):
        digest: str

        def apply(self, year: Year) -> None:
            year.finalized = {"at": self.at, "actor": self.actor, "digest": self.digest}

    class SchemeAdopted(LedgerEvent):
        scheme_id: str
        scheme_version: int
        reason: str

        def apply(self, year: Year) -> None:
            year.adoptions.append({
                "from": f"{year.scheme_id}@{year.scheme_version}",
                "to": f"{self.scheme_id}@{self.scheme_version}", "reason": self.reason,
                "at": self.at, "recorded_at": self.timestamp, "actor": self.actor,
            })
            year.scheme_id = self.scheme_id
            year.scheme_version = self.scheme_version

    def __init__(self, year: int, scheme_id: str, scheme_version: int, actor: str, at: datetime,
                 command_id: str) -> None:
        self.year = year
        self.scheme_id = scheme_id
        self.scheme_version = scheme_version
        self.subjects: dict[str, str] = {}
        self.tie_breaks: list[dict[str, Any]] = []
        self.publications: list[dict[str, Any]] = []
        self.finalized: dict[str, Any] | None = None
        self.adoptions: list[dict[str, Any]] = []

    @staticmethod
    def create_id(year: int, **_: Any) -> UUID:
        return ledger_id("year", str(year))

    @classmethod
    def open(cls, *, year: int, scheme_id: str, scheme_version: int, actor: str, at: datetime,
             command_id: str) -> Year:
        return cls._create(cls.Opened, id=cls.create_id(year), year=year, scheme_id=scheme_id,
                           scheme_version=scheme_version, actor=actor, at=at, command_id=command_id)

    @staticmethod
    def tiers(publication: dict[str, Any]) -> dict[str, int | None]:
        """Each person's tier in a publication (§7 consequences read them). A publication followed
        by another keeps only these (`Published`), and so does every one of a finalized year let go
        (`LedgerState.let_go`)."""
        kept = publication.get("tiers")
        if kept is not None:
            return dict(kept)
        return {person["id"]: person["tier"] for person in publication["document"]["people"]}

    @staticmethod
    def tiered(publication: dict[str, Any], text: Callable[[str], str] = str) -> dict[str, Any]:
        """The publication with its tiers in place of its document; `text` gives each person's id
        (a shared copy of the text, say)."""
        return {**publication, "document": None,
                "tiers": {text(person): tier for person, tier in Year.tiers(publication).items()}}

    @property
    def status(self) -> str:
        if self.finalized:
            return "final"
        return "published" if self.publications else "provisional"

    def record(self, event_class: type[LedgerEvent], **fields: Any) -> None:
        self.trigger_event(event_class, **fields)


# --- appraisals ----------------------------------------------------------------------------------


class Appraisal(CheapCopy, LeanEvents, Aggregate):
    """One subject's appraisal for one year: every rating, measurement, item, veto and appeal."""

    class Opened(LedgerEvent, Aggregate.Created):
        year: int
        subject: str
        kind: str
        name: dict[str, str]
        position: str | None
        department: str | None
        approved_posts: int | None

    class RatingRecorded(FactEvent):
        leaf: str
        period: str
        rater: str
        rater_role: str
        score: Decimal
        comment: str | None

        def fact(self, key: str) -> f.Rating:
            return f.Rating(*self.base(key), self.leaf, self.period, self.rater, self.rater_role,
                            self.score, self.comment)

    class MeasurementRecorded(FactEvent):
        input: str
        value: Decimal
        evidence: str | None

        def fact(self, key: str) -> f.Measurement:
            return f.Measurement(*self.base(key), self.input, self.value, self.evidence)

    class OccurrenceRecorded(FactEvent):
        item: str
        count: int
        evidence: str | None

        def fact(self, key: str) -> f.Occurrence:
            return f.Occurrence(*self.base(key), self.item, self.count, self.evidence)

    class SurveyRecorded(FactEvent):
        input: str
        counts: dict[str, int]
        evidence: str | None

        def fact(self, key: str) -> f.SurveyRound:
            return f.SurveyRound(*self.base(key), self.input, dict(self.counts), self.evidence)

    class AdjustmentApplied(FactEvent):
        item: str
        evidence: str | None

        def fact(self, key: str) -> f.AdjustmentFact:
            return f.AdjustmentFact(*self.base(key), self.item, self.evidence)

    class VetoImposed(FactEvent):
        reason: str
        evidence: str | None

        def fact(self, key: str) -> f.VetoFact:
            return f.VetoFact(*self.base(key), self.reason, self.evidence)

    class AppealFiled(FactEvent):
        target: str
        grounds: str

        def fact(self, key: str) -> f.Appeal:
            return f.Appeal(*self.base(key), self.target, self.grounds)

    class AppealDecided(FactEvent):
        appeal: str
        outcome: str
        points: Decimal | None
        reason: str

        def fact(self, key: str) -> f.Decision:
            return f.Decision(*self.base(key), self.appeal, self.outcome, self.points, self.reason)

    def __init__(self, year: int, subject: str, kind: str, name: dict[str, str],
                 position: str | None, department: str | None, approved_posts: int | None,
                 actor: str, at: datetime, command_id: str) -> None:
        self.key = appraisal_key(year, subject)
        self.facts = f.AppraisalFacts(
            key=self.key, year=year,
            subject=f.Subject(id=subject, kind=kind, name=name, position=position,
                              department=department, approved_posts=approved_posts),
            opened_ref=f"{self.key}#1",
        )
        self.opened_by = actor
        self.opened_at = at

    @staticmethod
    def create_id(year: int, subject: str, **_: Any) -> UUID:
        return ledger_id("appraisal", appraisal_key(year, subject))

    @classmethod
    def open(cls, **fields: Any) -> Appraisal:
        return cls._create(cls.Opened, id=cls.create_id(fields["year"], fields["subject"]), **fields)

    def record(self, event_class: type[FactEvent], **fields: Any) -> None:
        self.trigger_event(event_class, **fields)


def appraisal_key(year: int, subject: str) -> str:
    return f"{year}:{subject}"


def appraisal_key_year(key: str) -> int | None:
    """The year of an appraisal key ("2025:p-017", `appraisal_key`'s inverse); None for any other
    text ("org", "year:2025", "2025:")."""
    head, _, rest = key.partition(":")
    return int(head) if rest and head.isascii() and head.isdigit() and len(head) <= 9 else None  # "²⁰²⁵".isdigit()


FACT_EVENTS: tuple[type[FactEvent], ...] = (
    Appraisal.RatingRecorded, Appraisal.MeasurementRecorded, Appraisal.OccurrenceRecorded,
    Appraisal.AdjustmentApplied, Appraisal.VetoImposed, Appraisal.AppealFiled,
    Appraisal.AppealDecided, Appraisal.SurveyRecorded,
)
