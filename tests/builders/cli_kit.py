"""What the command-line tests share: the installed `appraisal` run on a store, its console output
with rich's line wrapping undone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

APPRAISAL = Path(sys.executable).with_name("appraisal")


def appraisal(db_url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(APPRAISAL), *args], capture_output=True, text=True, cwd=cwd, timeout=120,
                          env={**os.environ, "APPRAISAL_DB": db_url})


def flat(text: str) -> str:
    """Console output with its line wrapping undone (rich wraps stderr at 80 columns)."""
    return " ".join(text.split())
