"""The parties of a job, as tests drive them with real exact-engine runs: a solver that trains
(honestly, or faking the state after one chosen step), a verifier that re-runs its segments,
and a challenger that bisects against its own honest re-run. Each keeps the state after every
step, so it can answer any midpoint and build the referee's input for any step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runtime.ml.data import Dataset, build_proven_batch, compute_leaves, compute_merkle_levels
from runtime.ml.segments import compute_commitment, get_checkpoint_proof, initial_state, run_segment
from runtime.ml.state import TrainState, compute_state_hash, encode_state
from runtime.pallets.ml_compute.referee import build_training_job

_INITIAL: dict[tuple[int, bytes], TrainState] = {}
METRICS = {"loss_q16": 1 << 16, "train_accuracy_ppm": 500_000, "test_accuracy_ppm": 0}


def get_levels(dataset: Dataset) -> list[list[bytes]]:
    return compute_merkle_levels(compute_leaves(dataset.images.numpy(), dataset.labels.numpy()))


def tamper(state: TrainState) -> TrainState:
    """The same state with one master weight moved by one grid step."""
    out = state.clone()
    out.params[0] += 1.0
    return out


@dataclass
class Trajectory:
    """The state after every step of a job: honest, or faked after step `fake_step`."""

    job: dict[str, Any]
    dataset: Dataset
    fake_step: int | None = None
    fake_initial: bool = False
    states: list[TrainState] = field(default_factory=list)
    hashes: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        tjob = build_training_job(self.job)
        key = (tjob.model_id, tjob.seed)
        if key not in _INITIAL:  # the seeded init hashes every parameter: once per job
            if len(_INITIAL) >= 4:
                _INITIAL.clear()
            _INITIAL[key] = initial_state(tjob)
        state = _INITIAL[key].clone()
        if self.fake_initial:
            state = tamper(state)
        self.states = [state]
        for step in range(tjob.steps):
            state = run_segment(state, tjob, self.dataset, step, 1)
            if step + 1 == self.fake_step:
                state = tamper(state)
            self.states.append(state)
        self.hashes = [compute_state_hash(s) for s in self.states]

    def checkpoint_step(self, index: int) -> int:
        return min(index * self.job["checkpoint_every"], self.job["steps"])

    @property
    def checkpoint_hashes(self) -> list[bytes]:
        n = -(-self.job["steps"] // self.job["checkpoint_every"]) + 1
        return [self.hashes[self.checkpoint_step(i)] for i in range(n)]

    def commit_args(self, job_id: int) -> dict[str, Any]:
        ckpts = self.checkpoint_hashes
        return {"job": job_id, "checkpoint_root": compute_commitment(ckpts), "final_state_hash": ckpts[-1],
                "n_checkpoints": len(ckpts), "metrics": METRICS}

    def proof(self, index: int) -> list[bytes]:
        return get_checkpoint_proof(self.checkpoint_hashes, index)

    def attest_args(self, job_id: int, segment: int) -> dict[str, Any]:
        return {"job": job_id, "segment": segment, "end_state_hash": self.checkpoint_hashes[segment + 1],
                "proof": self.proof(segment + 1)}

    def reveal_args(self, job_id: int, segment: int) -> dict[str, Any]:
        ckpts = self.checkpoint_hashes
        return {"job": job_id, "segment": segment, "start_hash": ckpts[segment], "start_proof": self.proof(segment),
                "end_hash": ckpts[segment + 1], "end_proof": self.proof(segment + 1)}

    def referee_args(self, job_id: int, step: int, levels: list[list[bytes]]) -> dict[str, Any]:
        batch = build_proven_batch(self.dataset, levels, self.job["seed"], step, self.job["hyper"]["batch_size"])
        return {"job": job_id, "pre_state": encode_state(self.states[step]),
                "images": batch.images.numpy().tobytes(), "labels": bytes(batch.labels.tolist()),
                "proofs": [list(p) for p in batch.proofs]}


def play_dispute(sim: Any, job_id: int, solver: Trajectory, challenger: Trajectory, levels: list[list[bytes]],
                 answers: Any = None, referee_by: bytes | None = None) -> dict[str, Any]:
    """Play an open dispute to its end: the solver reveals and bisects from its trajectory, the
    challenger answers from its own (or from `answers(dispute) -> bool`, a liar), and at the
    last step `referee_by` (default: the solver) submits the agreed pre-state and the batch.
    Returns the DisputeResolved event."""
    job = sim.job(job_id)
    solver_acct = job["solver"]
    dispute = sim.dispute(job_id)
    challenger_acct = dispute["challenger"]
    sim.ok((solver_acct, "reveal_segment", solver.reveal_args(job_id, dispute["segment"])))
    while (dispute := sim.dispute(job_id)) is not None:
        phase = dispute["phase"][0]
        if phase == "AwaitMidpoint":
            sim.ok((solver_acct, "bisect", {"job": job_id, "mid_hash": solver.hashes[dispute["mid_step"]]}))
        elif phase == "AwaitAnswer":
            agree = answers(dispute) if answers else dispute["mid_hash"] == challenger.hashes[dispute["mid_step"]]
            sim.ok((challenger_acct, "answer", {"job": job_id, "agree": agree}))
        else:
            step = dispute["lo_step"]
            holder = solver if solver.hashes[step] == dispute["lo_hash"] else challenger
            sim.ok((referee_by or solver_acct, "referee", holder.referee_args(job_id, step, levels)))
    return sim.events_named("DisputeResolved")[-1]
