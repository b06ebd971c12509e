"""How a rebuild is shared among processes (projections/partition.py): how many, and who goes where."""

from __future__ import annotations

from collections import Counter

import pytest

from domain.aggregates import ledger_id
from projections.partition import FIRST_SHARE, MAX_PROCESSES, SHARED_FROM, share_count, share_of


@pytest.mark.parametrize(("requested", "cpus", "events", "expected"), [
    (0, 2, SHARED_FROM, 2),  # one per core
    (None, 8, 10**6, MAX_PROCESSES),  # up to the most
    (0, 2, SHARED_FROM - 1, 1),  # a small log: another process costs more than it saves
    (0, None, 10**6, 1),  # cores unknown
    (3, 1, 10, 3),  # as asked, whatever the log
    (9, 2, 10, MAX_PROCESSES),
])
def test_how_many_processes_share_a_rebuild(requested: int | None, cpus: int | None, events: int,
                                             expected: int) -> None:
    assert share_count(requested, cpus, events) == expected


@pytest.mark.parametrize("parts", [2, 3, 4])
def test_every_appraisal_has_one_share_and_share_0_the_smaller_part(parts: int) -> None:
    ids = [ledger_id("appraisal", f"2025:p-{n:05d}") for n in range(20_000)]
    shares = Counter(share_of(aggregate_id, parts) for aggregate_id in ids)
    assert set(shares) == set(range(parts))
    expected = [FIRST_SHARE, *([1.0] * (parts - 1))]
    for part, weight in enumerate(expected):
        assert abs(shares[part] / len(ids) - weight / sum(expected)) < 0.02, (part, shares)
    assert all(share_of(aggregate_id, 1) == 0 for aggregate_id in ids[:100])
