"""The solver and verifier cores as separate processes against a real `--dev` node: a solver
killed with SIGKILL mid-run resumes from its last stored checkpoint (fetched back from the
node) and ends on the uninterrupted run's hash; verifiers fetch start checkpoints from the
node and catch a faked segment, except the lazy one."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess

import pytest

from gensyn_node.client import NodeClient
from gensyn_node.ml.datasets import load_mnist
from gensyn_node.ml.workdir import HASHES_FILE, JOB_FILE, REPORT_FILE, TrainingDir
from runtime.ml.segments import iter_checkpoints
from tests.integration.nodeproc import NODE, ROOT, NodeProcess


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    proc = NodeProcess(tmp_path_factory.mktemp("workers") / "alice").start()
    yield proc
    proc.stop()


def train_args(out, url: str, *extra: str) -> list[str]:
    return [*NODE, "train", "--model", "mlp", "--batch-size", "16", "--out", str(out), "--rpc", url,
            "--threads", "1", "--no-progress", *extra]


def run(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=False, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def node_has(url: str, blob_hash: bytes) -> bool:
    client = NodeClient(url)
    try:
        return client.rpc.call("mlcompute_getCheckpoint", "0x" + blob_hash.hex()) is not None
    finally:
        client.close()


def test_solver_killed_with_sigkill_resumes_to_the_same_hash(node, tmp_path):
    out = tmp_path / "run"
    args = train_args(out, node.url, "--steps", "96", "--checkpoint-every", "8", "--seed", "kill-9")
    proc = subprocess.Popen(args, cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "solver event=checkpoint index=3 " in line:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, "".join(seen[-20:])
    workdir = TrainingDir(out)
    journal = workdir.read_journal()
    assert 4 <= len(journal) < 13  # killed mid-run, not after it
    # Lose the local copy of the last stored checkpoint: the restart must fetch it from the node.
    workdir.checkpoint_path(journal[-1].index).unlink()
    done = run(args)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["resumed_from_step"] == journal[-1].step
    assert f"solver event=resumed index={journal[-1].index} " in done.stderr
    uninterrupted = [cp.state_hash for cp in iter_checkpoints(workdir.read_job(), load_mnist().train)]
    assert workdir.read_hashes() == uninterrupted
    assert report["state_hash"] == uninterrupted[-1].hex()
    assert all(node_has(node.url, h) for h in uninterrupted)


@pytest.fixture(scope="module")
def faked_run(node, tmp_path_factory):
    """A solver that fakes segment 1 of 4, uploading to the node; the verifiers get only the
    job and the commitment, never the solver's directory."""
    out = tmp_path_factory.mktemp("faked") / "run"
    done = run(train_args(out, node.url, "--steps", "40", "--checkpoint-every", "10", "--seed", "fake",
                          "--cheat", "fake-segment:1"))
    assert done.returncode == 0, done.stderr[-2000:]
    public = out.parent / "public"
    public.mkdir()
    for name in (JOB_FILE, HASHES_FILE, REPORT_FILE):
        shutil.copy(out / name, public / name)
    return public


def test_verifier_fetches_from_node_and_catches_the_fake_segment(node, faked_run):
    done = run([*NODE, "verify-segment", "--dir", str(faked_run), "--segment", "0,1,2,3", "--rpc", node.url,
                "--threads", "1"])
    assert done.returncode == 1, done.stderr[-2000:]
    verdicts = [json.loads(line) for line in done.stdout.strip().splitlines()]
    assert [v["result"] for v in verdicts] == ["match", "mismatch", "match", "match"]
    assert verdicts[1]["got"] != verdicts[1]["expected"] and verdicts[2]["got"] == verdicts[2]["expected"]


def test_lazy_verifier_attests_the_fake_segment(node, faked_run):
    done = run([*NODE, "verify-segment", "--dir", str(faked_run), "--segment", "1", "--rpc", node.url,
                "--cheat", "lazy", "--threads", "1"])
    assert done.returncode == 0, done.stderr[-2000:]
    verdict = json.loads(done.stdout)
    assert verdict["result"] == "match" and verdict["lazy"] is True
