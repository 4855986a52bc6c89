"""The main job, as far as the product goes today: a local dev chain, real transactions from
submission to finality, staking, and bit-for-bit reproducible MNIST training whose segment a
verifier re-runs and matches.

    .venv/bin/python scripts/demo.py [--steps 1000] [--keep DIR]

Each step prints what it did; the node runs as a real process on loopback with LevelDB on disk.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gensyn_node.chain_spec import UNIT
from gensyn_node.client import NodeClient
from gensyn_node.keyring import dev_account
from tests.integration.nodeproc import NODE, NodeProcess


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run([*NODE, *args], cwd=ROOT, text=True, capture_output=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise SystemExit(f"gensyn-node {' '.join(args)} failed:\n{result.stderr}")
    return result


def run_chain(workdir: Path) -> None:
    step("Starting a dev chain (alice validates; 1 s slots; LevelDB under the work directory)")
    node = NodeProcess(workdir / "node").start()
    client = NodeClient(node.url)
    try:
        print(f"node ready at {node.url}, chain '{client.rpc.call('system_chain')}', "
              f"genesis 0x{client.genesis_hash.hex()[:16]}...")
        alice, bob, charlie = dev_account("alice"), dev_account("bob"), dev_account("charlie")

        step("Transfer 25 units alice -> bob, followed until finalized")
        before = client.balance(bob.public).free
        xt = client.sign(alice, client.encode_call("Balances", "transfer_keep_alive",
                                                   {"dest": ("Id", bob.public), "value": 25 * UNIT}))
        for status in client.submit_and_watch(xt, until="finalized"):
            print(f"  status: {status}")
        print(f"  bob: {before / UNIT:.1f} -> {client.balance(bob.public).free / UNIT:.1f} units")

        step("charlie bonds 2,000 units and offers to validate (Staking.bond, Staking.validate)")
        bond = client.sign(charlie, client.encode_call("Staking", "bond", {"value": 2000 * UNIT, "payee": ("Staked", None)}))
        print(f"  bond: {client.submit_and_watch(bond, until='inBlock')[-1]}")
        session = dev_account("charlie", "Ed25519").public
        validate = client.sign(charlie, client.encode_call("Staking", "validate",
                                                           {"prefs": {"commission": 0, "blocked": False}, "session_key": session}))
        print(f"  validate: {client.submit_and_watch(validate, until='inBlock')[-1]}")
        charlie_balance = client.balance(charlie.public)
        print(f"  charlie: free {charlie_balance.free / UNIT:.1f}, reserved (bonded) {charlie_balance.reserved / UNIT:.1f}")
        print(f"  best #{client.best_number()}, finalized #{client.finalized_number()}")
    finally:
        client.close()
        node.stop()
    print("node stopped; its database stays under", workdir / "node")


def run_training(workdir: Path, steps: int) -> None:
    out = workdir / "train"
    every = max(steps // 4, 1)
    step(f"Training an MLP on MNIST with the exact engine: {steps} steps, a checkpoint every {every}")
    started = time.time()
    proc = subprocess.run([*NODE, "train", "--model", "mlp", "--dataset", "mnist", "--steps", str(steps),
                           "--checkpoint-every", str(every), "--out", str(out)], cwd=ROOT, text=True, timeout=1800,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit("training failed")
    print(f"  trained in {time.time() - started:.1f} s")
    report_path = next((p for p in (out / "report.json", out / "final_report.json") if p.exists()), None)
    if report_path is not None:
        report = json.loads(report_path.read_text())
        shown = {k: report[k] for k in report if k in ("test_accuracy", "state_hash", "commitment_root", "steps")}
        print(f"  report: {json.dumps(shown)}")

    step("A verifier re-runs segment 1 (checkpoint 1 -> 2) and compares hashes bit for bit")
    result = cli("verify-segment", "--dir", str(out), "--segment", "1")
    print("  " + result.stdout.strip().replace("\n", "\n  "))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--keep", default=None, help="keep the work directory here")
    args = parser.parse_args()
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gensyn-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        run_chain(workdir)
        run_training(workdir, args.steps)
        step("Done: chain, staking and verifiable training ran end to end")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
