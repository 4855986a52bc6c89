"""A real `gensyn-node` process on loopback with LevelDB on disk: transfers land in blocks and
balances, kill -9 and restart resume the chain, operator mistakes get one clear line."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from gensyn_node.client import NodeClient
from gensyn_node.keyring import dev_account
from tests.integration.nodeproc import NODE, ROOT, NodeProcess, wait_until

ALICE, BOB, CHARLIE = dev_account("alice"), dev_account("bob"), dev_account("charlie")


@pytest.fixture
def node(tmp_path):
    proc = NodeProcess(tmp_path / "alice").start()
    yield proc
    proc.stop()


def test_node_transfer_lands_in_block_and_balance(node):
    client = NodeClient(node.url)
    before = client.balance(BOB.public).free
    call = client.encode_call("Balances", "transfer_keep_alive", {"dest": ("Id", BOB.public), "value": 7 * 10**12})
    statuses = client.submit_and_watch(client.sign(ALICE, call), until="finalized")
    assert statuses[0] == "ready"
    assert "inBlock" in statuses[-2] and "finalized" in statuses[-1]
    block_hash = statuses[-1]["finalized"]
    block = client.rpc.call("chain_getBlock", block_hash)
    assert len(block["block"]["extrinsics"]) == 2  # the timestamp inherent and our transfer
    assert client.balance(BOB.public).free == before + 7 * 10**12
    assert client.balance(ALICE.public).nonce == 1
    client.close()


def test_node_rejects_invalid_transaction_with_1010_and_keeps_serving(node):
    client = NodeClient(node.url)
    call = client.encode_call("Balances", "transfer_keep_alive", {"dest": ("Id", BOB.public), "value": 1})
    good = client.sign(ALICE, call)
    tampered = bytearray(good)
    tampered[-10] ^= 0xFF  # inside the call's destination account, after the signature
    reply = httpx.post(node.url, json={"jsonrpc": "2.0", "id": 1, "method": "author_submitExtrinsic",
                                       "params": ["0x" + bytes(tampered).hex()]}).json()
    assert reply["error"]["code"] == 1010 and "BadProof" in reply["error"]["data"]
    truncated = httpx.post(node.url, json={"jsonrpc": "2.0", "id": 2, "method": "author_submitExtrinsic",
                                           "params": ["0x" + good[:-3].hex()]}).json()
    assert truncated["error"]["code"] == 1010 and "decode" in truncated["error"]["data"]
    assert client.rpc.call("system_health")["isSyncing"] is False
    client.close()


@pytest.mark.parametrize("body, code", [
    (b"{not json", -32700),
    (b'"just a string"', -32600),
    (b'{"jsonrpc":"2.0","id":1,"method":"no_such_method","params":[]}', -32601),
    (b'{"jsonrpc":"2.0","id":1,"method":"chain_getBlockHash","params":["not-a-number"]}', -32602),
    (b'{"jsonrpc":"2.0","id":1,"method":"state_getStorage","params":["0xzz"]}', -32602),
    (b'{"jsonrpc":"2.0","id":1,"method":"chain_getHeader","params":[1,2,3]}', -32602),
])
def test_node_rpc_bad_requests_get_errors_over_real_socket(node, body, code):
    reply = httpx.post(node.url, content=body, headers={"content-type": "application/json"}).json()
    assert reply["error"]["code"] == code
    ok = httpx.post(node.url, json={"jsonrpc": "2.0", "id": 9, "method": "system_name", "params": []}).json()
    assert ok["result"] == "gensyn-node"


def test_node_rpc_oversize_body_refused(node):
    big = b'{"jsonrpc":"2.0","id":1,"method":"system_name","params":["' + b"x" * (11 * 1024 * 1024) + b'"]}'
    response = httpx.post(node.url, content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 or response.json()["error"]["code"] == -32007
    assert NodeClient(node.url).rpc.call("system_chain") == "Development"


def test_node_rpc_flood_is_rate_limited_and_others_still_served(tmp_path):
    proc = NodeProcess(tmp_path / "n", "--rpc-rate-limit", "20").start()
    try:
        with httpx.Client() as flooder:
            codes = []
            for i in range(200):
                reply = flooder.post(proc.url, json={"jsonrpc": "2.0", "id": i, "method": "system_name", "params": []})
                codes.append(reply.json().get("error", {}).get("code"))
            assert -32999 in codes
        other = NodeClient(proc.url)
        assert other.rpc.call("system_name") == "gensyn-node"
        other.close()
    finally:
        proc.stop()


def test_node_kill9_and_restart_resumes_and_authors_on(tmp_path):
    proc = NodeProcess(tmp_path / "alice").start()
    client = NodeClient(proc.url)
    call = client.encode_call("Balances", "transfer_keep_alive", {"dest": ("Id", CHARLIE.public), "value": 3 * 10**12})
    statuses = client.submit_and_watch(client.sign(ALICE, call), until="inBlock")
    in_block = statuses[-1]["inBlock"]
    wait_until(lambda: client.best_number() >= 3)
    client.close()
    proc.kill9()
    proc.start()
    client = NodeClient(proc.url)
    assert client.rpc.call("chain_getHeader", in_block) is not None  # acknowledged block survived
    assert client.balance(CHARLIE.public).free >= 3 * 10**12 + 10**18
    resumed = client.best_number()
    assert resumed >= 3
    wait_until(lambda: client.best_number() > resumed)  # and it authors on
    client.close()
    proc.stop()


def test_node_second_process_on_same_base_path_gets_clear_error(node):
    second = subprocess.run([*NODE, "run", "--base-path", str(node.base_path), "--alice", "--rpc-port", "0",
                             "--no-prometheus"], check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert second.returncode == 2
    assert "locked" in second.stderr and "Traceback" not in second.stderr


def test_node_busy_rpc_port_gets_clear_error(node, tmp_path):
    second = subprocess.run([*NODE, "run", "--base-path", str(tmp_path / "other"), "--alice", "--rpc-port",
                             str(node.rpc_port), "--no-prometheus"], check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert second.returncode == 2
    assert "busy" in second.stderr and "Traceback" not in second.stderr


def test_node_metrics_endpoint_reports_heights(node):
    client = NodeClient(node.url)
    wait_until(lambda: client.best_number() >= 2)
    text = httpx.get(f"http://127.0.0.1:{node.metrics_port}/metrics").text
    best = [line for line in text.splitlines() if line.startswith("gensyn_block_height_best ")]
    assert best and float(best[0].split()[1]) >= 2
    assert "gensyn_block_import_seconds_bucket" in text
    client.close()


def test_cli_transfer_and_balance_against_real_node(node):
    run = subprocess.run([*NODE, "tx", "transfer", "--from", "alice", "--to", "dave", "--amount", "2u",
                          "--rpc", node.url, "--wait", "inBlock"], check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "inBlock" in run.stdout
    balance = subprocess.run([*NODE, "account", "balance", "dave", "--rpc", node.url], check=False, cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
    assert "free=1000002000000000000" in balance.stdout
    bad = subprocess.run([*NODE, "tx", "transfer", "--from", "alice", "--to", "nobody", "--amount", "1",
                          "--rpc", node.url], check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "not an account" in bad.stderr


def test_export_and_import_blocks_reproduce_the_chain(node, tmp_path):
    client = NodeClient(node.url)
    wait_until(lambda: client.best_number() >= 3)
    node.stop()
    out = tmp_path / "blocks.bin"
    export = subprocess.run([*NODE, "export-blocks", "--base-path", str(node.base_path), str(out)], check=False, cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert export.returncode == 0, export.stderr
    imported = subprocess.run([*NODE, "import-blocks", "--base-path", str(tmp_path / "copy"), str(out)], check=False, cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
    assert imported.returncode == 0, imported.stderr
    exported_count = int(export.stdout.split()[1])
    assert f"imported {exported_count} blocks" in imported.stdout
    corrupt = tmp_path / "corrupt.bin"
    data = bytearray(out.read_bytes())
    data[60] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    bad = subprocess.run([*NODE, "import-blocks", "--base-path", str(tmp_path / "copy2"), str(corrupt)], check=False, cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "rejected" in bad.stderr


def test_node_keeps_its_keystore_key_across_kill9(tmp_path):
    """A validator without --key signs with its keystore's session key; insertKey sets it, and a
    restart after kill -9 signs with the same key."""
    proc = NodeProcess(tmp_path / "v", key_args=("--validator",)).start()
    assert any("new session key" in line for line in proc.stderr_lines)
    client = NodeClient(proc.url)
    assert client.best_number() == 0  # a random session key is not in the validator set
    alice_session = dev_account("alice", "Ed25519")
    client.rpc.call("author_insertKey", "gsyn", "//Alice", "0x" + alice_session.public.hex())
    assert client.rpc.call("author_hasKey", "0x" + alice_session.public.hex(), "gsyn") is True
    wait_until(lambda: client.best_number() >= 2)
    client.close()
    proc.kill9()
    proc.start()
    assert not any("new session key" in line for line in proc.stderr_lines)
    client = NodeClient(proc.url)
    resumed = client.best_number()
    wait_until(lambda: client.best_number() > resumed)
    client.close()
    proc.stop()


def test_node_refuses_key_insertion_in_safe_rpc_mode(tmp_path):
    proc = NodeProcess(tmp_path / "n", "--rpc-methods", "safe").start()
    try:
        reply = httpx.post(proc.url, json={"jsonrpc": "2.0", "id": 1, "method": "author_rotateKeys", "params": []}).json()
        assert reply["error"]["code"] == -32601 and "unsafe" in reply["error"]["message"]
    finally:
        proc.stop()


def test_node_corrupt_database_gets_clear_error(node):
    node.stop()
    log = next((node.base_path / "db").glob("*.log"))
    data = bytearray(log.read_bytes())
    for i in range(10, len(data), 97):
        data[i] ^= 0xFF
    log.write_bytes(bytes(data))
    run = subprocess.run([*NODE, "run", "--base-path", str(node.base_path), "--alice", "--rpc-port", "0",
                          "--no-prometheus"], check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "corrupt" in run.stderr and "Traceback" not in run.stderr


def test_node_dev_chain_finalizes_through_the_gadget(node):
    """With one validator holding all the stake the gadget finalizes alone: the finalized head
    follows the best, its justification is served, grandpa_roundState has Substrate's shape."""
    from consensus.finality_messages import decode_justification

    client = NodeClient(node.url)

    def finalized_number():
        return int(client.rpc.call("chain_getHeader", client.rpc.call("chain_getFinalizedHead"))["number"], 16)

    wait_until(lambda: finalized_number() >= 3)
    finalized = client.rpc.call("chain_getFinalizedHead")
    justification = decode_justification(bytes.fromhex(client.rpc.call("grandpa_justification", finalized)[2:]))
    assert justification.target_hash.hex() == finalized[2:]
    assert [v.voter for v in justification.precommits] == [dev_account("alice", "Ed25519").public]
    state = client.rpc.call("grandpa_roundState")
    assert state["setId"] == 0 and state["best"]["round"] >= 3
    assert set(state["best"]) == {"round", "totalWeight", "thresholdWeight", "prevotes", "precommits"}
    assert set(state["best"]["prevotes"]) == {"currentWeight", "missing"}
    assert state["best"]["thresholdWeight"] == state["best"]["totalWeight"] * 2 // 3 + 1
    assert client.rpc.call("grandpa_justification", "0x" + "00" * 32) is None
    client.close()
