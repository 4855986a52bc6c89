"""The code's own rules (STYLE.md 11): ruff clean everywhere, mypy clean on the pure runtime and
on consensus, where a type error is a consensus bug waiting to happen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_ruff_is_clean():
    run = subprocess.run([str(BIN / "ruff"), "check", "-q", "--output-format", "concise", "."], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_mypy_is_clean_on_runtime_and_consensus():
    run = subprocess.run([sys.executable, "-m", "mypy", "runtime", "consensus"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
