"""What the solver and verifier daemons share: the event line, the stop signal, registration,
the per-step trace of a segment that answers bisection moves, and the referee's input.

Both daemons are processes of their own that talk to a node over JSON-RPC (chain.py); the
exact engine runs here, never in a node's event loop.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gensyn_node.ml.chain import ChainError, ChainView

if TYPE_CHECKING:
    from runtime.ml.data import Dataset
    from runtime.ml.job import TrainingJob
    from runtime.ml.segments import SegmentRunner
    from runtime.ml.state import TrainState

log = logging.getLogger(__name__)


def print_event(role: str, name: str, **fields: Any) -> None:
    """One line per event on stderr, key=value, so a person, the demo or a test can follow it."""
    text = " ".join(f"{k}={v}" for k, v in fields.items())
    print(f"{role} event={name} {text}".rstrip(), file=sys.stderr, flush=True)


class StopFlag:
    """Set by SIGINT/SIGTERM; long work raises KeyboardInterrupt at the signal, so that a
    training run stops at once and its journal (fsynced per checkpoint) stays consistent."""

    def __init__(self) -> None:
        self.stopped = False

    def install(self) -> None:
        def on_signal(_signum: int, _frame: Any) -> None:
            self.stopped = True
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def __call__(self) -> bool:
        return self.stopped


def ensure_registered(view: ChainView, role: str, stake: int, emit: Callable[..., None]) -> dict[str, Any]:
    """Register `role` with `stake` unless already registered; returns the worker record."""
    assert view.key is not None
    worker = view.get_worker(role, view.key.public)
    if worker is None:
        view.send("register_solver" if role == "Solver" else "register_verifier", {"stake": stake})
        worker = view.get_worker(role, view.key.public)
        if worker is None:
            raise ChainError(f"register_{role.lower()} with stake {stake} failed in its block "
                             f"(free balance {view.free_balance(view.key.public)})")
        emit("registered", stake=worker["stake"])
    else:
        emit("already_registered", stake=worker["stake"], locked=worker["locked"])
        if worker["stake"] < stake:
            # The pallet has no call to add stake to a registration; say so rather than pretend.
            log.warning("event=stake_below_requested stake=%d requested=%d", worker["stake"], stake)
    return worker


@dataclass
class SegmentTrace:
    """The state hash after every step of one segment, as one party ran it (`runner`, honest or
    not, one step at a time); answers bisection midpoints and rebuilds a pre-state for the referee."""

    job: TrainingJob
    dataset: Dataset
    start: TrainState
    runner: SegmentRunner
    hashes: dict[int, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from runtime.ml.state import compute_state_hash

        self.hashes[self.start.step] = compute_state_hash(self.start)

    @classmethod
    def run(cls, job: TrainingJob, dataset: Dataset, start: TrainState, runner: SegmentRunner, end_step: int,
            on_step: Callable[[int], None] | None = None) -> SegmentTrace:
        from runtime.ml.state import compute_state_hash

        trace = cls(job, dataset, start.clone(), runner)
        state = start.clone()
        for step in range(start.step, end_step):
            state = runner(state, job, dataset, step, 1, None)
            trace.hashes[step + 1] = compute_state_hash(state)
            if on_step is not None:
                on_step(step)
        return trace

    @property
    def end_hash(self) -> bytes:
        return self.hashes[max(self.hashes)]

    def state_at(self, step: int) -> TrainState:
        state = self.start.clone()
        for s in range(self.start.step, step):
            state = self.runner(state, self.job, self.dataset, s, 1, None)
        return state


def build_referee_args(job_id: int, job: TrainingJob, dataset: Dataset, pre_state: TrainState) -> dict[str, Any]:
    """The referee call's arguments: the agreed pre-state's bytes and the step's batch with a
    Merkle proof per sample against the data set's root."""
    from runtime.ml.data import build_proven_batch, compute_leaves, compute_merkle_levels
    from runtime.ml.state import encode_state

    levels = compute_merkle_levels(compute_leaves(dataset.images.numpy(), dataset.labels.numpy()))
    batch = build_proven_batch(dataset, levels, job.seed, pre_state.step, job.hyper.batch_size)
    return {"job": job_id, "pre_state": encode_state(pre_state), "images": batch.images.numpy().tobytes(),
            "labels": bytes(batch.labels.tolist()), "proofs": [list(p) for p in batch.proofs]}


def try_send(view: ChainView, emit: Callable[..., None], call: str, args: dict[str, Any]) -> bool:
    """Submit a move; a refusal (the window closed, the other side moved first) is logged, not fatal."""
    try:
        view.send(call, args)
        return True
    except ChainError as exc:
        emit("tx_failed", call=call, reason=str(exc).replace(" ", "_")[:160])
        return False
