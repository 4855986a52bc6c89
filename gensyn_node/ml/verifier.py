"""The verifier core: fetch a segment's start checkpoint, re-run the segment with the exact
engine, and compare the end state's hash with the solver's committed one, bit for bit.

Runs in a worker process (`gensyn-node verify-segment`; later spawned by `gensyn-node
verifier`). The start bytes come from a training directory or from a node
(`mlcompute_getCheckpoint`) and must hash to the committed checkpoint before anything runs.
A lazy verifier (`lazy=True`, the `--cheat lazy` mode) claims a match without fetching or
re-running anything: the verifier's dilemma in one flag, for tests and the demo.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runtime.ml.data import Dataset
from runtime.ml.errors import MlError
from runtime.ml.job import TrainingJob
from runtime.ml.segments import run_checkpoint_segment
from runtime.ml.state import compute_state_hash, decode_state_checked

MATCH, MISMATCH, UNAVAILABLE = "match", "mismatch", "unavailable"

Fetch = Callable[[bytes], bytes | None]


@dataclass(frozen=True, slots=True)
class Verdict:
    segment: int
    result: str  # match, mismatch (the solver's claim is wrong), unavailable (no start state)
    expected: bytes
    got: bytes | None
    seconds: float
    reason: str = ""
    lazy: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"segment": self.segment, "result": self.result, "expected": self.expected.hex(),
                               "got": None if self.got is None else self.got.hex(),
                               "seconds": round(self.seconds, 3)}
        if self.reason:
            out["reason"] = self.reason
        if self.lazy:
            out["lazy"] = True
        return out


def verify_segment_from(fetch: Fetch, job: TrainingJob, dataset: Dataset, index: int, hashes: list[bytes],
                        *, device: str = "cpu", lazy: bool = False) -> Verdict:
    """Check segment `index` of a run committed as `hashes` (checkpoint 0..n), fetching its
    start state with `fetch(hash)`."""
    if not 0 <= index < len(hashes) - 1:
        raise ValueError(f"segment {index} outside 0..{len(hashes) - 2}")
    expected = hashes[index + 1]
    if lazy:
        return Verdict(index, MATCH, expected, expected, 0.0, "attested without re-running", lazy=True)
    data = fetch(hashes[index])
    if data is None:
        return Verdict(index, UNAVAILABLE, expected, None, 0.0, f"start checkpoint {index} not available")
    started = time.perf_counter()
    try:
        start = decode_state_checked(data, hashes[index]).to(device)
        end = run_checkpoint_segment(start, job, dataset, index)
    except MlError as exc:
        return Verdict(index, MISMATCH, expected, None, time.perf_counter() - started, f"{type(exc).__name__}: {exc}")
    got = compute_state_hash(end)
    return Verdict(index, MATCH if got == expected else MISMATCH, expected, got, time.perf_counter() - started)
