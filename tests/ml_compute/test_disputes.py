"""Milestone 3: challenges with bonds, the bisection game with runtime-computed midpoints and
per-move deadlines, the referee's recomputation of one step from a proven pre-state and a
Merkle-proven batch, and the slashing of the side that lied (part to the winner, the rest
burned), with real exact-engine runs on a 256-sample MNIST subset."""

from __future__ import annotations

import pytest

from runtime.hashing import blake2_256
from runtime.ml.state import encode_state
from runtime.pallets.ml_compute.events import REASONS
from tests.ml_compute.actors import Trajectory, play_dispute, tamper
from tests.ml_compute.sim import ACCOUNTS, UNIT
from tests.ml_compute.test_lifecycle import job_args

ALICE, BOB, CHARLIE, DAVE, EVE = (ACCOUNTS[n] for n in ("alice", "bob", "charlie", "dave", "eve"))
EVERY_SEGMENT = {"verifiers": 1, "segments": 3, "fee": UNIT}  # charlie is drawn for all 3 segments


def committed(sim, subset, root, fake_step=None, fake_initial=False, commit_over=None, verification=EVERY_SEGMENT,
              **job_over):
    """Bob solves a job (faking the state after `fake_step`, or checkpoint 0), commits, and the
    verifiers are drawn; returns (solver's trajectory, honest trajectory)."""
    sim.ok((BOB, "register_solver", {"stake": 100 * UNIT}), (CHARLIE, "register_verifier", {"stake": 10 * UNIT}))
    sim.ok((ALICE, "submit_job", job_args(root, verification=verification, **job_over)))
    sim.block()
    job = sim.job(0)
    solver = Trajectory(job, subset, fake_step=fake_step, fake_initial=fake_initial)
    honest = solver if fake_step is None and not fake_initial else Trajectory(job, subset)
    sim.ok((BOB, "commit", {**solver.commit_args(0), **(commit_over or {})}))
    sim.block()
    assert sim.job(0)["status"] == ("Verifying", None)
    return solver, honest


def test_faked_step_is_bisected_refereed_and_slashed(sim, subset, subset_info, levels):
    solver, honest = committed(sim, subset, subset_info[0], fake_step=6)  # inside segment 1 (steps 4..8)
    assert solver.hashes[:6] == honest.hashes[:6] and solver.hashes[6] != honest.hashes[6]
    # Charlie attests every segment without re-running them (the lazy verifier).
    sim.ok(*[(CHARLIE, "attest", solver.attest_args(0, s)) for s in range(3)])
    issuance, eve_free, bob_stake = sim.issuance(), sim.account(EVE).free, sim.worker("Solver", BOB)["stake"]
    lock = sim.job(0)["solver_lock"]
    sim.ok((EVE, "challenge", {"job": 0, "segment": 1, "claimed_end_hash": honest.checkpoint_hashes[2], "bond": 2 * UNIT}))
    assert sim.events_named("Challenged")[-1]["by_verifier"] is False  # eve is a whistleblower
    resolved = play_dispute(sim, 0, solver, honest, levels)
    assert resolved["winner"] == ("Challenger", None) and resolved["reason"] == REASONS["referee"]
    (refereed,) = sim.events_named("StepRefereed")
    assert refereed["step"] == 5 and refereed["post_hash"] == honest.hashes[6] and not refereed["solver_correct"]
    assert resolved["rounds"] == 4  # reveal, 2 bisections (4..8 → 4..6 → 5..6), the referee
    # The solver loses its lock, charlie half its stake; eve gets 25% of both, the rest burns.
    assert sim.worker("Solver", BOB)["stake"] == bob_stake - lock
    assert sim.worker("Verifier", CHARLIE)["stake"] == 5 * UNIT
    assert sim.events_named("VerifierSlashed") == [{"job": 0, "verifier": CHARLIE, "amount": 5 * UNIT}]
    reward = (lock + 5 * UNIT) * 25 // 100
    assert resolved["reward"] == reward and resolved["slashed"] == lock + 5 * UNIT
    assert sim.account(EVE).free == eve_free + reward and sim.account(EVE).reserved == 0
    assert sim.issuance() == issuance - (lock + 5 * UNIT - reward)
    job = sim.job(0)
    assert job["status"] == ("Rejected", None)
    # Fees for segments 0 and 2 (not proven wrong); the rest of the bounty back to alice.
    assert sim.events_named("JobRejected") == [{"job": 0, "refunded": 28 * UNIT, "fees": 2 * UNIT}]
    assert sim.account(ALICE).reserved == 0 and sim.dispute(0) is None


def test_honest_solver_beats_a_lying_challenger(sim, subset, subset_info, levels):
    solver, honest = committed(sim, subset, subset_info[0])
    bob_free = sim.account(BOB).free
    issuance = sim.issuance()
    sim.ok((EVE, "challenge", {"job": 0, "segment": 0, "claimed_end_hash": b"\x01" * 32, "bond": 4 * UNIT}))
    resolved = play_dispute(sim, 0, solver, honest, levels, answers=lambda d: False)  # disagrees with everything
    assert resolved["winner"] == ("Solver", None) and resolved["reason"] == REASONS["referee"]
    assert sim.events_named("StepRefereed")[0]["solver_correct"] is True
    assert sim.account(EVE).reserved == 0 and sim.account(BOB).free == bob_free + UNIT  # 25% of the bond
    assert sim.issuance() == issuance - 3 * UNIT
    assert sim.worker("Solver", BOB)["stake"] == 100 * UNIT
    job = sim.job(0)
    assert job["status"] == ("Verifying", None)
    sim.wait_until(job["challenge_end"])
    assert sim.job(0)["status"] == ("Settled", None)


def test_challenging_the_solvers_own_end_hash_loses_at_once(sim, subset, subset_info, levels):
    solver, _honest = committed(sim, subset, subset_info[0])
    sim.ok((EVE, "challenge", {"job": 0, "segment": 2, "claimed_end_hash": solver.checkpoint_hashes[3], "bond": 4 * UNIT}))
    sim.ok((BOB, "reveal_segment", solver.reveal_args(0, 2)))
    assert sim.events_named("DisputeResolved")[-1]["reason"] == REASONS["no_disagreement"]


def test_faked_initial_state_loses_at_the_reveal(sim, subset, subset_info, levels):
    solver, honest = committed(sim, subset, subset_info[0], fake_initial=True)
    sim.ok((EVE, "challenge", {"job": 0, "segment": 0, "claimed_end_hash": honest.checkpoint_hashes[1], "bond": 2 * UNIT}))
    sim.ok((BOB, "reveal_segment", solver.reveal_args(0, 0)))
    resolved = sim.events_named("DisputeResolved")[-1]
    assert resolved["winner"] == ("Challenger", None) and resolved["reason"] == REASONS["initial_state"]


def test_final_hash_that_is_not_the_last_checkpoint_loses(sim, subset, subset_info, levels):
    solver, _honest = committed(sim, subset, subset_info[0], commit_over={"final_state_hash": b"\x05" * 32})
    sim.ok((EVE, "challenge", {"job": 0, "segment": 2, "claimed_end_hash": b"\x05" * 32, "bond": 2 * UNIT}))
    sim.ok((BOB, "reveal_segment", solver.reveal_args(0, 2)))
    assert sim.events_named("DisputeResolved")[-1]["reason"] == REASONS["final_state"]


def test_solver_that_stops_answering_loses_by_timeout(sim, subset, subset_info):
    solver, _honest = committed(sim, subset, subset_info[0])
    sim.ok((EVE, "challenge", {"job": 0, "segment": 1, "claimed_end_hash": b"\x01" * 32, "bond": 2 * UNIT}))
    deadline = sim.dispute(0)["deadline"]
    sim.fails((BOB, "reveal_segment", solver.reveal_args(0, 1)), "MoveTooLate", at=deadline + 1)
    sim.wait_until(deadline)
    resolved = sim.events_named("DisputeResolved")[-1]
    assert resolved["winner"] == ("Challenger", None) and resolved["reason"] == REASONS["timeout"]
    assert sim.job(0)["status"] == ("Rejected", None)


def test_challenger_that_stops_answering_loses_by_timeout(sim, subset, subset_info):
    solver, _honest = committed(sim, subset, subset_info[0])
    sim.ok((EVE, "challenge", {"job": 0, "segment": 1, "claimed_end_hash": b"\x01" * 32, "bond": 2 * UNIT}))
    sim.ok((BOB, "reveal_segment", solver.reveal_args(0, 1)))
    sim.ok((BOB, "bisect", {"job": 0, "mid_hash": solver.hashes[sim.dispute(0)["mid_step"]]}))
    sim.wait_until(sim.dispute(0)["deadline"])
    resolved = sim.events_named("DisputeResolved")[-1]
    assert resolved["winner"] == ("Solver", None) and resolved["reason"] == REASONS["timeout"]
    assert sim.job(0)["status"] == ("Verifying", None)


def test_moves_out_of_turn_or_phase_are_rejected(sim, subset, subset_info):
    solver, _honest = committed(sim, subset, subset_info[0])
    challenge = {"job": 0, "segment": 1, "claimed_end_hash": b"\x01" * 32, "bond": 2 * UNIT}
    sim.fails((BOB, "challenge", challenge), "SolverCannotChallenge")
    sim.fails((EVE, "challenge", {**challenge, "bond": UNIT - 1}), "BondTooLow")
    sim.fails((EVE, "challenge", {**challenge, "segment": 3}), "SegmentOutOfRange")
    sim.fails((EVE, "challenge", {**challenge, "job": 9}), "JobNotFound")
    sim.fails((EVE, "challenge", {**challenge, "bond": 10**21}), "InsufficientBalance")
    sim.fails((BOB, "bisect", {"job": 0, "mid_hash": bytes(32)}), "NoDispute")
    sim.ok((EVE, "challenge", challenge))
    sim.fails((DAVE, "challenge", {**challenge, "segment": 0}), "DisputeInProgress")
    sim.fails((EVE, "reveal_segment", solver.reveal_args(0, 1)), "NotYourMove")
    sim.fails((BOB, "bisect", {"job": 0, "mid_hash": bytes(32)}), "WrongPhase")
    bad = {**solver.reveal_args(0, 1), "end_hash": b"\x02" * 32}
    sim.fails((BOB, "reveal_segment", bad), "InvalidCheckpointProof")
    sim.fails((BOB, "reveal_segment", solver.reveal_args(0, 0)), "SegmentOutOfRange")
    sim.ok((BOB, "reveal_segment", solver.reveal_args(0, 1)))
    sim.fails((EVE, "bisect", {"job": 0, "mid_hash": bytes(32)}), "NotYourMove")
    sim.fails((BOB, "answer", {"job": 0, "agree": True}), "WrongPhase")
    sim.ok((BOB, "bisect", {"job": 0, "mid_hash": solver.hashes[6]}))
    sim.fails((BOB, "answer", {"job": 0, "agree": True}), "NotYourMove")
    sim.fails((EVE, "referee", {"job": 0, "pre_state": b"", "images": b"", "labels": b"", "proofs": []}), "WrongPhase")


def test_challenge_after_the_window_is_rejected(sim, subset, subset_info):
    committed(sim, subset, subset_info[0])
    end = sim.job(0)["challenge_end"]
    challenge = {"job": 0, "segment": 1, "claimed_end_hash": b"\x01" * 32, "bond": 2 * UNIT}
    sim.fails((EVE, "challenge", challenge), "ChallengeWindowClosed", at=end)
    sim.wait_until(end)
    sim.fails((EVE, "challenge", challenge), "ChallengeWindowClosed")


@pytest.fixture
def at_referee(sim, subset, subset_info, levels):
    """A dispute narrowed to step 5 (faked post-state), waiting for the referee."""
    solver, honest = committed(sim, subset, subset_info[0], fake_step=6)
    sim.ok((EVE, "challenge", {"job": 0, "segment": 1, "claimed_end_hash": honest.checkpoint_hashes[2], "bond": 2 * UNIT}))
    sim.ok((BOB, "reveal_segment", solver.reveal_args(0, 1)))
    for agree in (False, True):
        sim.ok((BOB, "bisect", {"job": 0, "mid_hash": solver.hashes[sim.dispute(0)["mid_step"]]}))
        sim.ok((EVE, "answer", {"job": 0, "agree": agree}))
    dispute = sim.dispute(0)
    assert dispute["phase"] == ("AwaitReferee", None) and dispute["lo_step"] == 5
    return solver, honest


def test_referee_rejects_inputs_that_do_not_match(sim, at_referee, levels):
    _solver, honest = at_referee
    good = honest.referee_args(0, 5, levels)
    cases = [
        ({**good, "pre_state": encode_state(honest.states[4])}, "PreStateMismatch"),
        ({**good, "pre_state": encode_state(tamper(honest.states[5]))}, "PreStateMismatch"),
        ({**good, "pre_state": good["pre_state"][:-16]}, "PreStateMismatch"),
        ({**honest.referee_args(0, 4, levels), "pre_state": good["pre_state"]}, "BatchProofInvalid"),  # step 4's batch
        ({**good, "images": bytes(len(good["images"]))}, "BatchProofInvalid"),
        ({**good, "labels": good["labels"][::-1]}, "BatchProofInvalid"),
        ({**good, "labels": good["labels"][:-1]}, "BatchMismatch"),
        ({**good, "images": good["images"][:-1]}, "BatchMismatch"),
        ({**good, "proofs": [p[:-1] for p in good["proofs"]]}, "BatchProofInvalid"),
        ({**good, "proofs": good["proofs"][:-1]}, "BatchProofInvalid"),
    ]
    for args, error in cases:
        sim.fails((EVE, "referee", args), error)
    sim.ok((EVE, "referee", good))
    assert sim.events_named("DisputeResolved")[-1]["winner"] == ("Challenger", None)


def test_undecodable_agreed_state_cannot_be_refereed_and_the_solver_loses(sim, subset, subset_info):
    solver, _honest = committed(sim, subset, subset_info[0])
    sim.ok((EVE, "challenge", {"job": 0, "segment": 1, "claimed_end_hash": b"\x01" * 32, "bond": 2 * UNIT}))
    sim.ok((BOB, "reveal_segment", solver.reveal_args(0, 1)))
    garbage = b"not a training state"
    sim.ok((BOB, "bisect", {"job": 0, "mid_hash": blake2_256(garbage)}))
    sim.ok((EVE, "answer", {"job": 0, "agree": True}))  # a careless challenger agrees
    sim.ok((BOB, "bisect", {"job": 0, "mid_hash": solver.hashes[7]}))
    sim.ok((EVE, "answer", {"job": 0, "agree": False}))
    dispute = sim.dispute(0)
    assert dispute["phase"] == ("AwaitReferee", None) and dispute["lo_hash"] == blake2_256(garbage)
    empty = {"job": 0, "pre_state": garbage, "images": b"", "labels": b"", "proofs": []}
    sim.fails((BOB, "referee", empty), "PreStateInvalid")
    sim.wait_until(dispute["deadline"])
    assert sim.events_named("DisputeResolved")[-1]["winner"] == ("Challenger", None)
