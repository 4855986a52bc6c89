"""The solver's `--cheat` modes, for tests and the demo: each is a segment runner that stands in
for `run_segment` and returns a wrong end state in its own way, so that verification has real
fraud to catch.

- `fake-segment[:I]`: segment I's end state is the honest one with one master value moved by a
  single grid step (the smallest fraud there is), so the lie is in the segment's last step;
  every later segment is trained honestly from the fake state, so only segment I fails
  re-execution.
- `skip-steps[:K]`: every K-th step is skipped (the step counter still advances), as a solver
  that saves compute would; every segment fails.
- `other-data`: trains on batches of another seed, as a solver that picks its own data would.

The lazy verifier's mode lives with the verifier core (`verifier.py`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from runtime.hashing import blake2_256
from runtime.ml.data import Dataset, get_batch
from runtime.ml.engine import apply_train_step_
from runtime.ml.job import TrainingJob
from runtime.ml.segments import SegmentRunner, StepCallback, run_segment
from runtime.ml.state import TrainState

CHEAT_MODES = ("fake-segment", "skip-steps", "other-data")


class CheatError(ValueError):
    """An unknown `--cheat` mode or a bad argument to one."""


def fake_segment(index: int) -> SegmentRunner:
    def run(state: TrainState, job: TrainingJob, dataset: Dataset, first: int, n: int,
            on_step: StepCallback | None) -> TrainState:
        end = run_segment(state, job, dataset, first, n, on_step)
        # Any run that ends on checkpoint index+1 is faked there, so that the whole segment at
        # once and a step-by-step replay (the solver's bisection answers) tell the same lie.
        if first < job.get_checkpoint_step(index + 1) == first + n:
            end.params[0] += 1 if end.params[0] < 0 else -1  # one grid step, inside the bound
        return end

    return run


def skip_steps(every: int) -> SegmentRunner:
    if every < 2:
        raise CheatError("skip-steps needs K >= 2 (skip every K-th step)")

    def run(state: TrainState, job: TrainingJob, dataset: Dataset, first: int, n: int,
            on_step: StepCallback | None) -> TrainState:
        out = state.clone()
        device = out.params.device
        for step in range(first, first + n):
            if step % every == every - 1:
                out.step += 1
                continue
            images, labels = get_batch(dataset, job.seed, step, job.hyper.batch_size)
            metrics = apply_train_step_(out, images.to(device), labels.to(device), job.hyper)
            if on_step is not None:
                on_step(step, metrics)
        return out

    return run


def other_data(seed: bytes | None = None) -> SegmentRunner:
    def run(state: TrainState, job: TrainingJob, dataset: Dataset, first: int, n: int,
            on_step: StepCallback | None) -> TrainState:
        other = dataclasses.replace(job, seed=seed or blake2_256(b"other-data" + job.seed))
        return run_segment(state, other, dataset, first, n, on_step)

    return run


def parse_cheat(text: str, job: TrainingJob) -> SegmentRunner:
    """`MODE[:ARG]` -> its segment runner. fake-segment defaults to the middle segment."""
    mode, _, arg = text.partition(":")
    builders: dict[str, Callable[[], SegmentRunner]] = {
        "fake-segment": lambda: fake_segment(_int_arg(arg, (job.n_checkpoints - 1) // 2, mode)),
        "skip-steps": lambda: skip_steps(_int_arg(arg, 2, mode)),
        "other-data": lambda: other_data(blake2_256(arg.encode()) if arg else None),
    }
    if mode not in builders:
        raise CheatError(f"unknown cheat mode {mode!r}; one of {', '.join(CHEAT_MODES)}")
    runner = builders[mode]()
    if mode == "fake-segment":
        index = _int_arg(arg, (job.n_checkpoints - 1) // 2, mode)
        if not 0 <= index < job.n_checkpoints - 1:
            raise CheatError(f"fake-segment:{index}: the job has segments 0..{job.n_checkpoints - 2}")
    return runner


def _int_arg(arg: str, default: int, mode: str) -> int:
    if not arg:
        return default
    try:
        return int(arg)
    except ValueError:
        raise CheatError(f"{mode}: {arg!r} is not an integer") from None
