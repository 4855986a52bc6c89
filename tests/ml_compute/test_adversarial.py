"""Milestone 5: adversaries over 20 seeds each, driving the pallet with real exact-engine runs
(tiny jobs: 5 to 9 steps of batch 8, checkpoints every 2 or 3 steps, so segments of odd length
and a shorter last one; the MLP, and the CNN on every tenth seed).

    a solver that fakes the state after any one step is challenged and slashed every time the
    verification samples that segment, and always once anyone disputes it;
    an honest solver is never slashed, and a wrong challenger loses its bond;
    a party that stops answering at any move loses by timeout;

and after every block total issuance is exactly the sum of all balances and every reserved
balance is exactly the stakes, escrowed bounties and open bonds behind it (tests/ml_compute/sim.py).
"""

from __future__ import annotations

import random

import pytest

from runtime.ml.segments import run_checkpoint_segment
from runtime.ml.state import compute_state_hash
from runtime.pallets.ml_compute.events import REASONS
from runtime.pallets.ml_compute.referee import build_training_job
from tests.ml_compute.actors import Trajectory, play_dispute
from tests.ml_compute.sim import ACCOUNTS, UNIT, Sim

ALICE, BOB, CHARLIE, DAVE, EVE = (ACCOUNTS[n] for n in ("alice", "bob", "charlie", "dave", "eve"))
SEEDS = range(20)


def setup_job(seed: int, subset, subset_info, rng: random.Random, fake_step_of=None):
    """A sim with bob solving a random tiny job, charlie and dave verifying; runs to the commit
    and the verifiers' draw. Returns (sim, solver's trajectory, honest trajectory)."""
    sim = Sim(seed=seed, datasets=[subset_info])
    steps, every = rng.choice([5, 6, 7, 9]), rng.choice([2, 3])
    model = 2 if seed % 10 == 0 else 1  # the CNN once in ten: its int8 products are slow at batch 8
    verifiers, segments = rng.choice([(1, 1), (2, 1), (1, 2)])
    sim.ok((BOB, "register_solver", {"stake": 500 * UNIT}),
           (CHARLIE, "register_verifier", {"stake": 10 * UNIT}), (DAVE, "register_verifier", {"stake": 30 * UNIT}))
    sim.ok((ALICE, "submit_job", {
        "model": model, "dataset": subset_info[0],
        "hyper": {"lr_q16": 3277, "momentum_q16": 58982, "weight_decay_q16": 0, "batch_size": 8},
        "steps": steps, "checkpoint_every": every, "bounty": 20 * UNIT,
        "verification": {"verifiers": verifiers, "segments": segments, "fee": UNIT // 2}, "deadline": 3}))
    sim.block()
    job = sim.job(0)
    assert job["solver"] == BOB
    fake_step = fake_step_of(steps) if fake_step_of else None
    solver = Trajectory(job, subset, fake_step=fake_step)
    honest = Trajectory(job, subset) if fake_step else solver
    sim.ok((BOB, "commit", solver.commit_args(0)))
    sim.block()
    return sim, solver, honest


def verify_duties(sim: Sim, subset, solver: Trajectory) -> list[tuple[bytes, int, bytes]]:
    """Each drawn verifier re-runs its segments from the committed start state: attests a match,
    returns the mismatches (verifier, segment, its own end hash) it will challenge."""
    job = sim.job(0)
    tjob = build_training_job(job)
    mismatches = []
    for duty in job["duties"]:
        for segment in duty["segments"]:
            start = solver.states[solver.checkpoint_step(segment)]
            end = compute_state_hash(run_checkpoint_segment(start, tjob, subset, segment))
            if end == solver.checkpoint_hashes[segment + 1]:
                sim.ok((duty["verifier"], "attest", solver.attest_args(0, segment)))
            else:
                mismatches.append((duty["verifier"], segment, end))
    return mismatches


@pytest.mark.parametrize("seed", SEEDS)
def test_faked_segment_is_always_caught(seed, subset, subset_info, levels):
    rng = random.Random(seed)
    sim, solver, honest = setup_job(seed, subset, subset_info, rng, fake_step_of=lambda steps: rng.randint(1, steps))
    every = sim.job(0)["checkpoint_every"]
    faked = (solver.fake_step - 1) // every
    sampled = {s for d in sim.job(0)["duties"] for s in d["segments"]}
    stake = sim.worker("Solver", BOB)["stake"]
    lock = sim.job(0)["solver_lock"]
    mismatches = verify_duties(sim, subset, solver)
    # A drawn verifier finds the fake exactly when the sample holds its segment.
    assert [m[1] for m in mismatches] == ([faked] if faked in sampled else [])
    if mismatches:
        challenger, segment, end = mismatches[0]
    else:
        challenger, segment, end = EVE, faked, honest.checkpoint_hashes[faked + 1]  # a whistleblower
    sim.ok((challenger, "challenge", {"job": 0, "segment": segment, "claimed_end_hash": end, "bond": 2 * UNIT}))
    resolved = play_dispute(sim, 0, solver, honest, levels)
    assert resolved["winner"] == ("Challenger", None)
    assert resolved["reason"] in (REASONS["referee"], REASONS["final_state"])
    assert sim.job(0)["status"] == ("Rejected", None)
    assert sim.worker("Solver", BOB)["stake"] == stake - lock
    # Honest verifiers attested only segments that were not proven wrong: never slashed.
    assert not sim.events_named("VerifierSlashed")


@pytest.mark.parametrize("seed", SEEDS)
def test_honest_solver_is_never_slashed_and_a_wrong_challenger_loses_its_bond(seed, subset, subset_info, levels):
    rng = random.Random(1000 + seed)
    sim, solver, honest = setup_job(seed, subset, subset_info, rng)
    assert verify_duties(sim, subset, solver) == []
    n_segments = sim.job(0)["commitment"]["n_checkpoints"] - 1
    segment = rng.randrange(n_segments)
    bond = rng.randint(1, 5) * UNIT
    eve_total = sim.account(EVE).free
    sim.ok((EVE, "challenge", {"job": 0, "segment": segment, "claimed_end_hash": rng.randbytes(32), "bond": bond}))
    resolved = play_dispute(sim, 0, solver, honest, levels, answers=lambda _d: rng.random() < 0.5)
    assert resolved["winner"] == ("Solver", None) and resolved["slashed"] == bond
    assert sim.account(EVE).free == eve_total - bond and sim.account(EVE).reserved == 0
    sim.wait_until(sim.job(0)["challenge_end"])
    assert sim.job(0)["status"] == ("Settled", None)
    assert sim.worker("Solver", BOB)["stake"] == 500 * UNIT
    assert not sim.events_named("SolverTimedOut")


@pytest.mark.parametrize("seed", SEEDS)
def test_a_party_that_stops_answering_loses_by_timeout(seed, subset, subset_info, levels):
    rng = random.Random(2000 + seed)
    sim, solver, honest = setup_job(seed, subset, subset_info, rng)
    n_segments = sim.job(0)["commitment"]["n_checkpoints"] - 1
    sim.ok((EVE, "challenge", {"job": 0, "segment": rng.randrange(n_segments), "claimed_end_hash": b"\x01" * 32,
                               "bond": 2 * UNIT}))
    stop_after = rng.randrange(4)  # moves played before someone stops
    moves = 0
    while (dispute := sim.dispute(0)) is not None and moves < stop_after:
        phase = dispute["phase"][0]
        if phase == "AwaitReveal":
            sim.ok((BOB, "reveal_segment", solver.reveal_args(0, dispute["segment"])))
        elif phase == "AwaitMidpoint":
            sim.ok((BOB, "bisect", {"job": 0, "mid_hash": solver.hashes[dispute["mid_step"]]}))
        elif phase == "AwaitAnswer":
            sim.ok((EVE, "answer", {"job": 0, "agree": dispute["mid_hash"] == honest.hashes[dispute["mid_step"]]}))
        else:
            break  # at the referee: nobody submits
        moves += 1
    dispute = sim.dispute(0)
    assert dispute is not None
    waiting_for_solver = dispute["phase"][0] != "AwaitAnswer"
    sim.wait_until(dispute["deadline"])
    resolved = sim.events_named("DisputeResolved")[-1]
    assert resolved["reason"] == REASONS["timeout"]
    assert resolved["winner"] == (("Challenger", None) if waiting_for_solver else ("Solver", None))
    assert sim.job(0)["status"] == (("Rejected", None) if waiting_for_solver else ("Verifying", None))
