"""Checkpoint blobs fetched from peers over the p2p blobs-by-hash protocol, between real node
processes on loopback, each with its own LevelDB: node B serves through `mlcompute_getCheckpoint`
a checkpoint only node A holds, and keeps it; a peer that answers blob requests with other
bytes is scored down (and banned once it keeps lying) while the honest answer still comes."""

from __future__ import annotations

import subprocess
import sys
import threading

import httpx
import pytest

from runtime.hashing import blake2_256
from runtime.ml.engine import init_state
from runtime.ml.models import CNN
from runtime.ml.state import encode_state
from tests.integration.nodeproc import ROOT, NodeProcess, free_port, wait_until


def rpc(node: NodeProcess, method: str, *params):  # type: ignore[no-untyped-def]
    reply = httpx.post(node.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
                       timeout=60).json()
    if "error" in reply:
        raise RuntimeError(reply["error"])
    return reply["result"]


def put_on(node: NodeProcess, seed: int) -> tuple[bytes, str]:
    data = encode_state(init_state(CNN, bytes([seed]) * 32))
    h = "0x" + blake2_256(data).hex()
    assert rpc(node, "mlcompute_putCheckpoint", "0x" + data.hex()) == h
    return data, h


def peer_ids(node: NodeProcess) -> set[str]:
    return {p["peerId"] for p in rpc(node, "system_peers")}


def log_lines(node: NodeProcess, *words: str) -> list[str]:
    return [ln for ln in list(node.stderr_lines) if all(w in ln for w in words)]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    base = tmp_path_factory.mktemp("blobs")
    a = NodeProcess(base / "a", "--log", "info").start(timeout=60)
    b = None
    try:
        b = NodeProcess(base / "b", "--log", "info", "--bootnodes", a.multiaddr, key_args=()).start(timeout=60)
        wait_until(lambda: a.peer_id in peer_ids(b), timeout=60, interval=0.2)
        yield a, b
    finally:
        if b is not None:
            b.stop()
        a.stop()


def test_blob_fetch_node_serves_a_checkpoint_only_its_peer_holds(pair):
    a, b = pair
    data, h = put_on(a, 1)
    assert rpc(b, "mlcompute_getCheckpoint", h) == "0x" + data.hex()
    fetched = log_lines(b, "blob fetched", f"peer={a.peer_id}", h[2:18])
    assert len(fetched) == 1
    # Kept: the second read is served from B's own store, without asking A again.
    assert rpc(b, "mlcompute_getCheckpoint", h) == "0x" + data.hex()
    assert len(log_lines(b, "blob fetched", h[2:18])) == 1
    # A blob no peer holds is null (A answers that it lacks it).
    assert rpc(b, "mlcompute_getCheckpoint", "0x" + "00" * 32) is None


def test_blob_fetch_lying_peer_is_scored_down_and_banned_and_the_honest_blob_still_comes(pair):
    a, b = pair
    genesis = rpc(b, "chain_getBlockHash", 0)
    proc = subprocess.Popen([sys.executable, "-m", "tests.integration.garbage_peer", genesis, b.multiaddr,
                             str(free_port()), "120", "blobs"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()  # type: ignore[arg-type]
    try:
        liar = wait_until(lambda: next((ln.split()[1] for ln in lines if ln.startswith("identity")), None),
                          timeout=60)
        wait_until(lambda: liar in peer_ids(b), timeout=60, interval=0.2)
        # Whichever of the two B asks first, the answer is A's bytes.
        for seed in (2, 3):
            data, h = put_on(a, seed)
            assert rpc(b, "mlcompute_getCheckpoint", h) == "0x" + data.hex()
        # Blobs only the liar claims to hold: each lie costs it, until the ban rule drops it.
        unknown = iter(range(1, 1000))

        def banned() -> bool:
            assert rpc(b, "mlcompute_getCheckpoint", "0x" + blake2_256(bytes([next(unknown)])).hex()) is None
            return bool(log_lines(b, "peer banned", f"peer={liar}"))

        wait_until(banned, timeout=60, interval=0.2)
        assert log_lines(b, "peer reported", f"peer={liar}", "change=-50", "blob does not hash")
        assert any(ln.startswith("lied") for ln in lines)
        wait_until(lambda: liar not in peer_ids(b), timeout=30, interval=0.2)
        assert not log_lines(b, "peer reported", f"peer={a.peer_id}")
        data, h = put_on(a, 4)
        assert rpc(b, "mlcompute_getCheckpoint", h) == "0x" + data.hex()
    finally:
        proc.kill()
        proc.wait(10)
