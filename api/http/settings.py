"""The HTTP service's settings: one object, read once at startup (environment `APPRAISAL_*`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.storage import DEFAULT_DB


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="APPRAISAL_", extra="ignore", frozen=True)

    db: str = Field(default=DEFAULT_DB, description="the store: sqlite:///…, postgresql://… or memory://")
    log_format: Literal["json", "console"] = Field(
        default="console", description="json in production, console (readable) in development")
    log_level: str = "INFO"
    # Who keeps the read models up to date: a daemon thread of this server (background), a
    # synchronous catch-up under a lock before each read (inline: tests), or a separate
    # `appraisal project` worker (none: production).
    projection: Literal["inline", "background", "none"] = Field(
        default="background", description="background (a thread of the server), inline (tests) or none "
                                          "(`appraisal project` runs beside the server)")
    projection_interval_seconds: float = Field(default=0.2, gt=0, le=10)
    # Read-your-writes: how long a query waits for the read side to reach a requested position.
    wait_seconds: float = Field(default=5.0, ge=0, le=60)
    wait_poll_seconds: float = Field(default=0.02, gt=0, le=1)
    # How many such requests may wait at once (on the event loop: they hold no thread); one more
    # is answered 503 with Retry-After at once.
    wait_limit: int = Field(default=50, ge=0, le=100_000)
    # A conflict that survived the ledger's own retries is tried again this many times, after a
    # short random pause (the ledger retries at once, which many writers on one appraisal defeat).
    conflict_retries: int = Field(default=6, ge=0, le=20)
    conflict_backoff_seconds: float = Field(default=0.01, ge=0, le=1)
    # How long a verified token is trusted before it is looked up again (0: every request);
    # a revocation takes effect within this time.
    token_cache_seconds: float = Field(default=2.0, ge=0, le=300)
    # Limits no office reaches (api/http/guard.py): a request body of at most this many bytes
    # (413), a JSON body nested at most this deep (422 `body-depth`).
    body_max_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    body_max_depth: int = Field(default=32, ge=4, le=200)
    # Failed sign-ins and bad tokens, counted per client address in this process's memory (each
    # server process counts its own): this many within the window and that address is answered
    # 429 with Retry-After until the oldest of them leaves the window.
    auth_failures_max: int = Field(default=10, ge=1, le=10_000)
    auth_failures_window_seconds: float = Field(default=60.0, gt=0, le=86_400)
    # Commands on one appraisal are decided (and, on PostgreSQL, written) on the event loop, with no
    # worker thread per request (`AppraisalLedger.submit_on_loop`); off, every command goes to a
    # worker thread as a plain `def` route's would (scripts/bench_http.py --thread-path compares).
    commands_on_loop: bool = True
    # The raw-insert baseline of scripts/bench_http.py: never on in production.
    bench_raw_endpoint: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
