"""The main job: a 4-validator devnet, one solver and two verifiers (each its own process), an
MNIST training job from submission to settlement, and the trained model downloaded.

    .venv/bin/python scripts/demo.py [--cheat] [--steps 400] [--keep DIR]

It prints the story as it happens: the job posted with its bounty in escrow, assigned by the
chain's draw, training progress, committed, verified, settled, the test accuracy, the balances
of submitter, solver and verifiers before and after, and the model file written. With
`--cheat` the solver fakes one segment: the verifiers' re-run differs, a verifier challenges,
each bisection round is shown, the runtime recomputes the one disputed step, the solver is
slashed and the bounty refunded. Every process it started is stopped at the end.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gensyn_node.chain_spec import UNIT, validator_names
from gensyn_node.cli.devnet import read_node, start_nodes, stop_nodes
from gensyn_node.client import NodeClient
from gensyn_node.keyring import dev_account, keypair_from_uri
from gensyn_node.ml.chain import ChainView, is_final
from runtime.ml.data import MNIST
from tests.integration.workerproc import WorkerProcess, last_json, run_cli, write_fast_spec

ROLES = {"submitter": "//Submitter", "solver": "//Solver", "verifier-1": "//Verifier1", "verifier-2": "//Verifier2"}
SHOWN = ("registered", "training", "resumed", "checkpoint", "committed", "job_verifying", "rerun", "attested",
         "challenge", "revealed", "bisect", "answer", "referee_input", "referee_submitted", "referee_withheld",
         "job_settled", "job_rejected", "tx_failed", "attest_failed", "challenge_failed", "stopped")
STARTED = time.monotonic()


def say(text: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {text}", flush=True)


def echo(role: str, line: str) -> None:
    parts = line.split()
    if len(parts) > 1 and parts[1].startswith("event=") and parts[1][6:] in SHOWN:
        say(f"  {role:<10} {' '.join(parts[1:])}")


def balances(client: NodeClient, keys: dict) -> dict[str, tuple[int, int]]:  # type: ignore[type-arg]
    out = {}
    for name, key in keys.items():
        b = client.balance(key.public)
        out[name] = (b.free, b.reserved)
    return out


def show_balances(title: str, before: dict, after: dict | None = None) -> None:  # type: ignore[type-arg]
    say(title)
    for name, (free, reserved) in (after or before).items():
        line = f"    {name:<11} free {free / UNIT:12.4f}  reserved {reserved / UNIT:9.4f}"
        if after is not None:
            delta = (free + reserved - sum(before[name])) / UNIT
            line += f"   total {delta:+.4f}"
        print(line, flush=True)


def wait_ready(nodes, timeout: float = 90.0) -> None:  # type: ignore[no-untyped-def]
    import httpx

    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as http:
        while time.monotonic() < deadline:
            states = [read_node(http, node) for node, _proc in nodes]
            if all(s is not None and s["best"] >= 2 and s["peers"] >= 1 for s in states):
                return
            time.sleep(0.5)
    raise SystemExit("the devnet did not start producing blocks in time")


def fund(client: NodeClient, keys: dict) -> None:  # type: ignore[type-arg]
    alice = dev_account("alice")
    nonce = client.next_nonce(alice)
    for i, key in enumerate(keys.values()):
        call = client.encode_call("Balances", "transfer_keep_alive", {"dest": ("Id", key.public), "value": 1000 * UNIT})
        client.submit(client.sign(alice, call, nonce=nonce + i))
    deadline = time.monotonic() + 60
    while any(client.balance(k.public).free == 0 for k in keys.values()):
        if time.monotonic() > deadline:
            raise SystemExit("funding transfers were not included in time")
        time.sleep(0.5)


def follow(view: ChainView, job_id: int, timeout: float) -> dict:  # type: ignore[type-arg]
    """Print the job's status changes (as the chain records them) until it is final."""
    last = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = view.get_job(job_id)
        if job["status"] != last:
            last = job["status"]
            extra = ""
            if last == "Assigned":
                extra = f"to {job['solver'][:10]}... data seed {job['seed'][:18]}..., commit by block #{job['commitBy']}"
            elif last == "Committed":
                c = job["commitment"]
                extra = (f"root {c['checkpointRoot'][:18]}..., {c['nCheckpoints']} checkpoints, "
                         f"claimed test accuracy {c['metrics']['testAccuracyPpm'] / 1e4:.2f}%")
            elif last == "Verifying":
                extra = "duties " + "; ".join(f"{d['verifier'][:10]}... segments {d['segments']}" for d in job["duties"])
            elif last == "Disputed":
                d = view.get_dispute(job_id)
                if d:
                    extra = f"segment {d['segment']} (steps {d['loStep']}..{d['hiStep']}) challenged, bond {d['bond'] / UNIT} units"
            say(f"CHAIN job {job_id}: {last} {extra}")
        if is_final(job):
            return job
        time.sleep(0.3)
    raise SystemExit(f"job {job_id} did not finish in {timeout:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cheat", action="store_true", help="the solver fakes one segment")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--keep", default=None, help="keep the work directory here")
    args = parser.parse_args()
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gensyn-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    keys = {name: keypair_from_uri(uri) for name, uri in ROLES.items()}
    nodes: list = []  # type: ignore[type-arg]
    workers: list[WorkerProcess] = []
    try:
        say("== Starting a 4-validator devnet (alice, bob, charlie, dave; 1 s slots; LevelDB per node)")
        # Windows in blocks: each verifier re-runs two 100-step segments one after the other.
        spec = write_fast_spec(workdir / "spec.json", validators=4, attest_window=12, challenge_window=14)
        nodes = start_nodes(workdir, spec, validator_names(4))
        wait_ready(nodes)
        url = nodes[0][0].rpc_url
        client = NodeClient(url)
        say(f"devnet up; workers and submitter use {nodes[0][0].name}'s RPC at {url}")
        fund(client, keys)
        say("alice funded submitter, solver and both verifiers with 1,000 units each")

        say("== Workers start as their own processes and stake")
        cheat = ["--cheat", "fake-segment:1"] if args.cheat else []
        workers = [WorkerProcess("solver", url, ROLES["solver"], "200u", "--dir", str(workdir / "solver"),
                                 "--no-progress", *cheat, echo=echo)]
        workers += [WorkerProcess("verifier", url, ROLES[name], "20u", echo=echo, label=name)
                    for name in ("verifier-1", "verifier-2")]
        for w in workers:
            w.start()
        for w in workers:
            w.wait_for("event=registered", timeout=120)
        before = balances(client, keys)
        show_balances("balances before the job:", before)

        every = max(1, args.steps // 4)
        say(f"== Submitting an MNIST job: MLP 784-256-10, {args.steps} steps, batch 64, a checkpoint every {every}, "
            f"bounty 50 units, 2 verifiers x 2 segments (every segment re-run), fee 1 unit per attestation")
        view = ChainView(url, keys["submitter"])
        done = run_cli("job", "submit", "--model", "mlp", "--dataset", MNIST.name, "--steps", str(args.steps),
                       "--checkpoint-every", str(every), "--bounty", "50u", "--verifiers", "2", "--segments", "2",
                       "--fee", "1u", "--deadline", "200", "--from", ROLES["submitter"], "--rpc", url)
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        posted = last_json(done.stdout)
        job_id = posted["job"]
        say(f"CHAIN job {job_id} posted: bounty {posted['bounty'] / UNIT} units reserved in escrow "
            f"(submitter reserved now {client.balance(keys['submitter'].public).reserved / UNIT} units); "
            f"min solver stake {posted['min_solver_stake'] / UNIT} units")
        job = follow(view, job_id, timeout=240)

        after = balances(client, keys)
        say(f"== The job ended {job['status']}")
        if job["status"] == "Settled":
            model = view.get_model(job_id)
            say(f"trained model final on chain: state {model['stateHash'][:18]}..., test accuracy "
                f"{model['metrics']['testAccuracyPpm'] / 1e4:.2f}% (as committed)")
            out = workdir / "mnist-mlp.pt"
            exported = run_cli("job", "model", str(job_id), "--out", str(out), "--rpc", url)
            if exported.returncode != 0:
                raise SystemExit(exported.stderr)
            summary = last_json(exported.stdout)
            say(f"model file written: {out} ({out.stat().st_size} bytes); loaded back into plain torch: "
                f"native test accuracy {summary['native_test_accuracy'] * 100:.2f}%, exact engine "
                f"{summary['exact_test_accuracy'] * 100:.2f}%")
            print(f"    load it: {summary['load_with']}", flush=True)
        else:
            worker = view.get_worker("Solver", keys["solver"].public)
            say(f"the runtime's verdict slashed the solver: stake {200:.1f} -> {worker['stake'] / UNIT:.1f} units; "
                f"the bounty less the fees of the segments not proven wrong went back to the submitter")
        show_balances("balances after (total = free + reserved, change includes transaction fees):", before, after)
        view.close()
        client.close()
    finally:
        say("== Stopping every process")
        for w in workers:
            w.stop()
        stop_nodes(nodes)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    say(f"done in {time.monotonic() - STARTED:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
