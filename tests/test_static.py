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


def test_consensus_does_not_import_the_node():
    """DESIGN §6: consensus/ is logic over the runtime; the node injects keys, records and clock."""
    import ast

    offenders = []
    for path in sorted((ROOT / "consensus").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("gensyn_node", "p2p")]
    assert offenders == []


def test_runtime_does_no_io():
    """runtime/__init__.py's promise: no I/O, no clock, no threads, no unseeded randomness in the
    state machine. What needs them (compiling the engine's C loops, timing the product route,
    loading data) lives in the node and is injected (runtime/ml/accel.py)."""
    import ast

    banned = {"os", "subprocess", "ctypes", "time", "socket", "threading", "shutil", "tempfile", "pathlib",
              "random", "secrets", "plyvel", "platform", "asyncio", "trio", "datetime", "multiprocessing",
              "concurrent", "io", "urllib", "logging", "gensyn_node", "p2p"}
    offenders = []
    for path in sorted((ROOT / "runtime").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in banned]
    assert offenders == []
