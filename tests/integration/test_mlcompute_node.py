"""The ML-compute pallet on a real `--dev` node process (spec_version 2 from genesis): a job
submitted, assigned by the chain's draw, committed with real exact-engine checkpoints on
MNIST, the verifiers drawn, a challenge opened, all read back through the `mlcompute_*` RPC;
a failing ML call and bad RPC parameters get errors and the node keeps serving."""

from __future__ import annotations

import pytest

from gensyn_node.client import NodeClient
from gensyn_node.keyring import dev_account
from gensyn_node.ml.datasets import load_mnist
from gensyn_node.rpc.client import RpcClientError
from runtime.crypto import ss58_encode
from runtime.pallets.ml_compute import storage as ml
from runtime.pallets.ml_compute.registry import MNIST_ROOT
from runtime.pallets.ml_compute.types import Job
from tests.integration.nodeproc import NodeProcess, wait_until
from tests.ml_compute.actors import Trajectory

BOB, CHARLIE, DAVE, EVE = (dev_account(n) for n in ("bob", "charlie", "dave", "eve"))
UNIT = 10**12
JOB = {"model": 2, "dataset": MNIST_ROOT,
       "hyper": {"lr_q16": 3277, "momentum_q16": 58982, "weight_decay_q16": 0, "batch_size": 8},
       "steps": 2, "checkpoint_every": 1, "bounty": 10 * UNIT,
       "verification": {"verifiers": 1, "segments": 1, "fee": UNIT // 10}, "deadline": 30}


@pytest.fixture
def node(tmp_path):
    proc = NodeProcess(tmp_path / "alice").start()
    yield proc
    proc.stop()


def _in_block(client: NodeClient, key, pallet: str, call: str, args: dict) -> None:
    statuses = client.submit_and_watch(client.sign(key, client.encode_call(pallet, call, args)))
    assert "inBlock" in statuses[-1], statuses


def test_job_life_through_the_dev_node_and_its_rpc(node):
    client = NodeClient(node.url)
    rpc = client.rpc
    assert client.runtime_version()["specVersion"] == 2
    assert rpc.call("mlcompute_getArchitecture", 1)["stateBytes"] == 3256546
    _in_block(client, BOB, "MlCompute", "register_solver", {"stake": 100 * UNIT})
    _in_block(client, CHARLIE, "MlCompute", "register_verifier", {"stake": 10 * UNIT})
    _in_block(client, DAVE, "MlCompute", "submit_job", JOB)
    job = wait_until(lambda: (j := rpc.call("mlcompute_getJob", 0)) and j["status"] == "Assigned" and j)
    assert job["solver"] == ss58_encode(BOB.public) and job["minSolverStake"] == 20 * UNIT
    assert rpc.call("mlcompute_minSolverStake", 0)["detectionPpm"] == 500_000
    assert [j["id"] for j in rpc.call("mlcompute_listJobs", "Assigned", 0, 10)["jobs"]] == [0]

    raw = rpc.call("state_getStorage", "0x" + ml.Jobs.key(0).hex())
    solver = Trajectory(Job.decode(bytes.fromhex(raw[2:])), load_mnist().train)
    _in_block(client, BOB, "MlCompute", "commit", solver.commit_args(0))
    job = wait_until(lambda: (j := rpc.call("mlcompute_getJob", 0)) and j["status"] == "Verifying" and j)
    assert job["duties"][0]["verifier"] == ss58_encode(CHARLIE.public)
    assert rpc.call("mlcompute_getDispute", 0) is None

    _in_block(client, EVE, "MlCompute", "challenge", {"job": 0, "segment": 1, "claimed_end_hash": b"\x01" * 32, "bond": UNIT})
    dispute = rpc.call("mlcompute_getDispute", 0)
    assert dispute["phase"] == "AwaitReveal" and dispute["whoseMove"] == ss58_encode(BOB.public)
    assert [j["id"] for j in rpc.call("mlcompute_listJobs", "Disputed", 0, 10)["jobs"]] == [0]

    # A call that fails in its block is charged and named; bad RPC params get an error.
    statuses = client.submit_and_watch(client.sign(EVE, client.encode_call("MlCompute", "commit", solver.commit_args(0))))
    assert "inBlock" in statuses[-1]
    for method, params in (("mlcompute_listJobs", ["Sleeping"]), ("mlcompute_getJob", [-1]),
                           ("mlcompute_minSolverStake", [{"bounty": 1}]), ("mlcompute_getJob", ["zero"])):
        with pytest.raises(RpcClientError):
            rpc.call(method, *params)
    assert rpc.call("mlcompute_getJob", 0)["status"] == "Disputed"
    client.close()
