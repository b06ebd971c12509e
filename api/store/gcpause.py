"""Pausing the cyclic garbage collector during bulk work (an import, a fold of the log).

Deciding or folding a year allocates up to a million small objects and creates almost no cycles;
the collector would scan the growing state again and again (about a third of the time) to find
none. Reference counting still frees what is dropped. Counted, so that concurrent users (server
threads) leave the collector as it was once the last one is done.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pausers = 0
_restore = False


@contextmanager
def paused_gc() -> Iterator[None]:
    global _pausers, _restore
    with _lock:
        if _pausers == 0:
            _restore = gc.isenabled()
            gc.disable()
        _pausers += 1
    try:
        yield
    finally:
        with _lock:
            _pausers -= 1
            if _pausers == 0 and _restore:
                gc.enable()
