"""Registries, job validation and every bad-input case: each is rejected with a named error."""

from __future__ import annotations

import dataclasses

import pytest

from runtime.ml.data import get_dataset_spec
from runtime.ml.engine import init_state
from runtime.ml.errors import (
    ExactnessBoundError,
    HyperParameterError,
    StepRangeError,
    UnknownArchitectureError,
    UnknownDatasetError,
)
from runtime.ml.job import MAX_STEPS, HyperParams, TrainingJob, validate_job
from runtime.ml.models import CNN, MASTER_BOUND_BITS, MLP, count_params, get_model, init_params
from runtime.ml.segments import initial_state, run_segment

GOOD = TrainingJob(MLP.model_id, b"\x11" * 32, b"\x22" * 32, HyperParams(), steps=100, checkpoint_every=10)


def test_registry_ids_names_and_specs():
    assert get_model("mlp") is MLP and get_model(2) is CNN
    assert MLP.spec_hash != CNN.spec_hash and len(MLP.spec_hash) == 32
    assert MLP.encode() == get_model(1).encode()
    assert count_params(MLP) == 784 * 256 + 256 + 256 * 10 + 10


@pytest.mark.parametrize("key", ["resnet", 99, 0, "MLP"])
def test_unknown_architecture(key):
    with pytest.raises(UnknownArchitectureError):
        get_model(key)
    with pytest.raises(UnknownArchitectureError):
        validate_job(dataclasses.replace(GOOD, model_id=key if isinstance(key, int) else 77))


def test_unknown_dataset():
    with pytest.raises(UnknownDatasetError):
        get_dataset_spec("cifar10")
    with pytest.raises(UnknownDatasetError):
        get_dataset_spec(b"\x00" * 32)


def test_init_is_deterministic_and_bounded():
    a, b = init_params(MLP, b"s" * 32), init_params(MLP, b"s" * 32)
    c = init_params(MLP, b"t" * 32)
    assert a.equal(b) and not a.equal(c)
    w = a[: 784 * 256]
    bound = 2**64 // 784
    assert (w * w).max().item() <= bound and w.abs().max().item() < 2**MASTER_BOUND_BITS
    assert a[784 * 256 : 784 * 256 + 256].abs().max().item() == 0  # biases start at zero


@pytest.mark.parametrize(
    "hyper",
    [
        HyperParams(lr_q16=0),
        HyperParams(lr_q16=-5),
        HyperParams(momentum_q16=65536),
        HyperParams(momentum_q16=-1),
        HyperParams(weight_decay_q16=5000),
        HyperParams(batch_size=48),
        HyperParams(batch_size=0),
        HyperParams(batch_size=4096),
        HyperParams(lr_q16=0.5),  # type: ignore[arg-type]
    ],
)
def test_out_of_range_hyper_parameters(hyper):
    with pytest.raises(HyperParameterError):
        validate_job(dataclasses.replace(GOOD, hyper=hyper))


def test_learning_rate_breaking_the_bound():
    """lr > 1 would make lr·m exceed 2^53 for momentum at its clamp."""
    with pytest.raises(ExactnessBoundError):
        validate_job(dataclasses.replace(GOOD, hyper=HyperParams(lr_q16=65537)))
    validate_job(dataclasses.replace(GOOD, hyper=HyperParams(lr_q16=65536)))


def test_step_counts():
    with pytest.raises(ExactnessBoundError):
        validate_job(dataclasses.replace(GOOD, steps=MAX_STEPS + 1, checkpoint_every=1))
    for steps, every in [(0, 1), (10, 0), (10, 11), (-3, 1)]:
        with pytest.raises(HyperParameterError):
            validate_job(dataclasses.replace(GOOD, steps=steps, checkpoint_every=every))


def test_bad_seed_and_dataset_id():
    with pytest.raises(HyperParameterError):
        validate_job(dataclasses.replace(GOOD, seed=b"short"))
    with pytest.raises(HyperParameterError):
        validate_job(dataclasses.replace(GOOD, dataset_id=b"\x00" * 31))


def test_segment_outside_the_job(subset, make_job):
    job = make_job(subset, steps=4, every=2)
    state = initial_state(job)
    with pytest.raises(StepRangeError):
        run_segment(state, job, subset, 1, 1)  # the state is at step 0
    with pytest.raises(StepRangeError):
        run_segment(state, job, subset, 0, 5)  # past the job's last step
    cnn_state = init_state(CNN, job.seed)
    with pytest.raises(StepRangeError):
        run_segment(cnn_state, job, subset, 0, 1)  # another model's state
