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


def freeze_kept() -> None:
    """Move what is tracked now out of the cyclic collector's passes, right after making something
    big to keep a while: a year looked back (about 150 MB of objects for 3,000 people) or the PDF
    library's first use. Otherwise every full pass scans it again, a pause of 0.4–1.4 s for every
    request under way. A year looked back holds no reference cycle, so reference counting frees it
    when it is let go, frozen or not; what requests under way hold is frozen with it and freed the
    same way. (`settle_collector` does the same for what a server makes at its start.)"""
    gc.freeze()
