"""polkadot.js (@polkadot/api, pinned in tests/clients/polkadot/package.json), unchanged, against a
real node process: connect, read a balance, sign and send a transfer with `signAndSend`, see it
finalized; and it understands every type of our metadata and composes calls byte for byte as the
node encodes them. The JavaScript side is tests/clients/polkadot/*.mjs; each prints one JSON object.

On a fresh clone the test installs the pinned packages itself (`npm ci`, from the committed
package-lock.json) into tests/clients/polkadot/node_modules, which git ignores.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from gensyn_node.chain_spec import dev_spec
from gensyn_node.keyring import dev_account
from runtime.hashing import blake2_256
from runtime.pallets.ml_compute.registry import MNIST_ROOT
from runtime.version import get_runtime
from tests.integration.nodeproc import NodeProcess

HERE = Path(__file__).resolve().parent / "polkadot"
NPM_CI_TIMEOUT_S = 600
SCRIPT_TIMEOUT_S = 120
AMOUNT = 2 * 10**12

pytestmark = pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None,
                                reason="node.js and npm are needed for the polkadot.js client test")


def install_packages() -> None:
    """`npm ci` once, when node_modules is missing (a fresh clone, CI)."""
    if (HERE / "node_modules" / "@polkadot" / "api").is_dir():
        return
    done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, capture_output=True, text=True,
                          timeout=NPM_CI_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"npm ci failed in {HERE}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    install_packages()
    proc = NodeProcess(tmp_path_factory.mktemp("polkadot") / "alice").start()
    yield proc
    proc.stop()


def run_script(node: NodeProcess, *args: str, script: str = "transfer.mjs") -> dict:
    done = subprocess.run(["node", script, f"ws://127.0.0.1:{node.rpc_port}", *args], cwd=HERE,
                          capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON from {script} (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    report = json.loads(lines[-1])
    assert "error" not in report, report["error"]
    assert done.returncode == 0, done.stderr
    return report


def test_polkadot_js_transfer_is_signed_sent_and_finalized(node):
    report = run_script(node, str(AMOUNT))
    assert report["chain"] == "Development" and report["specName"] == "gensyn-node"
    assert report["ss58Format"] == 42
    assert int(report["existentialDeposit"]) == dev_spec().params.existential_deposit
    assert int(report["aliceBefore"]) > AMOUNT
    assert report["statuses"][0] == "Ready" and report["statuses"][-1] == "Finalized"
    assert report["dispatchError"] is None
    assert "balances.Transfer" in report["events"] and report["events"][-1] == "system.ExtrinsicSuccess"
    assert int(report["bobAfter"]) - int(report["bobBefore"]) == AMOUNT


def test_polkadot_js_block_holds_the_transfer_as_sent(node):
    """A second transfer, nonce from the node's pool-aware `system_accountNextIndex`: the
    finalized block's body holds the very bytes polkadot.js signed (its hash is the tx hash)."""
    report = run_script(node, str(AMOUNT), "--next-nonce")
    assert report["nonce"] >= 1 and report["statuses"][-1] == "Finalized"
    block = httpx.post(node.url, json={"jsonrpc": "2.0", "id": 1, "method": "chain_getBlock",
                                       "params": [report["blockHash"]]}).json()["result"]["block"]
    hashes = ["0x" + blake2_256(bytes.fromhex(x[2:])).hex() for x in block["extrinsics"]]
    assert report["txHash"] in hashes


def test_polkadot_js_default_nonce_after_a_first_transfer(node):
    """polkadot.js's default nonce reads System.Account's `nonce` (a ValueQuery, as Substrate's):
    a third transfer of Alice in this module signs with the right one."""
    report = run_script(node, str(AMOUNT))
    assert report["nonce"] >= 2 and report["statuses"][-1] == "Finalized"


def test_polkadot_js_payment_info_through_the_runtime_api(node):
    """`tx.paymentInfo` needs api.call.transactionPaymentApi, which polkadot.js offers only when the
    runtime version lists the API under Substrate's id (blake2b-64 of the name)."""
    report = run_script(node, str(AMOUNT), "--next-nonce", "--payment-info")
    assert int(report["partialFee"]) > dev_spec().params.base_fee


def test_polkadot_js_understands_every_type_and_composes_calls_as_we_encode_them(node):
    report = run_script(node, script="registry.mjs")
    assert report["unresolved"] == [] and report["types"] > 50
    runtime = get_runtime(1)
    alice, bob = dev_account("alice").public, dev_account("bob").public
    ours = {
        "remark": runtime.encode_call("System", "remark_with_event", {"remark": b"hello"}),
        "transfer": runtime.encode_call("Balances", "transfer_keep_alive", {"dest": ("Id", bob), "value": 12345}),
        "bond": runtime.encode_call("Staking", "bond", {"value": 1000, "payee": ("Staked", None)}),
        "validate": runtime.encode_call("Staking", "validate", {"prefs": {"commission": 1000, "blocked": False},
                                                                "session_key": b"\x11" * 32}),
        "sudo": runtime.encode_call("Sudo", "sudo", {"call": ("Balances", ("force_transfer", {
            "source": ("Id", alice), "dest": ("Id", bob), "value": 5}))}),
        "submitJob": get_runtime(2).encode_call("MlCompute", "submit_job", {
            "model": 2, "dataset": MNIST_ROOT,
            "hyper": {"lr_q16": 3277, "momentum_q16": 58982, "weight_decay_q16": 0, "batch_size": 64},
            "steps": 100, "checkpoint_every": 10, "bounty": 5 * 10**12,
            "verification": {"verifiers": 2, "segments": 3, "fee": 10**11}, "deadline": 20}),
        "challenge": get_runtime(2).encode_call("MlCompute", "challenge", {
            "job": 3, "segment": 1, "claimed_end_hash": b"\x01" * 32, "bond": 10**12}),
    }
    assert report["calls"] == {name: "0x" + encoded.hex() for name, encoded in ours.items()}
    assert report["accounts"] >= 6 and dev_account("alice").address in report["ledgerStashes"]
    assert report["bondingDuration"] == dev_spec().params.bonding_duration
    assert report["architectures"] == ["cnn", "mlp"]
    assert report["metadataVersion"] >= 14
