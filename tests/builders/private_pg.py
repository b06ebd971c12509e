"""A PostgreSQL server of one test's own, for a test that restarts it (tests/integration/test_faults.py):
the shared server of scripts/test must stay up for the tests running beside it. Started as
scripts/lib/pg.sh starts that one (initdb in a temp dir, as user postgres when run as root, on a
free 127.0.0.1 port), stopped at the end whatever happens.

Without PostgreSQL's server binaries the test is skipped, unless APPRAISAL_REQUIRE_PG=1, where it
fails (CI must never pass by skipping it)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import REQUIRE_PG_ENV


def pg_bin() -> Path | None:
    """The directory of initdb and pg_ctl: $PG_BIN, PostgreSQL 15's, pg_config's, any other (newest first)."""
    candidates = [os.environ.get("PG_BIN", ""), "/usr/lib/postgresql/15/bin"]
    if shutil.which("pg_config"):
        result = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(result.stdout.strip())
    others = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _major(p.parent.name), reverse=True)
    candidates += [str(p) for p in others]
    for candidate in candidates:
        if candidate and all(os.access(Path(candidate) / name, os.X_OK) for name in ("initdb", "pg_ctl")):
            return Path(candidate)
    return None


def _major(name: str) -> int:
    return int(name) if name.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateServer:
    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir, self.root = bindir, root
        self.data, self.log = root / "data", root / "server.log"
        self.port = 0
        self.as_root = os.geteuid() == 0

    def run(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        """A server program, as user postgres when we are root (PostgreSQL refuses to run as root)."""
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, cwd=self.root, capture_output=True, text=True, timeout=timeout, check=False)

    def pg_ctl(self, *args: str) -> None:
        result = self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", *args)
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed: {result.stderr}\n{self.tail()}")

    def tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    def init(self) -> None:
        for locale in ("C.UTF-8", "C"):
            result = self.run("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres",
                              "--encoding=UTF8", f"--locale={locale}", "--no-sync")
            if result.returncode == 0:
                break
            shutil.rmtree(self.data, ignore_errors=True)
        else:
            raise RuntimeError(f"initdb failed: {result.stderr}")
        # Commits are acknowledged only once written (synchronous_commit stays on): what a client
        # was told is recorded must survive the restart.
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.root}'\n"
                       "max_connections = 100\nfsync = off\nfull_page_writes = off\n")

    def start(self) -> None:
        for attempt in range(3):  # the port was free when we looked; someone may take it first
            self.port = _free_port()
            try:
                self.pg_ctl("-o", f"-p {self.port}", "start")
                return
            except RuntimeError:
                self.stop()
                if attempt == 2:
                    raise

    def restart(self) -> None:
        """A fast restart: open transactions are rolled back, every connection is dropped."""
        self.pg_ctl("-m", "fast", "-o", f"-p {self.port}", "restart")

    def started_at(self) -> Any:
        """When the server (postmaster) started: a restart moves it on."""
        with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=10) as conn:
            row = conn.execute("SELECT pg_postmaster_start_time()").fetchone()
        assert row is not None
        return row[0]

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30", "stop")

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"


@contextmanager
def private_postgres(dbname: str = "appraisal") -> Iterator[PrivateServer]:
    """A private PostgreSQL server with an empty database `dbname`; stopped and removed afterwards."""
    bindir = pg_bin()
    if bindir is None:
        if os.environ.get(REQUIRE_PG_ENV) == "1":
            pytest.fail(f"{REQUIRE_PG_ENV}=1 but PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed; scripts/test installs them")
    root = Path(tempfile.mkdtemp(prefix="appraisal-pg-private."))
    server = PrivateServer(bindir, root)
    try:
        if server.as_root:
            shutil.chown(root, "postgres")
        server.init()
        server.start()
        with psycopg.connect(server.url("postgres"), autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
