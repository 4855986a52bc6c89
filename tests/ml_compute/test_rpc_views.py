"""Milestone 6 on the runtime: the `mlcompute_*` views over a sim's state through a job's life
(pending, assigned, disputed, settled, cancelled), paging and filtering, and bad parameters."""

from __future__ import annotations

import pytest

from gensyn_node.rpc.errors import InvalidParams
from gensyn_node.rpc.mlcompute import view_dispute, view_job, view_jobs, view_min_solver_stake, view_model
from runtime.crypto import ss58_encode
from tests.ml_compute.actors import Trajectory
from tests.ml_compute.sim import ACCOUNTS, UNIT
from tests.ml_compute.test_lifecycle import job_args

ALICE, BOB, CHARLIE, EVE = (ACCOUNTS[n] for n in ("alice", "bob", "charlie", "eve"))


def test_views_follow_a_job_through_its_life(sim, subset, subset_info):
    root = subset_info[0]
    sim.ok((BOB, "register_solver", {"stake": 100 * UNIT}), (CHARLIE, "register_verifier", {"stake": 10 * UNIT}))
    tiny = {"model": 2, "steps": 4, "checkpoint_every": 2, "verification": {"verifiers": 1, "segments": 1, "fee": UNIT}}
    sim.ok((ALICE, "submit_job", job_args(root, **tiny)), (ALICE, "submit_job", job_args(root, **tiny)))
    sim.ok((ALICE, "cancel_job", {"job": 1}))
    job = view_job(sim.state, 0)
    assert job["status"] == "Assigned" and job["solver"] == ss58_encode(BOB) and job["seed"].startswith("0x")
    assert job["minSolverStake"] == 60 * UNIT and job["hyper"]["batchSize"] == 8
    assert view_job(sim.state, 1)["status"] == "Cancelled" and view_job(sim.state, 7) is None
    assert [j["id"] for j in view_jobs(sim.state, None, 0, 10)["jobs"]] == [0, 1]
    assert [j["id"] for j in view_jobs(sim.state, "Cancelled", 0, 10)["jobs"]] == [1]
    page = view_jobs(sim.state, None, 0, 1)
    assert [j["id"] for j in page["jobs"]] == [0] and page["next"] == 1
    assert view_jobs(sim.state, None, page["next"], 1)["next"] is None

    solver = Trajectory(sim.job(0), subset)
    sim.ok((BOB, "commit", solver.commit_args(0)))
    sim.block()
    assert view_job(sim.state, 0)["duties"][0]["verifier"] == ss58_encode(CHARLIE)
    assert view_dispute(sim.state, 0) is None
    sim.ok((EVE, "challenge", {"job": 0, "segment": 0, "claimed_end_hash": b"\x01" * 32, "bond": UNIT}))
    dispute = view_dispute(sim.state, 0)
    assert dispute["phase"] == "AwaitReveal" and dispute["whoseMove"] == ss58_encode(BOB)
    assert dispute["challenger"] == ss58_encode(EVE) and dispute["refereeStep"] is None
    sim.ok((BOB, "reveal_segment", solver.reveal_args(0, 0)))
    sim.ok((BOB, "bisect", {"job": 0, "mid_hash": solver.hashes[1]}))
    dispute = view_dispute(sim.state, 0)
    assert dispute["phase"] == "AwaitAnswer" and dispute["whoseMove"] == ss58_encode(EVE) and dispute["midStep"] == 1
    sim.ok((EVE, "answer", {"job": 0, "agree": False}))
    dispute = view_dispute(sim.state, 0)
    assert dispute["phase"] == "AwaitReferee" and dispute["whoseMove"] is None and dispute["refereeStep"] == 0
    sim.wait_until(sim.dispute(0)["deadline"])  # nobody referees: the solver loses
    assert view_job(sim.state, 0)["status"] == "Rejected" and view_model(sim.state, 0) is None


def test_model_view_tells_where_to_fetch_the_trained_state(sim, subset, subset_info):
    sim.ok((BOB, "register_solver", {"stake": 100 * UNIT}))
    sim.ok((ALICE, "submit_job", job_args(subset_info[0], model=2, steps=2, checkpoint_every=1)))
    sim.block()
    solver = Trajectory(sim.job(0), subset)
    sim.ok((BOB, "commit", solver.commit_args(0)))
    sim.wait(sim.job(0)["timer"] - sim.number)
    sim.wait_until(sim.job(0)["challenge_end"])
    model = view_model(sim.state, 0)
    assert model["stateHash"] == "0x" + solver.hashes[-1].hex()
    assert model["fetch"] == {"method": "mlcompute_getCheckpoint", "stateHash": model["stateHash"],
                              "provider": ss58_encode(BOB), "checkpointRoot": model["checkpointRoot"], "nCheckpoints": 3}


def test_min_solver_stake_view_and_bad_params(sim):
    assert view_min_solver_stake(sim.state, 100 * UNIT, 10, 2, 1, 1) == {
        "minSolverStake": 500 * UNIT, "detectionPpm": 200_000, "segments": 5, "sampled": 1}
    with pytest.raises(InvalidParams):
        view_min_solver_stake(sim.state, 1, 10, 11, 1, 1)
    with pytest.raises(InvalidParams):
        view_jobs(sim.state, "Sleeping", 0, 10)
    with pytest.raises(InvalidParams):
        view_jobs(sim.state, None, 0, 1000)
