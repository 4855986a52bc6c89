"""`gensyn-node train` and `gensyn-node verify-segment` on a real (short) MNIST run."""

from __future__ import annotations

import json

import pytest

from gensyn_node.cli import main
from gensyn_node.cli.ml import HASHES_FILE, REPORT_FILE, checkpoint_path
from runtime.hashing import blake2_256


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    code = main(["train", "--model", "mlp", "--dataset", "mnist", "--steps", "30", "--checkpoint-every", "10",
                 "--out", str(out), "--seed", "7", "--threads", "1", "--no-progress"])
    assert code == 0
    return out


def test_train_writes_checkpoints_and_report(run_dir):
    report = json.loads((run_dir / REPORT_FILE).read_text())
    hashes = json.loads((run_dir / HASHES_FILE).read_text())
    assert len(hashes) == 4 and report["state_hash"] == hashes[-1]
    for i, h in enumerate(hashes):
        assert blake2_256(checkpoint_path(run_dir, i).read_bytes()).hex() == h
    assert 0.0 < report["test_accuracy"] <= 1.0
    assert len(bytes.fromhex(report["commitment_root"])) == 32


def test_verify_segment_matches(run_dir, capsys):
    capsys.readouterr()
    assert main(["verify-segment", "--dir", str(run_dir), "--segment", "1", "--threads", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["result"] == "match"


def test_verify_segment_detects_a_flipped_bit(run_dir, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    path = checkpoint_path(copy, 2)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["verify-segment", "--dir", str(copy), "--segment", "2", "--threads", "1"]) == 1
    assert "StateHashMismatchError" in capsys.readouterr().out


def test_verify_segment_detects_a_forged_end_hash(run_dir, tmp_path, capsys):
    """A solver that lies about checkpoint 3 (and recomputes its commitment) is caught."""
    import shutil

    from runtime.ml.segments import compute_commitment

    copy = tmp_path / "forged"
    shutil.copytree(run_dir, copy)
    hashes = json.loads((copy / HASHES_FILE).read_text())
    hashes[3] = blake2_256(b"forged").hex()
    (copy / HASHES_FILE).write_text(json.dumps(hashes))
    report = json.loads((copy / REPORT_FILE).read_text())
    report["commitment_root"] = compute_commitment([bytes.fromhex(h) for h in hashes]).hex()
    (copy / REPORT_FILE).write_text(json.dumps(report))
    capsys.readouterr()
    assert main(["verify-segment", "--dir", str(copy), "--segment", "2", "--threads", "1"]) == 1
    assert json.loads(capsys.readouterr().out)["result"] == "mismatch"


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--model", "resnet", "--steps", "5", "--out", "{tmp}"],
        ["train", "--model", "mlp", "--steps", "5", "--batch-size", "48", "--out", "{tmp}"],
        ["train", "--model", "mlp", "--steps", "5", "--lr", "2.0", "--out", "{tmp}"],
        ["train", "--model", "mlp", "--steps", "5", "--dataset", "cifar", "--out", "{tmp}"],
        ["verify-segment", "--dir", "{tmp}", "--segment", "0"],
    ],
)
def test_operator_mistakes_exit_2(argv, tmp_path, capsys):
    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv] + ["--threads", "1"])
    assert code == 2
    assert capsys.readouterr().err.startswith("error:")


def test_unwritable_output_exits_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code = main(["train", "--model", "mlp", "--steps", "2", "--checkpoint-every", "1", "--out", str(blocker),
                 "--threads", "1", "--no-progress"])
    assert code == 2
    assert "error:" in capsys.readouterr().err
