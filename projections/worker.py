"""Running the read-model projection: a supervised loop that follows the log (LISTEN/NOTIFY on
PostgreSQL, polling on SQLite), restarting after a lost connection and resuming from its tracking
position."""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from api.store.storage import pg_conninfo
from projections.projection import ReadModelProjection

log = structlog.get_logger("projections")


def _wait_for_events(ledger: Any, timeout: float) -> None:
    """Sleep until the log may have grown: a PostgreSQL NOTIFY, or the polling interval."""
    if not ledger.db_url.startswith(("postgresql", "postgres")):
        time.sleep(timeout)
        return
    import psycopg

    channel = ledger.recorder.channel_name
    with psycopg.connect(pg_conninfo(ledger.db_url), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'LISTEN "{channel}"')
        for _ in conn.notifies(timeout=timeout, stop_after=1):
            break


def run(ledger_factory: Callable[[], Any], *, stop: threading.Event | None = None, interval: float = 0.5,
        on_batch: Callable[[int, int], None] | None = None) -> None:
    """Catch up, then follow the log until `stop` is set. A failure (a dropped connection, the
    store restarting) is logged; the projection is rebuilt from its tracking row and goes on."""
    stop = stop or threading.Event()
    backoff = 0.5
    while not stop.is_set():
        ledger = projection = None
        frozen = False
        try:
            ledger = ledger_factory()
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
                    _wait_for_events(ledger, interval)
        except Exception as error:  # supervised: log, wait, start again from the tracking row
            log.warning("projection stopped; restarting", error=repr(error), backoff=backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)
        finally:
            if frozen:  # what this run kept may be collected again once it is dropped
                gc.unfreeze()
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
