"""What a piece of work shared among processes needs, whichever it is (a read-model rebuild:
projections/partition.py; an import: api/parallel.py): how many processes, how to divide its
items among them with a smaller part for the process that also does the rest, and how to hear
from a process that may have failed or died."""

from __future__ import annotations

import os
import pickle
from bisect import bisect_right
from functools import cache
from typing import Any

MAX_PROCESSES = 4  # each holds its share of the state (README: the worker's memory)
_BUCKETS = 1000


def cpus() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def process_count(requested: int | None, cpus: int | None, size: int, threshold: int) -> int:
    """How many processes share work of `size`: as requested (up to MAX_PROCESSES), or one per
    core up to MAX_PROCESSES once `size` reaches `threshold` (below it, starting another process
    costs about what it saves)."""
    if requested is not None and requested > 0:
        return min(requested, MAX_PROCESSES)
    if size < threshold:
        return 1
    return max(1, min(cpus or 1, MAX_PROCESSES))


@cache
def _edges(parts: int, first: float) -> tuple[int, ...]:
    """The first bucket of each share after the first (share k: buckets from edge k−1 up to edge k)."""
    weights = [first, *([1.0] * (parts - 1))]
    return tuple(round(_BUCKETS * sum(weights[:part + 1]) / sum(weights)) for part in range(parts - 1))


def weighted_share(value: int, parts: int, first: float) -> int:
    """Which of `parts` shares a uniformly drawn `value` falls in, share 0 taking `first` of what
    each other share takes."""
    return bisect_right(_edges(parts, first), value % _BUCKETS)


def received(process: Any, conn: Any, what: str, failed: type[Exception]) -> tuple[Any, ...]:
    """The next message (a pickled tuple) from a process started for the work; `failed` is raised
    when it ended without sending one, or sent ("failed", its traceback)."""
    try:
        message = pickle.loads(conn.recv_bytes())
    except (EOFError, OSError) as error:
        process.join(5)
        raise failed(f"{process.name} ended without its {what} ({error!r}, "
                     f"exit code {process.exitcode})") from None
    if message[0] == "failed":
        raise failed(f"{process.name} failed:\n{message[1]}")
    return message
