"""The commands of COMMANDS.md: one request model per type, parsed from their JSON bodies.

These are requests, not events: the application decides on them (domain/handlers.py) and
records what it accepted as explicit past-tense events (domain/aggregates.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from domain.errors import DomainError
from domain.numbers import NUMBER_FORMAT, Count, DecimalNumber
from domain.scheme import Names

_ZERO, _HUNDRED = Decimal(0), Decimal(100)
DecimalValue = DecimalNumber  # every number of a command is read by domain/numbers.py's grammar
APPRAISAL_KEY = re.compile(r"^(\d{4}):(.+)$")
PERIOD = re.compile(r"^(\d{4})(?:-(?:0[1-9]|1[0-2])|-Q[1-4]|-H[12]|-W(?:0[1-9]|[1-4]\d|5[0-3]))?$")


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    id: str | None = Field(default=None, min_length=1, max_length=200)
    actor: str | None = Field(default=None, min_length=1, max_length=200)
    at: datetime | None = None

    @field_validator("at", mode="before")
    @classmethod
    def _text_required(cls, value: Any) -> Any:
        return business_time_text(value)

    @field_validator("at")
    @classmethod
    def _offset_required(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError("a business time needs an offset (e.g. 2025-06-30T10:00:00+08:00)")
        return value


def business_time_text(value: Any) -> Any:
    """A business time is ISO 8601 text (or a datetime already read): pydantic would read a
    number as seconds since 1970."""
    if isinstance(value, bool | int | float | Decimal):
        raise ValueError("a business time is ISO 8601 text with an offset (e.g. 2025-06-30T10:00:00+08:00)")
    return value


class SchemeRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(min_length=1)
    version: Count = Field(ge=1)

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"


def _names(value: Any) -> Any:
    return {"zh": value, "en": value} if isinstance(value, str) else value


NamesOrText = Annotated[Names, BeforeValidator(_names)]


class PublishScheme(Command):
    type: Literal["scheme.publish"]
    builtin: Literal["bianban"] | None = None
    document: dict[str, Any] | None = None


class RecordDepartment(Command):
    type: Literal["org.department"]
    department: str = Field(min_length=1, max_length=100)
    name: NamesOrText
    approved_posts: Count = Field(ge=0)
    in_charge: str | None = None


class RecordPerson(Command):
    type: Literal["org.person"]
    person: str = Field(min_length=1, max_length=100)
    name: NamesOrText
    position: Literal["staff", "department_head", "leader", "superior"]
    department: str | None = None


class OpenAppraisal(Command):
    type: Literal["appraisal.open"]
    year: Count = Field(ge=1900, le=2999)
    subject: str = Field(min_length=1)
    scheme: SchemeRef


class _OnAppraisal(Command):
    appraisal: str

    @field_validator("appraisal")
    @classmethod
    def _key(cls, value: str) -> str:
        if not APPRAISAL_KEY.match(value):
            raise ValueError('an appraisal is named "<year>:<subject id>", e.g. "2025:p-017"')
        return value

    @property
    def year(self) -> int:
        return int(value_year(self.appraisal))


def value_year(appraisal: str) -> str:
    match = APPRAISAL_KEY.match(appraisal)
    assert match
    return match.group(1)


class RecordRating(_OnAppraisal):
    type: Literal["rating.record"]
    leaf: str
    period: str
    rater: str | None = None
    rater_role: Literal["self", "superior", "in_charge", "leadership_team", "department_head"]
    score: DecimalValue
    comment: str | None = Field(default=None, max_length=2000)

    @field_validator("score")
    @classmethod
    def _range(cls, value: Decimal) -> Decimal:
        if not _ZERO <= value <= _HUNDRED:
            raise ValueError(f"{value} is out of range: a rating is a score from 0 to 100 (SCORING.md §5)")
        return value

    @field_validator("period")
    @classmethod
    def _period(cls, value: str) -> str:
        if not PERIOD.match(value):
            raise ValueError(
                "a period is a year (2025), month (2025-06), quarter (2025-Q2), half (2025-H1) "
                "or ISO week (2025-W23)"
            )
        return value


class RecordMeasurement(_OnAppraisal):
    type: Literal["measurement.record"]
    input: str
    value: DecimalValue
    evidence: str | None = Field(default=None, max_length=4000)


class RecordOccurrence(_OnAppraisal):
    type: Literal["occurrence.record"]
    item: str
    count: Count = Field(default=1, ge=1, le=10000)
    evidence: str | None = Field(default=None, max_length=4000)


class RecordSurvey(_OnAppraisal):
    """One questionnaire round of a survey input (SCORING.md §12): responses per option."""

    type: Literal["survey.record"]
    input: str
    counts: dict[Annotated[str, Field(min_length=1, max_length=200)], Count] = Field(min_length=1, max_length=100)
    evidence: str | None = Field(default=None, max_length=4000)


class ApplyAdjustment(_OnAppraisal):
    type: Literal["adjustment.apply"]
    item: str
    evidence: str | None = Field(default=None, max_length=4000)


class ImposeVeto(_OnAppraisal):
    type: Literal["veto.impose"]
    reason: str
    evidence: str | None = Field(default=None, max_length=4000)


class FileAppeal(_OnAppraisal):
    type: Literal["appeal.file"]
    target: str = Field(min_length=1)
    grounds: str = Field(min_length=1, max_length=4000)


class DecideAppeal(Command):
    type: Literal["appeal.decide"]
    appeal: str = Field(min_length=1)
    outcome: Literal["upheld", "overturned", "amended"]
    points: DecimalValue | None = None
    reason: str = Field(min_length=1, max_length=4000)


class BreakTie(Command):
    type: Literal["year.tie_break"]
    year: Count
    order: list[str] = Field(min_length=2)
    reason: str = Field(min_length=1, max_length=4000)


class PublishYear(Command):
    type: Literal["year.publish"]
    year: Count


class FinalizeYear(Command):
    type: Literal["year.finalize"]
    year: Count


class AdoptScheme(Command):
    type: Literal["year.adopt"]
    year: Count
    scheme: SchemeRef
    reason: str = Field(min_length=1, max_length=4000)


AnyCommand = Annotated[
    PublishScheme
    | RecordDepartment
    | RecordPerson
    | OpenAppraisal
    | RecordRating
    | RecordMeasurement
    | RecordOccurrence
    | RecordSurvey
    | ApplyAdjustment
    | ImposeVeto
    | FileAppeal
    | DecideAppeal
    | BreakTie
    | PublishYear
    | FinalizeYear
    | AdoptScheme,
    Field(discriminator="type"),
]
COMMAND_TYPES = (
    "scheme.publish", "org.department", "org.person", "appraisal.open", "rating.record",
    "measurement.record", "occurrence.record", "survey.record", "adjustment.apply", "veto.impose", "appeal.file",
    "appeal.decide", "year.tie_break", "year.publish", "year.finalize", "year.adopt",
)
_ADAPTER: TypeAdapter[AnyCommand] = TypeAdapter(AnyCommand)


def storable(text: str) -> bool:
    """Text the stores can keep (and a UUID can be named by): no NUL character, no lone surrogate."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_SCALARS = (int, float, type(None))  # (bool is an int)


def _flat_and_storable(body: dict[str, Any]) -> bool:
    """True when every key and value of `body` is storable text or a scalar; False when a value
    is anything else (a nested object) or a text is not storable (`check_text` then says where)."""
    for key, value in body.items():
        if type(key) is not str or not storable(key):
            return False
        if type(value) is str:
            if not storable(value):
                return False
        elif not isinstance(value, _SCALARS):
            return False
    return True


def check_text(body: Any) -> None:
    """Refuse a body holding text the stores cannot keep, naming where it is (a loop, not a
    recursion: a body may be nested as deep as its JSON parser allows). A body is first written as
    JSON text, at C speed: there a NUL can only be the escape `\\u0000` and a lone surrogate stays
    itself (UTF-8 refuses it); a body with neither is storable. Only a body that may hold one (or
    that `json` cannot write) is walked, value by value, for where (walking every body cost the
    import about a tenth of its time). A flat body (texts, numbers, true/false/null: nearly every
    command) is looked at directly, faster still."""
    if isinstance(body, dict) and _flat_and_storable(body):
        return
    try:
        text: str | None = json.dumps(body, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = None
    if text is not None and "\\u0000" not in text and storable(text):
        return
    pending: list[tuple[str, Any]] = [("", body)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            if not storable(value):
                message = ("contains a NUL character" if "\x00" in value
                           else "not valid Unicode text (a lone surrogate)")
                raise DomainError(path or "(command)", message, rule="text")
        elif isinstance(value, dict):
            for key, item in value.items():  # the key first (a stack): a path never holds a bad key
                pending.append((f"{path}.{key}" if path else str(key), item))
                pending.append((path, key))
        elif isinstance(value, list | tuple):
            pending.extend((f"{path}[{index}]", item) for index, item in enumerate(value))


def parse_command(body: Any) -> Command:
    """Parse one command body; refuse it naming the field and the rule it broke."""
    if not isinstance(body, dict):
        raise DomainError("(command)", "a command is a JSON object", rule="envelope")
    check_text(body)
    kind = body.get("type")
    if kind not in COMMAND_TYPES:
        raise DomainError("type", f"unknown command type {kind!r} (known: {', '.join(COMMAND_TYPES)})",
                          rule="envelope")
    try:
        return _ADAPTER.validate_python(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = [part for part in error["loc"] if part != kind]
        field = ".".join(str(part) for part in loc) or "(command)"
        message = error["msg"].removeprefix("Value error, ")
        rule = "command-fields"
        if error["type"] == "extra_forbidden":
            message = f"unknown field for {kind}"
        elif error["type"] == "missing":
            message = f"required for {kind}"
        elif error["type"] == NUMBER_FORMAT:
            rule = "number-format"
        raise DomainError(field, message, rule=rule) from None


def fingerprint(command: Command) -> str:
    """A digest of a command's content, to tell a re-sent command from a reused id: the SHA-256
    of `command.model_dump_json()`, taken from the serializer's bytes (no str round trip)."""
    return hashlib.sha256(command.__pydantic_serializer__.to_json(command)).hexdigest()
