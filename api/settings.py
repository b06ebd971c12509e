"""The settings of the command line, the server, the worker and logging: one object, read once at
startup (from the environment, `APPRAISAL_<FIELD>`; an empty variable counts as unset). A command's
options (`--db`, `--log-format`, …) override them (`load`). This module is the only reader of the
environment (tests/unit/test_settings.py keeps it so)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.store.storage import DEFAULT_DB

PREFIX = "APPRAISAL_"


class SettingsError(ValueError):
    """A setting from the environment or an option has a value it may not have."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", frozen=True, env_ignore_empty=True)

    db: str = Field(default=DEFAULT_DB, description="the store: sqlite:///…, postgresql://… or memory://")
    log_format: Literal["json", "console"] = Field(
        default="console", description="json in production, console (readable) in development")
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL")
    # Who keeps the read models up to date: a daemon thread of this server (background), a
    # synchronous catch-up under a lock before each read (inline: tests), or a separate
    # `appraisal project` worker (none: production).
    projection: Literal["inline", "background", "none"] = Field(
        default="background", description="background (a thread of the server), inline (tests) or none "
                                          "(`appraisal project` runs beside the server)")
    projection_interval_seconds: float = Field(
        default=0.2, gt=0, le=10, description="how often the server's projection thread looks for new events (SQLite)")
    # The worker (`appraisal project`) gives way to the servers on a shared machine: a batch's
    # render takes the CPU a request waiting for its answer would have had.
    worker_nice: int = Field(default=10, ge=0, le=19,
                             description="the niceness `appraisal project` runs at (0: as the servers)")
    # Read-your-writes: how long a query waits for the read side to reach a requested position.
    wait_seconds: float = Field(default=5.0, ge=0, le=60,
                                description="how long a query with ?position=P waits for the read side")
    wait_poll_seconds: float = Field(default=0.02, gt=0, le=1,
                                     description="how often waiting queries read the read side's position")
    # How many such requests may wait at once (on the event loop: they hold no thread); one more
    # is answered 503 with Retry-After at once.
    wait_limit: int = Field(default=50, ge=0, le=100_000,
                            description="queries waiting at once; one more is answered 503 with Retry-After")
    # How long a verified token is trusted before it is looked up again (0: every request);
    # a revocation takes effect within this time.
    token_cache_seconds: float = Field(default=2.0, ge=0, le=300,
                                       description="how long a verified token is trusted (a revocation's delay)")
    # Limits no office reaches (api/http/guard.py): a request body of at most this many bytes
    # (413), a JSON body nested at most this deep (422 `body-depth`).
    body_max_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024,
                                description="the largest request body (413 above)")
    body_max_depth: int = Field(default=32, ge=4, le=200, description="the deepest JSON body (422 body-depth)")
    # Failed sign-ins and bad tokens, counted per client address in this process's memory (each
    # server process counts its own): this many within the window and that address is answered
    # 429 with Retry-After until the oldest of them leaves the window.
    auth_failures_max: int = Field(default=10, ge=1, le=10_000,
                                   description="failed sign-ins or bad tokens from one address before 429")
    auth_failures_window_seconds: float = Field(default=60.0, gt=0, le=86_400,
                                                description="the window those failures are counted in")
    # The raw-insert baseline of scripts/bench_http.py: never on in production.
    bench_raw_endpoint: bool = Field(default=False, description="scripts/bench_http.py's baseline; never in production")
    host: str = Field(default="127.0.0.1", description="the address `appraisal serve` listens on (--host)")
    port: int = Field(default=8000, ge=0, le=65535, description="the port `appraisal serve` listens on (--port)")
    # Tamper evidence (api/integrity/keys.py, api/cli/integrity_commands.py).
    signing_key: Path | None = Field(
        default=None, description="the Ed25519 key file that signs checkpoints (default: "
                                  "$XDG_CONFIG_HOME/appraisal-ledger/signing.key, ~/.config/… without it)")
    config_home: Path | None = Field(
        default=None, validation_alias=AliasChoices("XDG_CONFIG_HOME", "config_home"),
        description="XDG_CONFIG_HOME (no prefix): where the signing key lives unless APPRAISAL_SIGNING_KEY says")
    checkpoint_dir: Path = Field(default=Path("checkpoints"),
                                 description="where `appraisal import` writes a checkpoint after a publication")
    # The 公示 as an office posts it (api/pages/notice.py): who issues it and where an objection
    # goes. The publicity period is the scheme's (`publicity_working_days`), as `year.finalize` counts it.
    issuing_body: str = Field(default="绩效考核工作领导小组办公室", min_length=1, max_length=200,
                              description="the body that issues the 公示 (its signature line)")
    objection_contact: str = Field(
        default="绩效考核工作领导小组办公室（书面或当面反映，请署真实姓名）", min_length=1, max_length=500,
        description="where and how to raise an objection during the publicity period (office, telephone, address)")

    @property
    def signing_key_path(self) -> Path:
        if self.signing_key is not None:
            return self.signing_key.expanduser()
        return (self.config_home or Path.home() / ".config") / "appraisal-ledger" / "signing.key"

    @classmethod
    def variable(cls, name: str) -> str:
        """The environment variable that gives a setting (`db`: APPRAISAL_DB)."""
        field = cls.model_fields.get(name)
        if field is None:  # already a variable's name (an alias, in a validation error)
            return name
        alias = field.validation_alias
        return str(alias.choices[0]) if isinstance(alias, AliasChoices) else PREFIX + name.upper()

    def environment(self) -> dict[str, str]:
        """These settings as the environment variables that give them (what `hand_down` sets)."""
        return {self.variable(name): value if isinstance(value, str) else json.dumps(value)
                for name, value in self.model_dump(mode="json").items() if value is not None}

    def hand_down(self) -> None:
        """Put these settings in this process's environment, for the processes it starts that read
        their own settings (uvicorn's worker processes, `appraisal serve --workers N`, whose app is
        made by `api.server.app:app_from_env`): uvicorn passes them nothing else. The only place that
        writes the environment."""
        os.environ.update(self.environment())


def load(**overrides: Any) -> Settings:
    """The settings from the environment, with the overrides that are not None (a command's options).
    A value a setting may not have raises `SettingsError` naming the variable."""
    try:
        return Settings(**{name: value for name, value in overrides.items() if value is not None})
    except ValidationError as error:
        problems = "; ".join(f"{Settings.variable(str(e['loc'][0])) if e['loc'] else 'settings'}: {e['msg']}"
                             for e in error.errors())
        raise SettingsError(problems) from None
