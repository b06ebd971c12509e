"""The standalone verifier an inspector runs (scripts/verify_proof.py), loaded in the test's process."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

VERIFY_PROOF = Path(__file__).resolve().parents[2] / "scripts" / "verify_proof.py"


def standalone_verifier() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_proof", VERIFY_PROOF)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
