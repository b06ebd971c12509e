"""One settings object (api/settings.py): the only reader of the environment, for the command line,
the server, the worker and logging."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from api.settings import Settings, SettingsError, load
from api.store.storage import DEFAULT_DB

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_MODULE = ROOT / "api" / "settings.py"
ENVIRONMENT_NAMES = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def _environment_reads(path: Path) -> list[int]:
    """The lines of a module that touch the process environment (os.environ, os.getenv, …)."""
    return sorted(node.lineno for node in ast.walk(ast.parse(path.read_text("utf-8")))
            if (isinstance(node, ast.Attribute) and node.attr in ENVIRONMENT_NAMES)
            or (isinstance(node, ast.ImportFrom) and node.module == "os"
                and any(alias.name in ENVIRONMENT_NAMES for alias in node.names)))


def test_only_the_settings_module_reads_the_environment() -> None:
    files = [path for folder in ("api", "projections", "domain") for path in sorted((ROOT / folder).rglob("*.py"))]
    assert SETTINGS_MODULE in files
    offenders = {str(path.relative_to(ROOT)): lines for path in files
                 if path != SETTINGS_MODULE and (lines := _environment_reads(path))}
    assert offenders == {}


def test_the_scan_catches_a_reader(tmp_path: Path) -> None:
    reader = tmp_path / "reader.py"
    reader.write_text("import os\nfrom os import getenv\n\nA = os.environ.get('X')\nB = os.getenv('Y')\n"
                      "C = getenv('Z')\n")
    assert _environment_reads(reader) == [2, 4, 5]


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("APPRAISAL_") or name == "XDG_CONFIG_HOME":
            monkeypatch.delenv(name)
    return monkeypatch


def test_defaults_the_environment_and_options_in_that_order(clean: pytest.MonkeyPatch) -> None:
    assert load().db == DEFAULT_DB == "sqlite:///./appraisal.db"
    clean.setenv("APPRAISAL_DB", "sqlite:///from-env.db")
    clean.setenv("APPRAISAL_LOG_FORMAT", "json")
    assert (load().db, load().log_format) == ("sqlite:///from-env.db", "json")
    assert load(db=None).db == "sqlite:///from-env.db"  # an option not given overrides nothing
    assert load(db="sqlite:///from-option.db").db == "sqlite:///from-option.db"
    clean.setenv("APPRAISAL_DB", "")  # empty counts as unset, as it always did for the command line
    assert load().db == DEFAULT_DB


def test_a_bad_value_is_refused_naming_the_variable(clean: pytest.MonkeyPatch) -> None:
    clean.setenv("APPRAISAL_WAIT_LIMIT", "many")
    with pytest.raises(SettingsError, match="APPRAISAL_WAIT_LIMIT"):
        load()
    clean.delenv("APPRAISAL_WAIT_LIMIT")
    with pytest.raises(SettingsError, match="APPRAISAL_LOG_FORMAT"):
        load(log_format="yaml")


def test_where_the_signing_key_and_checkpoints_are(clean: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert load().signing_key_path == Path.home() / ".config" / "appraisal-ledger" / "signing.key"
    assert load().checkpoint_dir == Path("checkpoints")
    clean.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert load().signing_key_path == tmp_path / "config" / "appraisal-ledger" / "signing.key"
    clean.setenv("APPRAISAL_SIGNING_KEY", "~/keys/signing.key")
    clean.setenv("APPRAISAL_CHECKPOINT_DIR", str(tmp_path / "kept"))
    assert load().signing_key_path == Path.home() / "keys" / "signing.key"
    assert load().checkpoint_dir == tmp_path / "kept"


def test_the_settings_handed_down_are_the_settings_a_worker_process_reads(clean: pytest.MonkeyPatch) -> None:
    """`appraisal serve --workers N`: uvicorn's processes read their settings from the environment."""
    clean.setenv("XDG_CONFIG_HOME", "/srv/config")
    chosen = load(db="sqlite:///chosen.db", log_format="json", projection="none", port=8123, wait_limit=7,
                  commands_on_loop=False)
    clean.setattr(os, "environ", dict(os.environ))  # hand_down writes it: restored after the test
    chosen.hand_down()
    assert os.environ["APPRAISAL_DB"] == "sqlite:///chosen.db" and os.environ["APPRAISAL_PORT"] == "8123"
    assert Settings() == chosen


def test_every_setting_is_described() -> None:
    assert [name for name, field in Settings.model_fields.items() if not field.description] == []


def test_the_command_line_refuses_a_bad_setting(clean: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from api.cli.main import main

    clean.setenv("APPRAISAL_LOG_FORMAT", "yaml")
    clean.setattr("sys.argv", ["appraisal", "key"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    assert "APPRAISAL_LOG_FORMAT" in capsys.readouterr().err


def test_the_worker_gives_way_to_the_servers() -> None:
    """`appraisal project` runs at least `worker_nice` nice (default 10); one started nicer stays so."""
    import subprocess
    import sys

    script = ("import os\nfrom api.cli.main import give_way\nfrom api.settings import load\n"
              "give_way(load().worker_nice)\nprint(os.getpriority(os.PRIO_PROCESS, 0))")
    env = {key: value for key, value in os.environ.items() if key != "APPRAISAL_WORKER_NICE"}
    here = os.getpriority(os.PRIO_PROCESS, 0)  # a test run may itself run nice
    default = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    assert int(default.stdout) == max(10, here)
    nicer = subprocess.run(["nice", "-n", "15", sys.executable, "-c", script], capture_output=True, text=True,
                           check=True, env=env)
    assert int(nicer.stdout) == min(19, here + 15)
    chosen = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            env={**env, "APPRAISAL_WORKER_NICE": "3"})
    assert int(chosen.stdout) == max(3, here)
