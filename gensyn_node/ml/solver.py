"""The solver core: trains a TrainingJob with the exact engine, stores every checkpoint, and
resumes after a kill from the last checkpoint it stored.

Runs in a worker process of its own (`gensyn-node train`; later spawned by `gensyn-node
solver`), never inside a node's event loop: a step is milliseconds of CPU and a run is minutes.
Each checkpoint goes, in this order, to the training directory (atomic file), to the node
(`mlcompute_putCheckpoint`, when one is given), and then into the directory's journal (fsynced).
A restart reads the journal, loads the last journalled checkpoint (from the directory, else
from the node, checking its hash either way), and trains on from there: since every step is a
pure function of (state, batch), the resumed run ends on the same hash as an uninterrupted one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gensyn_node.ml.remote import NodeBlobs
from gensyn_node.ml.workdir import JournalEntry, TrainingDir, WorkDirError
from runtime.ml.data import Dataset
from runtime.ml.engine import StepMetrics
from runtime.ml.errors import StateDecodeError, StateHashMismatchError
from runtime.ml.job import TrainingJob, validate_job
from runtime.ml.segments import SegmentRunner, iter_checkpoints
from runtime.ml.state import TrainState, decode_state_checked

log = logging.getLogger(__name__)

METRICS_EVERY = 25  # steps per metrics window (windows never cross a checkpoint)

OnEvent = Callable[[str, dict[str, Any]], None]


@dataclass
class SolveResult:
    hashes: list[bytes]
    final: bytes
    resumed_from_step: int | None
    seconds: float
    metrics: list[tuple[int, float, float]] = field(default_factory=list)


class _Window:
    """Sums step metrics into windows of METRICS_EVERY steps, cut at every checkpoint."""

    def __init__(self) -> None:
        self.pending: list[tuple[int, StepMetrics]] = []
        self.closed: list[tuple[int, float, float]] = []

    def add(self, step: int, metrics: StepMetrics) -> tuple[float, float] | None:
        self.pending.append((step, metrics))
        return self._close() if len(self.pending) >= METRICS_EVERY else None

    def _close(self) -> tuple[float, float] | None:
        if not self.pending:
            return None
        count = sum(m.count for _s, m in self.pending)
        loss = sum(float(m.loss_sum) for _s, m in self.pending) / count
        acc = sum(int(m.correct) for _s, m in self.pending) / count
        self.closed.append((self.pending[-1][0], round(loss, 6), round(acc, 6)))
        self.pending.clear()
        return loss, acc

    def take(self) -> tuple[tuple[int, float, float], ...]:
        self._close()
        out, self.closed = tuple(self.closed), []
        return out


def find_resume_point(workdir: TrainingDir, job: TrainingJob, blobs: NodeBlobs | None,
                      device: str = "cpu") -> tuple[TrainState | None, list[JournalEntry]]:
    """The last journalled checkpoint that can still be loaded (directory first, then node),
    and the journal up to it; (None, []) for a fresh start."""
    entries = workdir.read_journal()
    while entries:
        last = entries[-1]
        data = workdir.read_checkpoint(last.index, last.state_hash)
        if data is None and blobs is not None:
            data = blobs.get(last.state_hash)
        if data is not None:
            try:
                state = decode_state_checked(data, last.state_hash)
            except (StateDecodeError, StateHashMismatchError) as exc:
                log.warning("event=checkpoint_unusable index=%d error=%s", last.index, exc)
            else:
                if state.step == last.step == job.get_checkpoint_step(last.index):
                    return state.to(device), entries
        log.warning("event=checkpoint_missing index=%d hash=0x%s", last.index, last.state_hash.hex()[:16])
        entries = entries[:-1]
    return None, []


def run_solver(job: TrainingJob, dataset: Dataset, workdir: TrainingDir, *, blobs: NodeBlobs | None = None,
               cheat: SegmentRunner | None = None, progress: bool = True, device: str = "cpu",
               on_event: OnEvent | None = None) -> SolveResult:
    """Train `job` into `workdir` (resuming what it holds), uploading to `blobs` when given."""
    from tqdm import tqdm

    validate_job(job)
    workdir.bind_job(job)
    emit = on_event or (lambda _name, _fields: None)
    state, entries = find_resume_point(workdir, job, blobs, device)
    if len(entries) < len(workdir.read_journal()):
        workdir.truncate_journal(entries)
    resumed = None if state is None else state.step
    if resumed is not None:
        emit("resumed", {"index": entries[-1].index, "step": resumed})
    hashes = [e.state_hash for e in entries]
    metrics = [m for e in entries for m in e.metrics]
    window = _Window()
    bar = tqdm(total=job.steps, initial=resumed or 0, unit="step", disable=not progress, dynamic_ncols=True)

    def on_step(step: int, m: StepMetrics) -> None:
        bar.update(1)
        shown = window.add(step, m)
        if shown is not None:
            bar.set_postfix(loss=f"{shown[0]:.4f}", acc=f"{shown[1]:.3f}")

    started = time.perf_counter()
    final = b""
    try:
        for cp in iter_checkpoints(job, dataset, state=state, on_step=on_step, device=device, run=cheat):
            final = cp.data
            if resumed is not None and cp.index == entries[-1].index:
                continue  # stored and journalled before the restart
            workdir.write_checkpoint(cp.index, cp.data)
            if blobs is not None:
                blobs.put(cp.data, job.job_hash, cp.index, blob_hash=cp.state_hash)
            entry = JournalEntry(cp.index, cp.step, cp.state_hash, window.take())
            workdir.append_journal(entry)
            hashes.append(cp.state_hash)
            metrics.extend(entry.metrics)
            emit("checkpoint", {"index": cp.index, "step": cp.step, "hash": "0x" + cp.state_hash.hex(),
                                "uploaded": blobs is not None})
    finally:
        bar.close()
    if len(hashes) != job.n_checkpoints:
        raise WorkDirError(f"run ended with {len(hashes)} of {job.n_checkpoints} checkpoints")
    workdir.write_hashes(hashes)
    return SolveResult(hashes, final, resumed, time.perf_counter() - started, metrics)
