"""`mlcompute_putCheckpoint` with a job's on-chain id, against a real `--dev` node process with
LevelDB on disk: a checkpoint of an assigned job is checked against that job (it exists, is
assigned, the job hash is its own, the state is of its model, at the step of its index); each
failed check gets its own error and leaves the store as it was; the good one is stored and listed."""

from __future__ import annotations

import httpx
import pytest

from gensyn_node.client import NodeClient
from gensyn_node.keyring import dev_account
from gensyn_node.ml.chain import build_training_job
from runtime.hashing import blake2_256
from runtime.ml.engine import init_state
from runtime.ml.models import CNN, MLP
from runtime.ml.state import TrainState, encode_state
from runtime.pallets.ml_compute.registry import MNIST_ROOT
from tests.integration.nodeproc import NodeProcess, wait_until

BOB, DAVE = dev_account("bob"), dev_account("dave")
UNIT = 10**12
JOB = {"model": CNN.model_id, "dataset": MNIST_ROOT,
       "hyper": {"lr_q16": 3277, "momentum_q16": 58982, "weight_decay_q16": 0, "batch_size": 8},
       "steps": 3, "checkpoint_every": 2, "bounty": 10 * UNIT,
       "verification": {"verifiers": 1, "segments": 1, "fee": UNIT // 10}, "deadline": 200}


def call(url: str, method: str, *params):  # type: ignore[no-untyped-def]
    return httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
                      timeout=60).json()


def state_at_step(spec, step: int, seed: bytes = b"\x07" * 32) -> bytes:
    state = init_state(spec, seed)
    return encode_state(TrainState(spec, step, state.params, state.momentum))


def _in_block(client: NodeClient, key, call_name: str, args: dict) -> None:  # type: ignore[no-untyped-def]
    statuses = client.submit_and_watch(client.sign(key, client.encode_call("MlCompute", call_name, args)))
    assert "inBlock" in statuses[-1], statuses


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """A dev node with job 0 assigned to Bob and job 1 pending (its stake is more than Bob's)."""
    proc = NodeProcess(tmp_path_factory.mktemp("ckjob") / "alice").start()
    client = NodeClient(proc.url)
    try:
        _in_block(client, BOB, "register_solver", {"stake": 100 * UNIT})
        _in_block(client, DAVE, "submit_job", JOB)
        assigned = wait_until(lambda: (j := client.rpc.call("mlcompute_getJob", 0)) and j["status"] == "Assigned"
                              and j, timeout=30)
        _in_block(client, DAVE, "submit_job", {**JOB, "bounty": 1000 * UNIT})
        assert client.rpc.call("mlcompute_getJob", 1)["status"] == "Pending"
        yield proc, assigned
    finally:
        client.close()
        proc.stop()


def snapshot(url: str, job_hash: str, blobs: list[bytes]) -> tuple:
    """What the store shows: the job's list and whether each blob is held."""
    held = tuple(call(url, "mlcompute_getCheckpoint", "0x" + blake2_256(b).hex())["result"] is not None for b in blobs)
    return call(url, "mlcompute_getJobCheckpoints", job_hash)["result"], held


def test_checkpoint_job_rpc_each_failed_check_has_its_error_and_changes_nothing(chain):
    node, job = chain
    job_hash = "0x" + build_training_job(job).job_hash.hex()
    good0 = state_at_step(CNN, 0)
    cases = [
        # (data, job hash, index, chain job, code, words in the data)
        (good0, None, 0, 7, 8014, "no job 7"),
        (good0, None, 0, 1, 8015, "is Pending, not Assigned"),
        (good0, "0x" + "ab" * 32, 0, 0, 8016, "job 0 hashes to " + job_hash),
        (state_at_step(MLP, 0), job_hash, 0, 0, 8017, "model mlp"),
        (good0, job_hash, 1, 0, 8018, "checkpoint 1 of job 0 is at step 2, the state is at step 0"),
        (state_at_step(CNN, 2), job_hash, 2, 0, 8018, "checkpoint 2 of job 0 is at step 3, the state is at step 2"),
        (good0, job_hash, 3, 0, 8018, "job 0 has checkpoints 0..2, not 3"),
        (b"not a state", job_hash, 0, 0, 8010, "not a training state"),
    ]
    before = snapshot(node.url, job_hash, [c[0] for c in cases])
    assert before == ([], (False,) * len(cases))
    for data, jhash, index, chain_job, code, words in cases:
        reply = call(node.url, "mlcompute_putCheckpoint", "0x" + data.hex(), None, jhash, index, chain_job)
        assert reply.get("error", {}).get("code") == code, (code, reply)
        assert words in reply["error"]["data"], reply["error"]
        assert snapshot(node.url, job_hash, [c[0] for c in cases]) == before
    # A chain job needs the index; a malformed id is a parameter error.
    assert call(node.url, "mlcompute_putCheckpoint", "0x" + good0.hex(), None, None, None, 0)["error"]["code"] == -32602
    assert call(node.url, "mlcompute_putCheckpoint", "0x" + good0.hex(), None, None, 0, -1)["error"]["code"] == -32602
    assert snapshot(node.url, job_hash, [c[0] for c in cases]) == before


def test_checkpoint_job_rpc_accepts_the_jobs_checkpoints(chain):
    node, job = chain
    job_hash = "0x" + build_training_job(job).job_hash.hex()
    uploads = [(state_at_step(CNN, 0), 0, job_hash), (state_at_step(CNN, 2), 1, None), (state_at_step(CNN, 3), 2, None)]
    for data, index, jhash in uploads:  # the job hash is derived from the chain when not given
        h = "0x" + blake2_256(data).hex()
        assert call(node.url, "mlcompute_putCheckpoint", "0x" + data.hex(), h, jhash, index, 0)["result"] == h
        assert call(node.url, "mlcompute_getCheckpoint", h)["result"] == "0x" + data.hex()
    listed = call(node.url, "mlcompute_getJobCheckpoints", job_hash)["result"]
    assert listed == [{"index": i, "hash": "0x" + blake2_256(d).hex()} for d, i, _ in uploads]
    # The call form without a chain job still stores (unverified, off chain).
    loose = state_at_step(CNN, 5)
    assert call(node.url, "mlcompute_putCheckpoint", "0x" + loose.hex())["result"] == "0x" + blake2_256(loose).hex()
