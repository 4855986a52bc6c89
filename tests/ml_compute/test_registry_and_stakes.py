"""Milestone 1 of the pallet: the registries, submit and cancel with the bounty in escrow,
solver and verifier registration with stake, unbonding, and every rejection named and
without effect (assert_noop)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from runtime.context import BlockContext
from runtime.frame import DispatchError
from runtime.ml.engine import init_state
from runtime.ml.errors import ExactnessBoundError, HyperParameterError
from runtime.ml.job import HyperParams, validate_hyper
from runtime.ml.models import MODELS, count_params
from runtime.ml.state import encode_state
from runtime.pallets.ml_compute import registry
from runtime.pallets.ml_compute import storage as ml
from runtime.pallets.ml_compute.draws import compute_min_solver_stake
from runtime.pallets.ml_compute.errors import ERRORS
from runtime.pallets.ml_compute.jobs import is_valid_hyper
from runtime.pallets.ml_compute.registry import ARCHITECTURE_FACTS, MNIST_ROOT
from runtime.params import ChainParameters
from runtime.storage import MemoryState
from tests.ml_compute.sim import ACCOUNTS, UNIT

ALICE, BOB, CHARLIE, DAVE, EVE = (ACCOUNTS[n] for n in ("alice", "bob", "charlie", "dave", "eve"))
HYPER = {"lr_q16": 3277, "momentum_q16": 58982, "weight_decay_q16": 0, "batch_size": 8}


def job_args(dataset_root: bytes, **over) -> dict:
    args = {"model": 1, "dataset": dataset_root, "hyper": dict(HYPER), "steps": 12, "checkpoint_every": 4,
            "bounty": 30 * UNIT, "verification": {"verifiers": 1, "segments": 1, "fee": UNIT}, "deadline": 5}
    args.update(over)
    return args


def test_architecture_facts_match_the_engine():
    for model_id, spec in MODELS.items():
        facts = ARCHITECTURE_FACTS[model_id]
        assert (facts.name, facts.spec_hash, facts.n_params) == (spec.name, spec.spec_hash, count_params(spec))
        assert facts.state_bytes == len(encode_state(init_state(spec, bytes(32))))


def test_pallet_hyper_bounds_match_the_engine():
    for lr in (0, 1, 65536, 65537):
        for momentum in (0, 65535, 65536):
            for wd in (0, 4096, 4097):
                for batch in (0, 1, 3, 64, 1024, 2048):
                    h = {"lr_q16": lr, "momentum_q16": momentum, "weight_decay_q16": wd, "batch_size": batch}
                    try:
                        validate_hyper(HyperParams(**h))
                        engine_ok = True
                    except (HyperParameterError, ExactnessBoundError):
                        engine_ok = False
                    assert is_valid_hyper(h) == engine_ok, h


def test_genesis_registers_models_and_mnist(sim, subset_info):
    arch = ml.Architectures.get(sim.state, 1)
    assert arch["name"] == b"mlp" and arch["state_bytes"] == 3256546
    # 3.26 MB of MLP state leaves room for a batch of 512 MNIST samples with proofs in 4 MiB.
    assert arch["max_batch"] == 512
    # The CNN's step, not its 294 KB state, bounds it: at 128 samples it would outweigh a block.
    assert ml.Architectures.get(sim.state, 2)["max_batch"] == 64
    assert ml.Datasets.get(sim.state, MNIST_ROOT)["n_samples"] == 60000
    assert ml.Datasets.get(sim.state, subset_info[0])["n_samples"] == 256


def test_a_model_whose_referee_input_does_not_fit_is_refused():
    ctx = BlockContext(MemoryState(), ChainParameters())
    huge = replace(ARCHITECTURE_FACTS[1], model_id=9, name="huge", state_bytes=5 * 1024 * 1024)
    with pytest.raises(DispatchError) as info:
        registry.apply_register_architecture(ctx, huge)
    assert info.value.error == ERRORS("ModelTooLarge").error
    heavy = replace(ARCHITECTURE_FACTS[2], model_id=10, name="heavy", macs_per_sample=10**13)
    with pytest.raises(DispatchError) as info:
        registry.apply_register_architecture(ctx, heavy)
    assert info.value.error == ERRORS("ModelTooLarge").error
    registry.apply_register_architecture(ctx, ARCHITECTURE_FACTS[2])  # the real one fits


def test_register_architecture_and_dataset_need_root(sim):
    sim.fails((ALICE, "register_architecture", {"model": 1}), "BadOrigin")
    sim.fails((None, "register_architecture", {"model": 1}), "AlreadyRegisteredModel")
    sim.fails((None, "register_architecture", {"model": 77}), "UnknownModel")
    ds = {"root": b"\x07" * 32, "name": b"tiny", "n_samples": 100, "sample_bytes": 784, "n_classes": 10}
    sim.fails((ALICE, "register_dataset", ds), "BadOrigin")
    sim.fails((None, "register_dataset", {**ds, "n_samples": 0}), "InvalidDataset")
    sim.ok((None, "register_dataset", ds))
    assert ml.Datasets.get(sim.state, b"\x07" * 32)["n_samples"] == 100
    sim.fails((None, "register_dataset", ds), "AlreadyRegisteredModel")


def test_submit_reserves_the_bounty_and_cancel_refunds_it(sim, subset_info):
    free = sim.account(ALICE).free
    sim.ok((ALICE, "submit_job", job_args(subset_info[0])))
    job = sim.job(0)
    assert job["status"] == ("Pending", None) and job["bounty"] == 30 * UNIT
    assert sim.account(ALICE).reserved == 30 * UNIT and sim.account(ALICE).free == free - 30 * UNIT
    (submitted,) = sim.events_named("JobSubmitted")
    # 3 segments, 1 sampled: the solver stakes 3 bounties.
    assert submitted["min_solver_stake"] == 90 * UNIT
    sim.fails((BOB, "cancel_job", {"job": 0}), "NotSubmitter")
    sim.fails((ALICE, "cancel_job", {"job": 5}), "JobNotFound")
    sim.ok((ALICE, "cancel_job", {"job": 0}))
    assert sim.job(0)["status"] == ("Cancelled", None)
    assert sim.account(ALICE).reserved == 0 and sim.account(ALICE).free == free
    sim.fails((ALICE, "cancel_job", {"job": 0}), "JobNotPending")


@pytest.mark.parametrize("over, error", [
    ({"model": 5}, "UnknownModel"),
    ({"dataset": b"\x09" * 32}, "UnknownDataset"),
    ({"hyper": {**HYPER, "batch_size": 6}}, "InvalidJob"),
    ({"hyper": {**HYPER, "lr_q16": 0}}, "InvalidJob"),
    ({"hyper": {**HYPER, "momentum_q16": 1 << 16}}, "InvalidJob"),
    ({"hyper": {**HYPER, "batch_size": 512}}, "InvalidJob"),  # larger than the 256-sample set
    ({"steps": 0}, "InvalidJob"),
    ({"steps": 2_000_000}, "InvalidJob"),
    ({"checkpoint_every": 13}, "InvalidJob"),
    ({"checkpoint_every": 0}, "InvalidJob"),
    ({"steps": 2000, "checkpoint_every": 1}, "InvalidJob"),  # 2,000 segments > 1,024
    ({"deadline": 0}, "InvalidJob"),
    ({"verification": {"verifiers": 0, "segments": 1, "fee": 0}}, "InvalidJob"),
    ({"verification": {"verifiers": 1, "segments": 0, "fee": 0}}, "InvalidJob"),
    ({"bounty": 1}, "BountyTooLow"),
    ({"verification": {"verifiers": 2, "segments": 2, "fee": 11 * UNIT}}, "FeesExceedBounty"),
    ({"bounty": 10**21}, "InsufficientBalance"),
])
def test_submit_rejects_bad_jobs_without_effect(sim, subset_info, over, error):
    sim.fails((ALICE, "submit_job", job_args(subset_info[0], **over)), error)


def test_submit_refuses_a_referee_input_that_does_not_fit(sim):
    # An MLP step of 1,024 MNIST samples: 3.26 MB of state + 1.3 MB of batch and proofs > 4 MiB.
    sim.fails((ALICE, "submit_job", job_args(MNIST_ROOT, hyper={**HYPER, "batch_size": 1024})), "RefereeInputTooLarge")
    sim.ok((ALICE, "submit_job", job_args(MNIST_ROOT, hyper={**HYPER, "batch_size": 512})))
    sim.fails((ALICE, "submit_job", job_args(MNIST_ROOT, model=2, hyper={**HYPER, "batch_size": 128})), "RefereeInputTooLarge")
    sim.ok((ALICE, "submit_job", job_args(MNIST_ROOT, model=2, hyper={**HYPER, "batch_size": 64})))


def test_register_and_unregister_with_unbonding_delay(sim):
    free = sim.account(BOB).free
    sim.fails((BOB, "register_solver", {"stake": UNIT - 1}), "StakeTooLow")
    sim.fails((BOB, "register_solver", {"stake": 10**21}), "InsufficientBalance")
    sim.ok((BOB, "register_solver", {"stake": 100 * UNIT}), (BOB, "register_verifier", {"stake": 5 * UNIT}))
    assert sim.account(BOB).reserved == 105 * UNIT
    assert ml.SolverSet.get(sim.state) == [BOB] and ml.VerifierSet.get(sim.state) == [BOB]
    sim.fails((BOB, "register_solver", {"stake": 100 * UNIT}), "AlreadyRegistered")
    sim.fails((CHARLIE, "unregister", {"role": "Solver"}), "NotRegistered")
    sim.ok((BOB, "unregister", {"role": "Solver"}))
    until = sim.worker("Solver", BOB)["unbonding_until"]
    assert until == sim.number + 4 and ml.SolverSet.get(sim.state) == []
    sim.fails((BOB, "unregister", {"role": "Solver"}), "NotRegistered")
    sim.fails((BOB, "register_solver", {"stake": 100 * UNIT}), "AlreadyRegistered")  # still unbonding
    sim.wait_until(until - 1)
    assert sim.account(BOB).reserved == 105 * UNIT
    sim.block()
    assert sim.worker("Solver", BOB) is None and sim.account(BOB).reserved == 5 * UNIT
    assert sim.events_named("Unbonded")[-1] == {"who": BOB, "role": ("Solver", None), "amount": 100 * UNIT}
    assert sim.account(BOB).free == free - 5 * UNIT


def test_min_solver_stake_is_bounty_over_detection_probability():
    assert compute_min_solver_stake(100, 10, 1, 1, 0) == 1000  # p = 1/10
    assert compute_min_solver_stake(100, 10, 2, 3, 0) == 167  # p = 6/10, rounded up
    assert compute_min_solver_stake(100, 4, 3, 3, 0) == 100  # every segment sampled
    assert compute_min_solver_stake(100, 10, 1, 1, 5000) == 5000  # the floor


@pytest.mark.parametrize("step", [0, 127, 128, 199, 70_000, 1 << 40])
def test_referee_weight_names_the_model_at_any_step(step):
    """A state's header grows with its step count (msgpack): a referee of step 199 must still be
    weighed as the MLP's step, not as the costliest model per byte (which exceeds any block)."""
    from runtime.ml.engine import init_state
    from runtime.ml.models import MLP
    from runtime.ml.state import encode_state
    from runtime.pallets.ml_compute.calls import compute_referee_call_weight
    from runtime.pallets.ml_compute.registry import ARCHITECTURE_FACTS, find_architecture_by_state_bytes
    from runtime.params import ChainParameters

    state = init_state(MLP, b"\x07" * 32)
    state.step = step
    pre_state = encode_state(state)
    assert find_architecture_by_state_bytes(len(pre_state)) == ARCHITECTURE_FACTS[MLP.model_id]
    weight = compute_referee_call_weight(0, pre_state, bytes(64 * 784), bytes(64), [[bytes(32)] * 16] * 64)
    assert weight <= ChainParameters().max_block_weight
