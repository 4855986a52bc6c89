"""Solver and verifier daemons as real processes for integration tests and the demo: their
event lines (stderr) collected by a reader thread, waited on with deadlines, never by sleeping."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from gensyn_node.chain_spec import dev_spec
from tests.integration.nodeproc import NODE, ROOT, kill9_process, stop_process

# Short windows (blocks) so a job settles in seconds; moves still get several blocks.
FAST_ML_CONFIG = {"attest_window": 6, "challenge_window": 8, "move_window": 8, "verify_delay": 1,
                  "assign_delay": 1, "unbonding_delay": 5}


def write_fast_spec(path: Path, validators: int = 1, slot_ms: int = 1000, **ml: int) -> Path:
    """A dev (or devnet) chain spec whose ML-compute windows are short."""
    spec = dev_spec(validators, slot_ms=slot_ms)
    spec.genesis["mlCompute"] = {"config": {**FAST_ML_CONFIG, **ml}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(spec.to_json())
    return path


class WorkerProcess:
    """`gensyn-node solver|verifier ...` with its event lines kept in `lines`."""

    def __init__(self, role: str, url: str, key: str, stake: str, *extra: str, echo: Any = None,
                 label: str | None = None) -> None:
        self.role = role
        self.label = label or role
        self.args = [*NODE, role, "--rpc", url, "--key", key, "--stake", stake, "--threads", "1", *extra]
        self.lines: list[str] = []
        self.proc: subprocess.Popen | None = None
        self.echo = echo
        self._changed = threading.Condition()
        self._eof = False

    def start(self) -> WorkerProcess:
        self.lines = []
        self._eof = False
        self.proc = subprocess.Popen(self.args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
            if self.echo is not None:
                self.echo(self.label, line.rstrip("\n"))
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    def wait_for(self, text: str, timeout: float = 120.0, after: int = 0) -> str:
        """The first line (from index `after`) containing `text`; TimeoutError if none in time."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[after:]:
                    if text in line:
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._eof:
                    raise TimeoutError(f"{self.role}: no line with {text!r}; last lines:\n" + "\n".join(self.lines[-25:]))
                self._changed.wait(min(remaining, 1.0))

    def kill9(self) -> None:
        assert self.proc is not None
        kill9_process(self.proc)

    def stop(self) -> int:
        return stop_process(self.proc, grace_s=20)


def event_fields(line: str) -> dict[str, str]:
    """`solver event=x job=0 a=b` -> {"event": "x", "job": "0", "a": "b"}."""
    return dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*NODE, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)


def last_json(text: str) -> Any:
    return json.loads(text.strip().splitlines()[-1])
