"""A training job from submission to settlement with real processes: a `--dev` node (short
ML-compute windows), `gensyn-node solver` and `gensyn-node verifier` daemons, and the job CLI.

- honest: the solver is killed with SIGKILL mid-training, restarted, resumes from its last
  stored checkpoint and commits; the verifier re-runs every segment and attests; the job
  settles, the solver is paid, and `job model` writes a torch file that reproduces the
  accuracy the solver committed; `job plot` draws the curve.
- fake-segment: the verifier's re-run differs, it challenges, the bisection is played by both
  daemons down to one step (the verifier is killed with SIGKILL after the first round and
  restarted: it re-runs the segment and plays on from the chain's round), the verifier submits
  the referee's input, the runtime's replay proves the solver wrong: solver slashed, job
  rejected, bounty less fees refunded.
"""

from __future__ import annotations

import pytest
import torch

from gensyn_node.client import NodeClient
from gensyn_node.keyring import dev_account
from gensyn_node.ml.chain import ChainView
from runtime.ml.models import get_model
from runtime.ml.native import build_module
from tests.integration.nodeproc import NodeProcess, wait_until
from tests.integration.workerproc import WorkerProcess, event_fields, last_json, run_cli, write_fast_spec

UNIT = 10**12
SOLVER, VERIFIER, SUBMITTER = "//Bob", "//Charlie", "dave"
STEPS, EVERY = "24", "6"  # 4 segments of 6 steps: a 3-round bisection
SUBMIT = ["job", "submit", "--model", "mlp", "--steps", STEPS, "--checkpoint-every", EVERY, "--batch-size", "16",
          "--bounty", "10u", "--verifiers", "1", "--segments", "4", "--fee", str(UNIT // 10), "--deadline", "120",
          "--from", SUBMITTER]


@pytest.fixture
def node(tmp_path):
    spec = write_fast_spec(tmp_path / "spec.json")
    proc = NodeProcess(tmp_path / "alice", chain=str(spec)).start()
    yield proc
    proc.stop()


def totals(client: NodeClient, name: str) -> tuple[int, int]:
    b = client.balance(dev_account(name).public)
    return b.free, b.reserved


def submit(node, verifiers: int = 1, segments: int = 4) -> int:  # type: ignore[no-untyped-def]
    args = list(SUBMIT)
    args[args.index("--verifiers") + 1], args[args.index("--segments") + 1] = str(verifiers), str(segments)
    done = run_cli(*args, "--rpc", node.url)
    assert done.returncode == 0, done.stderr[-2000:]
    return last_json(done.stdout)["job"]


def test_honest_job_survives_a_solver_kill9_settles_and_its_model_reproduces(node, tmp_path):
    verifier = WorkerProcess("verifier", node.url, VERIFIER, "10u").start()
    solver = WorkerProcess("solver", node.url, SOLVER, "50u", "--dir", str(tmp_path / "solver"), "--no-progress")
    solver.start()
    client = NodeClient(node.url)
    view = ChainView(node.url)
    try:
        solver.wait_for("event=registered")
        verifier.wait_for("event=registered")
        bob_before = sum(totals(client, "bob"))
        job_id = submit(node)
        solver.wait_for(f"event=checkpoint job={job_id} index=1 ")
        solver.kill9()
        journalled = view.get_job(job_id)
        assert journalled["status"] == "Assigned"

        solver.start()
        resumed = event_fields(solver.wait_for("event=resumed"))
        assert int(resumed["index"]) >= 1
        committed = event_fields(solver.wait_for(f"event=committed job={job_id}"))
        for segment in range(4):
            verifier.wait_for(f"event=attested job={job_id} segment={segment}")
        job = wait_until(lambda: (j := view.get_job(job_id))["status"] in ("Settled", "Rejected") and j, timeout=90)
        assert job["status"] == "Settled"
        assert job["disputes"] == 0
        _free, bob_reserved = totals(client, "bob")
        assert bob_reserved == 50 * UNIT  # the job's lock is released, the stake stays
        fees = 4 * (UNIT // 10)
        # Paid the bounty less the four attestation fees; its own transactions cost far less than a unit.
        gained = sum(totals(client, "bob")) - bob_before
        assert 10 * UNIT - fees - UNIT < gained <= 10 * UNIT - fees
        assert totals(client, "dave")[1] == 0

        model = view.get_model(job_id)
        assert model["stateHash"].startswith(committed["final"])
        out = tmp_path / "model.pt"
        exported = run_cli("job", "model", str(job_id), "--out", str(out), "--rpc", node.url)
        assert exported.returncode == 0, exported.stderr[-2000:]
        summary = last_json(exported.stdout)
        assert "0x" + summary["state_hash"] == model["stateHash"]
        module = build_module(get_model("mlp"))
        module.load_state_dict(torch.load(out, weights_only=True))  # plain torch, no gensyn code in between
        committed_accuracy = model["metrics"]["testAccuracyPpm"] / 1e6
        assert summary["exact_test_accuracy"] == pytest.approx(committed_accuracy, abs=1e-6)
        assert abs(summary["native_test_accuracy"] - committed_accuracy) < 0.02
        plotted = run_cli("job", "plot", str(job_id), "--out", str(tmp_path / "curve.png"), "--rpc", node.url)
        assert plotted.returncode == 0, plotted.stderr[-2000:]
        assert last_json(plotted.stdout)["points"] == 5
        assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        status = run_cli("job", "status", str(job_id), "--rpc", node.url)
        assert status.returncode == 0 and '"status": "Settled"' in status.stdout
    finally:
        view.close()
        client.close()
        assert solver.stop() == 0
        assert verifier.stop() == 0
    assert any("event=stopped" in line for line in solver.lines)


def test_faked_segment_is_challenged_bisected_refereed_and_slashed_through_a_verifier_kill9(node, tmp_path):
    solver = WorkerProcess("solver", node.url, SOLVER, "50u", "--dir", str(tmp_path / "solver"), "--no-progress",
                           "--cheat", "fake-segment:2").start()
    verifier = WorkerProcess("verifier", node.url, VERIFIER, "10u").start()
    client = NodeClient(node.url)
    view = ChainView(node.url)
    try:
        solver.wait_for("event=registered")
        verifier.wait_for("event=registered")
        job_id = submit(node)
        challenge = event_fields(verifier.wait_for(f"event=challenge job={job_id} segment=2", timeout=180))
        assert challenge["solver_claims"] != challenge["rerun_gives"]
        solver.wait_for(f"event=revealed job={job_id} segment=2")
        answers = [event_fields(verifier.wait_for(f"event=answer job={job_id} round=1 "))]
        # Killed mid-dispute, the challenger restarts, re-runs the segment and plays on from the chain's round.
        verifier.kill9()
        verifier.start()
        verifier.wait_for(f"event=dispute_resumed job={job_id} segment=2")
        answers += [event_fields(verifier.wait_for(f"event=answer job={job_id} round={r} ")) for r in (2, 3)]
        # The lie is in the segment's last step (17 -> 18): the challenger agrees with every midpoint.
        assert [(a["step"], a["agree"]) for a in answers] == [("15", "True"), ("16", "True"), ("17", "True")]
        verifier.wait_for(f"event=referee_submitted job={job_id} step=17")
        job = wait_until(lambda: (j := view.get_job(job_id))["status"] in ("Settled", "Rejected") and j, timeout=60)
        assert job["status"] == "Rejected"
        worker = view.get_worker("Solver", dev_account("bob").public)
        lock = job["minSolverStake"]
        assert worker["stake"] == 50 * UNIT - lock and worker["locked"] == 0
        assert totals(client, "dave")[1] == 0  # the escrow is gone: fees paid, the rest refunded
        assert totals(client, "charlie")[1] == 10 * UNIT  # the bond is back; only the stake stays reserved
        solver.wait_for(f"event=job_rejected job={job_id}")
    finally:
        view.close()
        client.close()
        solver.stop()
        verifier.stop()


def test_job_cli_and_workers_reject_bad_input_with_a_reason(node, tmp_path):
    cases = [
        (["job", "model", "7", "--out", str(tmp_path / "m.pt")], "no trained model"),
        (["job", "status", "99"], "no job 99"),
        (["job", "submit", "--steps", "8", "--bounty", "1u", "--dataset", "cifar"], "no registered dataset"),
        # Included in a block but failed there (the pallet's bounds): nothing was escrowed.
        (["job", "submit", "--steps", "8", "--bounty", "1u", "--verifiers", "200"], "failed in its block"),
        (["job", "model", "--out", str(tmp_path / "m.pt")], "give a job id"),
        (["solver", "--key", "bob", "--stake", "5u", "--cheat", "bogus"], "one of fake-segment"),
        (["verifier", "--key", "//Nobody", "--stake", "5u"], "register_verifier"),
    ]
    client = NodeClient(node.url)
    reserved_before = totals(client, "alice")[1]
    for args, reason in cases:
        done = run_cli(*args, "--rpc", node.url)
        assert done.returncode == 2 and reason in done.stderr, (args, done.stderr[-1500:])
    view = ChainView(node.url)
    try:
        assert view.list_jobs() == []
        assert totals(client, "alice")[1] == reserved_before  # no bounty left in escrow
    finally:
        view.close()
        client.close()


@pytest.mark.parametrize("cheat", ["skip-steps:2", "other-data"])
def test_solver_that_skips_steps_or_trains_on_other_data_is_refereed_and_slashed(node, tmp_path, cheat):
    solver = WorkerProcess("solver", node.url, SOLVER, "50u", "--dir", str(tmp_path / "solver"), "--no-progress",
                           "--cheat", cheat).start()
    verifier = WorkerProcess("verifier", node.url, VERIFIER, "10u").start()
    view = ChainView(node.url)
    try:
        solver.wait_for("event=registered")
        verifier.wait_for("event=registered")
        job_id = submit(node)
        # Every segment is wrong: the verifier challenges the first one it re-runs.
        verifier.wait_for(f"event=challenge job={job_id} segment=0", timeout=180)
        referee = event_fields(verifier.wait_for(f"event=referee_submitted job={job_id}"))
        assert int(referee["step"]) == (1 if cheat.startswith("skip") else 0)  # the first step that differs
        job = wait_until(lambda: (j := view.get_job(job_id))["status"] in ("Settled", "Rejected") and j, timeout=60)
        assert job["status"] == "Rejected"
        assert view.get_worker("Solver", dev_account("bob").public)["stake"] == 50 * UNIT - job["minSolverStake"]
    finally:
        view.close()
        solver.stop()
        verifier.stop()


def test_lazy_verifier_attests_a_faked_segment_and_the_fraud_settles(node, tmp_path):
    """The verifier's dilemma made visible: a verifier that does not re-run lets a fake through
    (and is paid for it); only re-execution or a whistleblower catches it."""
    solver = WorkerProcess("solver", node.url, SOLVER, "50u", "--dir", str(tmp_path / "solver"), "--no-progress",
                           "--cheat", "fake-segment:1").start()
    verifier = WorkerProcess("verifier", node.url, VERIFIER, "10u", "--cheat", "lazy").start()
    view = ChainView(node.url)
    try:
        solver.wait_for("event=registered")
        verifier.wait_for("event=registered")
        job_id = submit(node)
        for segment in range(4):
            assert "lazy=True" in verifier.wait_for(f"event=attested job={job_id} segment={segment}", timeout=180)
        job = wait_until(lambda: (j := view.get_job(job_id))["status"] in ("Settled", "Rejected") and j, timeout=60)
        assert job["status"] == "Settled" and job["disputes"] == 0
        assert not any("event=rerun" in line for line in verifier.lines)
    finally:
        view.close()
        solver.stop()
        verifier.stop()


def test_checkpoints_kept_local_are_reported_published_on_chain_and_the_job_settles(node, tmp_path):
    """A solver that uploads nothing (`--no-upload`): the verifier cannot get the list or its
    segment's start checkpoint, reports it on chain, the solver publishes both in a block, the
    node keeps the bytes from that block, and the verifier re-runs, attests, and the job settles."""
    solver = WorkerProcess("solver", node.url, SOLVER, "50u", "--dir", str(tmp_path / "solver"), "--no-progress",
                           "--no-upload").start()
    verifier = WorkerProcess("verifier", node.url, VERIFIER, "10u").start()
    view = ChainView(node.url)
    try:
        solver.wait_for("event=registered")
        verifier.wait_for("event=registered")
        job_id = submit(node, verifiers=1, segments=1)
        reported = event_fields(verifier.wait_for(f"event=reported_unavailable job={job_id}", timeout=180))
        published = event_fields(solver.wait_for(f"event=checkpoint_published job={job_id} index={reported['segment']}"))
        assert int(published["bytes"]) > 3_000_000  # a whole MLP state went through a block
        verifier.wait_for(f"event=attested job={job_id} segment={reported['segment']}", timeout=120)
        job = wait_until(lambda: (j := view.get_job(job_id))["status"] in ("Settled", "Rejected") and j, timeout=90)
        assert job["status"] == "Settled" and job["withheld"] == []
    finally:
        view.close()
        solver.stop()
        verifier.stop()

