"""`mlcompute_putCheckpoint` / `mlcompute_getCheckpoint` against a real `--dev` node process with
LevelDB on disk: real training states round-trip, bad uploads get a clear error and change
nothing, the put is unsafe, and stored checkpoints survive a restart."""

from __future__ import annotations

import httpx
import pytest

from runtime.hashing import blake2_256
from runtime.ml.engine import init_state
from runtime.ml.models import CNN, MLP
from runtime.ml.state import encode_state
from tests.integration.nodeproc import NodeProcess


def call(url: str, method: str, *params):  # type: ignore[no-untyped-def]
    reply = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
                       timeout=60).json()
    return reply


def state_bytes(spec, seed: bytes = b"\x01" * 32) -> bytes:
    return encode_state(init_state(spec, seed))


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    proc = NodeProcess(tmp_path_factory.mktemp("ckpt") / "alice").start()
    yield proc
    proc.stop()


def test_checkpoint_rpc_put_then_get_round_trips_real_states(node):
    for spec in (CNN, MLP):  # MLP: the largest registered state, 3.3 MB, fits one request
        data = state_bytes(spec)
        h = "0x" + blake2_256(data).hex()
        assert call(node.url, "mlcompute_putCheckpoint", "0x" + data.hex(), h, "0x" + "ab" * 32, 0)["result"] == h
        assert call(node.url, "mlcompute_getCheckpoint", h)["result"] == "0x" + data.hex()
    assert call(node.url, "mlcompute_getCheckpoint", "0x" + "00" * 32)["result"] is None
    # The job's list (what a verifier rebuilds the commitment from): each blob under its index.
    listed = call(node.url, "mlcompute_getJobCheckpoints", "0x" + "ab" * 32)["result"]
    assert sorted(listed, key=lambda item: item["hash"]) == sorted(
        ({"index": 0, "hash": "0x" + blake2_256(state_bytes(spec)).hex()} for spec in (CNN, MLP)),
        key=lambda item: item["hash"])
    assert call(node.url, "mlcompute_getJobCheckpoints", "0x" + "cd" * 32)["result"] == []
    assert call(node.url, "mlcompute_getJobCheckpoints", "0x12")["error"]["code"] == -32602


@pytest.mark.parametrize("mutate, code, reason", [
    (lambda d: b"not a state at all", 8010, "not a training state"),
    (lambda d: d[:-8], 8010, "state body is"),
    (lambda d: d[:30] + bytes([d[30] ^ 1]) + d[31:], 8010, "not a training state"),
])
def test_checkpoint_rpc_rejects_bytes_that_are_not_a_state(node, mutate, code, reason):
    bad = mutate(state_bytes(CNN, b"\x02" * 32))
    reply = call(node.url, "mlcompute_putCheckpoint", "0x" + bad.hex())
    assert reply["error"]["code"] == code and reason in reply["error"]["data"]
    assert call(node.url, "mlcompute_getCheckpoint", "0x" + blake2_256(bad).hex())["result"] is None


def test_checkpoint_rpc_rejects_hash_mismatch_and_bad_params(node):
    data = state_bytes(CNN, b"\x03" * 32)
    reply = call(node.url, "mlcompute_putCheckpoint", "0x" + data.hex(), "0x" + "11" * 32)
    assert reply["error"]["code"] == 8011 and "hash to" in reply["error"]["data"]
    assert call(node.url, "mlcompute_getCheckpoint", "0x" + blake2_256(data).hex())["result"] is None
    assert call(node.url, "mlcompute_putCheckpoint", "zz")["error"]["code"] == -32602
    assert call(node.url, "mlcompute_putCheckpoint", "0x" + data.hex(), None, "0x12")["error"]["code"] == -32602
    assert call(node.url, "mlcompute_putCheckpoint", "0x" + data.hex(), None, None, -1)["error"]["code"] == -32602
    assert call(node.url, "mlcompute_getCheckpoint", "0x1234")["error"]["code"] == -32602
    assert call(node.url, "system_name")["result"] == "gensyn-node"


def test_checkpoint_rpc_put_is_unsafe_and_blobs_survive_restart(node):
    """Last in the module: restarts the module's node on its database with safe RPC methods."""
    data = state_bytes(CNN, b"\x04" * 32)
    h = "0x" + blake2_256(data).hex()
    assert call(node.url, "mlcompute_putCheckpoint", "0x" + data.hex())["result"] == h
    node.stop()
    safe = NodeProcess(node.base_path, "--rpc-methods", "safe").start()
    try:
        reply = call(safe.url, "mlcompute_putCheckpoint", "0x" + state_bytes(CNN, b"\x05" * 32).hex())
        assert reply["error"]["code"] == -32601 and "unsafe" in reply["error"]["message"]
        assert call(safe.url, "mlcompute_getCheckpoint", h)["result"] == "0x" + data.hex()
    finally:
        safe.stop()
