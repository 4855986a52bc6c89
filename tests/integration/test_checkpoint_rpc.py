"""`mlcompute_putCheckpoint` / `mlcompute_getCheckpoint` and the raw-bytes route beside them
(`PUT`/`GET /checkpoint/0x<hash>`, what the workers use) against a real `--dev` node process with
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


def route(node, blob: bytes | str) -> str:  # type: ignore[no-untyped-def]
    return node.url.rstrip("/") + "/checkpoint/" + (blob if isinstance(blob, str) else "0x" + blob.hex())


def test_checkpoint_route_raw_bytes_round_trip_and_are_the_rpcs_blobs(node):
    data = state_bytes(MLP, b"\x06" * 32)
    h = blake2_256(data)
    put = httpx.put(route(node, h), content=data, params={"job": "0x" + "ef" * 32, "index": "3"}, timeout=60)
    assert put.status_code == 200 and put.json()["result"] == "0x" + h.hex()
    got = httpx.get(route(node, h), timeout=60)
    assert got.status_code == 200 and got.headers["content-type"] == "application/octet-stream"
    assert got.content == data
    # One store behind both faces: the JSON-RPC get and the job's list see the raw upload.
    assert call(node.url, "mlcompute_getCheckpoint", "0x" + h.hex())["result"] == "0x" + data.hex()
    assert call(node.url, "mlcompute_getJobCheckpoints", "0x" + "ef" * 32)["result"] == [
        {"index": 3, "hash": "0x" + h.hex()}]
    missing = httpx.get(route(node, b"\x00" * 32), timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == -32004


@pytest.mark.parametrize("blob, params, body, status, code, reason", [
    ("0x" + "11" * 32, {}, None, 400, 8011, "hash to"),  # the bytes are not the path's hash
    ("0x1234", {}, None, 400, -32602, "expected 32 bytes"),
    ("", {}, None, 400, -32602, "0x-prefixed"),
    (None, {"index": "-1"}, None, 400, -32602, "non-negative integer"),
    (None, {"index": "x"}, None, 400, -32602, "non-negative integer"),
    (None, {"index": "\u00b2"}, None, 400, -32602, "non-negative integer"),  # a digit to isdigit(), not to int()
    (None, {"job": "0x12"}, None, 400, -32602, "expected 32 bytes"),
    (None, {"color": "red"}, None, 400, -32602, "unknown query parameters: color"),
    (None, {"chain_job": "5"}, None, 400, -32602, "required with chain_job"),
    (None, {}, b"not a state at all", 400, 8010, "not a training state"),
])
def test_checkpoint_route_rejects_bad_uploads_with_a_reason_and_stores_nothing(node, blob, params, body, status,
                                                                                code, reason):
    data = state_bytes(CNN, b"\x07" * 32) if body is None else body
    reply = httpx.put(route(node, blob if blob is not None else blake2_256(data)), content=data, params=params,
                      timeout=60)
    assert reply.status_code == status and reply.json()["error"]["code"] == code, reply.text
    assert reason in reply.json()["error"]["data"], reply.text
    assert httpx.get(route(node, blake2_256(data)), timeout=10).status_code == 404
    # A repeated query key and a method the route does not serve are refused too.
    assert httpx.put(route(node, blake2_256(data)) + "?index=1&index=2", content=data, timeout=10).status_code == 400
    assert httpx.post(route(node, blake2_256(data)), content=data, timeout=10).status_code == 405
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
        raw = state_bytes(CNN, b"\x05" * 32)
        refused = httpx.put(route(safe, blake2_256(raw)), content=raw, timeout=60)
        assert refused.status_code == 403 and "unsafe" in refused.json()["error"]["message"]
        assert httpx.get(route(safe, blake2_256(raw)), timeout=10).status_code == 404
        assert call(safe.url, "mlcompute_getCheckpoint", h)["result"] == "0x" + data.hex()
        assert httpx.get(route(safe, h), timeout=10).content == data  # reading stays safe
    finally:
        safe.stop()
