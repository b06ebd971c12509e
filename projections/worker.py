"""Running the read-model projection: a supervised loop that follows the log (LISTEN/NOTIFY on
PostgreSQL, polling on SQLite), restarting after a lost connection and resuming from its tracking
position."""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import structlog

from api.store.storage import pg_conninfo
from projections.projection import ReadModelProjection

log = structlog.get_logger("projections")


@contextlib.contextmanager
def _waiting(ledger: Any) -> Iterator[Callable[[float], None]]:
    """How the loop sleeps until the log may have grown: on PostgreSQL a NOTIFY on one LISTEN
    connection kept for the whole run (opened before the first catch-up, so a command committed
    while the loop catches up is waiting in it, never missed; one connection, not one per wait),
    on SQLite the polling interval."""
    if not ledger.db_url.startswith(("postgresql", "postgres")):
        yield time.sleep
        return
    import psycopg

    with psycopg.connect(pg_conninfo(ledger.db_url), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'LISTEN "{ledger.recorder.channel_name}"')

        def wait(timeout: float) -> None:
            for _ in conn.notifies(timeout=timeout, stop_after=1):
                break
            for _ in conn.notifies(timeout=0, stop_after=1000):  # the others already come: one catch-up reads them all
                pass

        yield wait


def run(ledger_factory: Callable[[], Any], *, stop: threading.Event | None = None, interval: float = 0.5,
        gather: float = 0.1, on_batch: Callable[[int, int], None] | None = None) -> None:
    """Catch up, then follow the log until `stop` is set. A failure (a dropped connection, the
    store restarting) is logged; the projection is rebuilt from its tracking row and goes on.
    After a batch it waits `gather` seconds before looking again, so that the commands of a busy
    moment come as one batch: each batch grades its year again (the ranking moves with every
    score), and at 50 commands a second one batch per command took a third of a core beside the
    servers. The read models then follow the log at most that much later."""
    stop = stop or threading.Event()
    backoff = 0.5
    while not stop.is_set():
        ledger = projection = None
        waiting = contextlib.ExitStack()
        frozen = False
        try:
            ledger = ledger_factory()
            wait = waiting.enter_context(_waiting(ledger))
            projection = ReadModelProjection(ledger)
            log.info("projection started", position=projection.state.position)
            backoff = 0.5
            while not stop.is_set():
                processed = projection.catch_up()
                if not frozen:
                    # The folded log and the year's kept scores and texts live as long as the
                    # worker: leave them out of the collector's full passes (each would scan
                    # gigabytes to free nothing). Reference counting still frees them.
                    gc.freeze()
                    frozen = True
                if processed and on_batch:
                    on_batch(processed, projection.state.position)
                if not processed:
                    wait(interval)
                elif gather:
                    stop.wait(gather)
        except Exception as error:  # supervised: log, wait, start again from the tracking row
            log.warning("projection stopped; restarting", error=repr(error), backoff=backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)
        finally:
            if frozen:  # what this run kept may be collected again once it is dropped
                gc.unfreeze()
            with contextlib.suppress(Exception):
                waiting.close()
            if projection is not None:
                with contextlib.suppress(Exception):
                    projection.close()
            if ledger is not None:
                ledger.close()


def start_in_background(ledger_factory: Callable[[], Any], interval: float = 0.2) -> tuple[threading.Thread, threading.Event]:
    """For `appraisal serve` in development: the projection in a daemon thread of the server."""
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(ledger_factory,), kwargs={"stop": stop, "interval": interval},
                              name="read-models", daemon=True)
    thread.start()
    return thread, stop
