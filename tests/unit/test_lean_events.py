"""Events triggered the lean way are the library's events: same attributes in the same order
(hence the same stored bytes), same checks, same effect on the aggregate."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from eventsourcing.domain import Aggregate

from domain.aggregates import Appraisal, Year

AT = datetime(2025, 3, 7, 10, tzinfo=UTC)
STAMP = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
ENV: dict[str, Any] = {"actor": "admin", "at": AT, "command_id": "c-1"}


def _appraisal() -> Appraisal:
    return Appraisal.open(year=2025, subject="p-1", kind="person", name={"zh": "甲", "en": "A"},
                          position="staff", department="d-1", approved_posts=None, **ENV)


def _both(aggregate: Any, event_class: type, **fields: object) -> tuple[Any, Any]:
    lean, library = copy.deepcopy(aggregate), copy.deepcopy(aggregate)
    lean.trigger_event(event_class, timestamp=STAMP, **fields)
    Aggregate.trigger_event(library, event_class, timestamp=STAMP, **fields)
    return lean, library


@pytest.mark.parametrize(("event_class", "fields"), [
    (Appraisal.RatingRecorded, {"leaf": "quality", "period": "2025-W10", "rater": "p-2", "rater_role": "superior",
                                "score": Decimal("87.5"), "comment": None}),
    (Appraisal.MeasurementRecorded, {"input": "attendance", "value": Decimal("99"), "evidence": "sheet"}),
    (Appraisal.AppealDecided, {"appeal": "c-9", "outcome": "amended", "points": Decimal("-5"), "reason": "r"}),
])
def test_the_same_event_as_the_library_builds(event_class: type, fields: dict) -> None:
    lean, library = _both(_appraisal(), event_class, **{**fields, **ENV})
    ours, theirs = lean.collect_events()[-1], library.collect_events()[-1]
    assert type(ours) is type(theirs) and ours == theirs
    assert list(vars(ours).items()) == list(vars(theirs).items())  # order: the stored bytes follow it
    assert (lean.version, lean.modified_on) == (library.version, library.modified_on) == (2, STAMP)
    assert lean.facts.items == library.facts.items


def test_a_year_event_too() -> None:
    year = Year.open(year=2025, scheme_id="bianban", scheme_version=1, **ENV)
    lean, library = _both(year, Year.SubjectEnrolled, subject="p-1", kind="person", **ENV)
    assert list(vars(lean.collect_events()[-1]).items()) == list(vars(library.collect_events()[-1]).items())
    assert lean.subjects == library.subjects == {"p-1": "person"}


def test_unknown_or_missing_fields_fail_as_the_library_does() -> None:
    with pytest.raises(TypeError):
        _appraisal().trigger_event(Appraisal.MeasurementRecorded, input="x", value=Decimal(1), **ENV)
    with pytest.raises(TypeError):
        _appraisal().trigger_event(Appraisal.MeasurementRecorded, input="x", value=Decimal(1), evidence=None,
                                   surprise=1, **ENV)
