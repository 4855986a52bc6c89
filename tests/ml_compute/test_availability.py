"""Data availability (runtime/pallets/ml_compute/availability.py): a drawn verifier that cannot
get its segment's start checkpoint reports it; the solver publishes the bytes and the job's
checkpoint list on chain (then the verifier attests as usual and the job settles), or misses the
deadline and is slashed, part to the reporter, with the job rejected. Real exact-engine runs."""

from __future__ import annotations

from runtime.ml.state import encode_state
from runtime.pallets.ml_compute import storage as ml
from tests.ml_compute.actors import Trajectory
from tests.ml_compute.sim import UNIT
from tests.ml_compute.test_lifecycle import ALICE, BOB, CHARLIE, EVE, start_job

ONE_VERIFIER = {"verifiers": ((CHARLIE, 10 * UNIT),), "verification": {"verifiers": 1, "segments": 1, "fee": UNIT}}


def committed_job(sim, subset, subset_info):
    """Job 0 committed by bob and verifying, charlie drawn for one segment."""
    start_job(sim, subset_info[0], **ONE_VERIFIER)
    sim.block()
    solver = Trajectory(sim.job(0), subset)
    sim.ok((BOB, "commit", solver.commit_args(0)))
    sim.block()
    job = sim.job(0)
    (segment,) = job["duties"][0]["segments"]
    return solver, job, segment


def publish_args(solver, segment, **over):
    state = encode_state(solver.states[solver.checkpoint_step(segment)])
    return {"job": 0, "index": segment, "state": state, "hashes": solver.checkpoint_hashes, **over}


def test_a_published_checkpoint_lets_the_reporter_attest_and_the_job_settles(sim, subset, subset_info):
    solver, _job, segment = committed_job(sim, subset, subset_info)
    other = next(s for s in range(3) if s != segment)
    sim.fails((EVE, "report_unavailable", {"job": 0, "segment": segment}), "NotDrawnForSegment")
    sim.fails((CHARLIE, "report_unavailable", {"job": 0, "segment": other}), "NotDrawnForSegment")
    sim.fails((BOB, "publish_checkpoint", publish_args(solver, segment)), "NotReported")
    sim.ok((CHARLIE, "report_unavailable", {"job": 0, "segment": segment}))
    sim.fails((CHARLIE, "report_unavailable", {"job": 0, "segment": segment}), "AlreadyReported")
    (report,) = sim.events_named("CheckpointWithheld")
    reported = sim.job(0)
    assert reported["withheld"] == [{"segment": segment, "reporter": CHARLIE, "deadline": report["deadline"]}]
    # The windows moved past the deadline: the reporter can still attest after publication.
    assert reported["attest_end"] > report["deadline"] and reported["challenge_end"] > reported["attest_end"]
    assert reported["timer"] == reported["challenge_end"]
    # Publication is checked: the list must rebuild the commitment, the bytes hash to its entry.
    wrong_list = solver.checkpoint_hashes[:-1] + [bytes(32)]
    sim.fails((BOB, "publish_checkpoint", publish_args(solver, segment, hashes=wrong_list)), "InvalidCheckpointList")
    sim.fails((BOB, "publish_checkpoint", publish_args(solver, segment, hashes=solver.checkpoint_hashes[:-1])),
              "InvalidCheckpointList")
    other_state = encode_state(solver.states[solver.checkpoint_step(other)])
    sim.fails((BOB, "publish_checkpoint", publish_args(solver, segment, state=other_state)), "CheckpointHashMismatch")
    sim.ok((BOB, "publish_checkpoint", publish_args(solver, segment)))
    assert sim.events_named("CheckpointPublished")[0]["index"] == segment
    assert sim.job(0)["withheld"] == []
    assert ml.PublishedCheckpoints.get(sim.state, 0) == solver.checkpoint_hashes
    sim.wait_until(report["deadline"])  # the deadline passes harmlessly
    assert sim.job(0)["status"] == ("Verifying", None)
    sim.ok((CHARLIE, "attest", solver.attest_args(0, segment)))
    sim.wait_until(sim.job(0)["challenge_end"])
    assert sim.job(0)["status"] == ("Settled", None)
    assert sim.events_named("JobSettled")[0]["fees"] == UNIT
    assert ml.PublishedCheckpoints.get(sim.state, 0) is None  # gone with the job
    sim.check_invariants()


def test_a_solver_that_withholds_past_the_deadline_is_slashed_and_the_job_rejected(sim, subset, subset_info):
    _solver, job, segment = committed_job(sim, subset, subset_info)
    issuance = sim.issuance()
    lock = job["solver_lock"]
    stake = sim.worker("Solver", BOB)["stake"]
    charlie = sim.account(CHARLIE).free
    alice_reserved = sim.account(ALICE).reserved
    sim.ok((CHARLIE, "report_unavailable", {"job": 0, "segment": segment}))
    deadline = sim.events_named("CheckpointWithheld")[0]["deadline"]
    sim.wait_until(deadline - 1)
    assert sim.job(0)["status"] == ("Verifying", None)
    sim.block()
    (withheld,) = sim.events_named("DataWithheld")
    reward = lock * 25 // 100
    assert withheld == {"job": 0, "segment": segment, "slashed": lock, "reward": reward}
    assert sim.job(0)["status"] == ("Rejected", None)
    assert sim.worker("Solver", BOB)["stake"] == stake - lock
    assert sim.account(CHARLIE).free == charlie + reward
    assert sim.account(ALICE).reserved == alice_reserved - 30 * UNIT  # the bounty went back
    assert sim.issuance() == issuance - (lock - reward)  # the rest is burned
    sim.check_invariants()


def test_a_report_after_the_attest_window_or_once_attested_is_refused(sim, subset, subset_info):
    solver, job, segment = committed_job(sim, subset, subset_info)
    sim.ok((CHARLIE, "attest", solver.attest_args(0, segment)))
    sim.fails((CHARLIE, "report_unavailable", {"job": 0, "segment": segment}), "AlreadyAttested")
    sim.wait_until(job["attest_end"])
    sim.fails((CHARLIE, "report_unavailable", {"job": 0, "segment": segment}), "AttestWindowClosed")
