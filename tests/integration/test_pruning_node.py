"""A real node process with `--state-pruning 2`: a pruned state asked over RPC gets Substrate's
"State already discarded" (4003) and never a wrong answer, the kept states still answer, and a
restart with another kind of pruning is refused with one clear line."""

from __future__ import annotations

import subprocess

import httpx

from gensyn_node.keyring import dev_account
from runtime.pallets.system.account import account_key
from tests.integration.nodeproc import NODE, ROOT, NodeProcess, wait_until

ALICE_KEY = "0x" + account_key(dev_account("alice").public).hex()


def _call(node: NodeProcess, method: str, *params: object) -> dict:
    return httpx.post(node.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
                      timeout=30).json()


def _finalized_number(node: NodeProcess) -> int:
    head = _call(node, "chain_getFinalizedHead")["result"]
    return int(_call(node, "chain_getHeader", head)["result"]["number"], 16)


def test_pruned_node_answers_discarded_states_with_4003_and_refuses_archive(tmp_path):
    node = NodeProcess(tmp_path / "alice", "--state-pruning", "2", "--no-prometheus").start()
    try:
        wait_until(lambda: _finalized_number(node) >= 4, timeout=60)
        old = _call(node, "chain_getBlockHash", 1)["result"]
        for method, params in [("state_getStorage", [ALICE_KEY, old]), ("state_getRuntimeVersion", [old]),
                               ("state_getKeysPaged", ["0x", 10, None, old]), ("state_getMetadata", [old])]:
            error = _call(node, method, *params)["error"]
            assert error["code"] == 4003, (method, error)
            assert f"State already discarded for {old}" in error["message"], (method, error)
        head = _call(node, "chain_getFinalizedHead")["result"]
        assert _call(node, "state_getStorage", ALICE_KEY, head)["result"] is not None
        assert _call(node, "system_health")["result"]["isSyncing"] is False  # still serving
    finally:
        node.stop()
    refused = subprocess.run([*NODE, "run", "--base-path", str(node.base_path), "--alice", "--rpc-port", "0",
                              "--no-prometheus", "--state-pruning", "archive"], check=False, cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--state-pruning 2" in lines[0] and "archive" in lines[0], refused.stderr
