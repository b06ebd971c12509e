"""What the pages keep (`api.pages.views.Kept`): by key, the most recent few, and (serial) one
made at a time, so that many requests for the same slow value make it once."""

from __future__ import annotations

import threading
import time

from api.pages.views import Kept


def test_kept_values_are_made_once_by_key_and_the_least_recently_used_let_go() -> None:
    made: list[str] = []
    memo = Kept(2)

    def make(name: str) -> str:
        made.append(name)
        return name.upper()

    assert memo(("a",), lambda: make("a")) == "A" and memo(("a",), lambda: make("a")) == "A"
    memo(("b",), lambda: make("b"))
    memo(("a",), lambda: make("a"))  # a used again: b is now the least recent
    memo(("c",), lambda: make("c"))
    memo(("a",), lambda: make("a"))
    memo(("b",), lambda: make("b"))
    assert made == ["a", "b", "c", "b"]


def test_serial_requests_for_a_value_being_made_wait_for_it_and_do_not_make_it_again() -> None:
    made: list[int] = []
    memo = Kept(4, serial=True)
    started = threading.Event()

    def slow() -> bytes:
        made.append(1)
        started.set()
        time.sleep(0.2)
        return b"%PDF-"

    answers: list[bytes] = []
    first = threading.Thread(target=lambda: answers.append(memo(("pdf", "x"), slow)))
    first.start()
    assert started.wait(5)
    others = [threading.Thread(target=lambda: answers.append(memo(("pdf", "x"), slow))) for _ in range(4)]
    for thread in others:
        thread.start()
    for thread in [first, *others]:
        thread.join(5)
    assert made == [1] and answers == [b"%PDF-"] * 5
