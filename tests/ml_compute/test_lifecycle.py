"""Milestone 2: a job's life without disputes, with real exact-engine training: the solver draw
from later randomness (fixing the data seed), commit, the verifiers' draw and their proven
attestations, settlement in on_initialize with fees paid from the bounty, missed deadlines with
penalty and reassignment, refunds of jobs nobody finishes."""

from __future__ import annotations

from collections import Counter

from runtime.ml.segments import run_checkpoint_segment
from runtime.ml.state import compute_state_hash
from runtime.pallets.ml_compute import storage as ml
from runtime.pallets.ml_compute.draws import draw_segments, draw_weighted
from runtime.pallets.ml_compute.referee import build_training_job
from tests.ml_compute.actors import Trajectory
from tests.ml_compute.sim import ACCOUNTS, UNIT

ALICE, BOB, CHARLIE, DAVE, EVE, FERDIE = (ACCOUNTS[n] for n in ("alice", "bob", "charlie", "dave", "eve", "ferdie"))
HYPER = {"lr_q16": 3277, "momentum_q16": 58982, "weight_decay_q16": 0, "batch_size": 8}


def job_args(root: bytes, **over) -> dict:
    # 10 steps, a checkpoint every 4: segments of 4, 4 and 2 steps (the last one shorter).
    args = {"model": 1, "dataset": root, "hyper": dict(HYPER), "steps": 10, "checkpoint_every": 4,
            "bounty": 30 * UNIT, "verification": {"verifiers": 2, "segments": 1, "fee": UNIT}, "deadline": 4}
    args.update(over)
    return args


def start_job(sim, root, solvers=((BOB, 100 * UNIT),), verifiers=((CHARLIE, 10 * UNIT), (DAVE, 10 * UNIT)), **over):
    sim.ok(*[(who, "register_solver", {"stake": s}) for who, s in solvers],
           *[(who, "register_verifier", {"stake": s}) for who, s in verifiers])
    sim.ok((ALICE, "submit_job", job_args(root, **over)))
    return sim.number


def test_honest_job_is_assigned_committed_verified_and_settled(sim, subset, subset_info):
    root = subset_info[0]
    free = {who: sim.account(who).free for who in (ALICE, BOB, CHARLIE, DAVE)}
    issuance = sim.issuance()
    start_job(sim, root)
    assert sim.job(0)["seed"] is None
    sim.block()  # the draw: a block after the submission
    job = sim.job(0)
    assert job["status"] == ("Assigned", None) and job["solver"] == BOB and job["seed"] is not None
    assert job["solver_lock"] == 45 * UNIT  # 30 bounty / (2 of 3 segments sampled)
    assert sim.worker("Solver", BOB)["locked"] == 45 * UNIT
    assert sim.events_named("JobAssigned")[0]["commit_by"] == job["commit_by"]

    solver = Trajectory(job, subset)
    args = solver.commit_args(0)
    sim.fails((CHARLIE, "commit", args), "NotAssignedSolver")
    sim.fails((BOB, "commit", {**args, "n_checkpoints": 3}), "WrongCheckpointCount")
    sim.fails((BOB, "unregister", {"role": "Solver"}), "HasOpenWork")
    sim.ok((BOB, "commit", args))
    sim.fails((BOB, "commit", args), "AlreadyCommitted")
    assert sim.job(0)["status"] == ("Committed", None)
    sim.block()  # the verifiers' draw: a block after the commitment
    job = sim.job(0)
    assert job["status"] == ("Verifying", None)
    duties = {d["verifier"]: d["segments"] for d in job["duties"]}
    assert set(duties) == {CHARLIE, DAVE}
    sampled = [s for segs in duties.values() for s in segs]
    assert len(sampled) == len(set(sampled)) == 2

    tjob = build_training_job(job)
    for verifier, segments in duties.items():
        for segment in segments:
            # The verifier's own re-run from the committed start state.
            end = run_checkpoint_segment(solver.states[solver.checkpoint_step(segment)], tjob, subset, segment)
            assert compute_state_hash(end) == solver.checkpoint_hashes[segment + 1]
            other = next(s for s in range(3) if s not in segments)
            sim.fails((verifier, "attest", solver.attest_args(0, other)), "NotDrawnForSegment")
            bad = {**solver.attest_args(0, segment), "end_state_hash": bytes(32)}
            sim.fails((verifier, "attest", bad), "InvalidCheckpointProof")
            sim.ok((verifier, "attest", solver.attest_args(0, segment)))
            sim.fails((verifier, "attest", solver.attest_args(0, segment)), "AlreadyAttested")
    sim.fails((EVE, "attest", solver.attest_args(0, sampled[0])), "NotDrawnForSegment")
    sim.wait_until(job["challenge_end"] - 1)
    assert sim.job(0)["status"] == ("Verifying", None)
    sim.block()
    assert sim.job(0)["status"] == ("Settled", None)
    settled = sim.events_named("JobSettled")[0]
    assert settled == {"job": 0, "solver": BOB, "paid": 28 * UNIT, "fees": 2 * UNIT}
    model = ml.TrainedModels.get(sim.state, 0)
    assert model["state_hash"] == solver.hashes[-1] and model["solver"] == BOB
    assert sim.account(ALICE).free == free[ALICE] - 30 * UNIT and sim.account(ALICE).reserved == 0
    assert sim.account(BOB).free == free[BOB] - 100 * UNIT + 28 * UNIT
    assert sim.account(CHARLIE).free == free[CHARLIE] - 10 * UNIT + UNIT
    assert sim.worker("Solver", BOB) == {"stake": 100 * UNIT, "locked": 0, "open": 0, "unbonding_until": None}
    assert sim.worker("Verifier", DAVE)["open"] == 0
    assert sim.issuance() == issuance
    sim.ok((BOB, "unregister", {"role": "Solver"}))


def test_attest_after_the_window_is_rejected(sim, subset, subset_info):
    start_job(sim, subset_info[0], verifiers=((CHARLIE, 10 * UNIT),), verification={"verifiers": 1, "segments": 1, "fee": UNIT})
    sim.block()
    solver = Trajectory(sim.job(0), subset)
    sim.ok((BOB, "commit", solver.commit_args(0)))
    sim.block()
    job = sim.job(0)
    (segment,) = job["duties"][0]["segments"]
    sim.wait_until(job["attest_end"])
    sim.fails((CHARLIE, "attest", solver.attest_args(0, segment)), "AttestWindowClosed")
    sim.wait_until(job["challenge_end"])
    assert sim.events_named("JobSettled")[0]["fees"] == 0  # the late verifier earned nothing


def test_missed_deadline_penalises_and_reassigns(sim, subset_info):
    issuance = sim.issuance()
    start_job(sim, subset_info[0], solvers=((BOB, 100 * UNIT), (EVE, 100 * UNIT)))
    sim.block()
    first = sim.job(0)["solver"]
    other = EVE if first == BOB else BOB
    sim.wait_until(sim.job(0)["commit_by"])
    (timed_out,) = sim.events_named("SolverTimedOut")
    assert timed_out == {"job": 0, "solver": first, "penalty": 4500 * UNIT // 1000}  # 10% of the 45 lock
    assert sim.worker("Solver", first) == {"stake": 100 * UNIT - 4500 * UNIT // 1000, "locked": 0, "open": 0,
                                           "unbonding_until": None}
    assert sim.issuance() == issuance - 4500 * UNIT // 1000  # the penalty is burned
    job = sim.job(0)
    assert job["status"] == ("Pending", None) and job["tried"] == [first] and job["attempts"] == 1
    sim.block()
    job = sim.job(0)
    assert job["status"] == ("Assigned", None) and job["solver"] == other
    # The second solver misses too: attempts exhausted, the bounty goes back.
    sim.wait_until(job["commit_by"])
    assert sim.job(0)["status"] == ("Refunded", None)
    assert sim.events_named("JobRefunded") == [{"job": 0, "amount": 30 * UNIT}]
    assert sim.account(ALICE).reserved == 0


def test_job_without_an_eligible_solver_is_refunded(sim, subset_info):
    # Bob's 40 does not cover the 45 the job needs: he is never drawn.
    start_job(sim, subset_info[0], solvers=((BOB, 40 * UNIT),))
    submitted = sim.number
    sim.wait_until(submitted + 4)  # pending_timeout is 5 blocks
    assert sim.job(0)["status"] == ("Pending", None)
    sim.block()
    assert sim.job(0)["status"] == ("Refunded", None) and sim.account(ALICE).reserved == 0


def test_submitter_is_never_its_own_solver(sim, subset_info):
    sim.ok((ALICE, "register_solver", {"stake": 100 * UNIT}))
    sim.ok((ALICE, "submit_job", job_args(subset_info[0])))
    sim.wait(7)
    assert sim.job(0)["status"] == ("Refunded", None)


def test_the_draw_seed_depends_on_the_block_after_submission(subset_info):
    from tests.ml_compute.sim import Sim

    seeds = set()
    for seed in range(3):
        sim = Sim(seed=seed, datasets=[subset_info])
        start_job(sim, subset_info[0])
        sim.block()
        seeds.add(sim.job(0)["seed"])
    assert len(seeds) == 3


def test_weighted_draw_follows_stake_and_segments_are_distinct():
    counts = Counter(draw_weighted(i.to_bytes(4, "little") * 8, [(b"a", 1), (b"b", 3), (b"c", 0)], 1)[0]
                     for i in range(2000))
    assert counts[b"c"] == 0 and 0.2 < counts[b"a"] / 2000 < 0.3
    assert sorted(draw_weighted(b"\x01" * 32, [(b"a", 1), (b"b", 3), (b"c", 5)], 5)) == [b"a", b"b", b"c"]
    for i in range(50):
        sample = draw_segments(i.to_bytes(32, "little"), 10, 4)
        assert len(set(sample)) == 4 and all(0 <= s < 10 for s in sample)
    assert sorted(draw_segments(b"\x02" * 32, 5, 9)) == [0, 1, 2, 3, 4]
