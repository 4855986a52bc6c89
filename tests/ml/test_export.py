"""`gensyn-node job model` and `job plot` over a real (short) MNIST training directory: the model
file loads into the plain torch module and reproduces the exact engine's test accuracy; the
curve is a real PNG; unfinished or empty directories get a clear error."""

from __future__ import annotations

import json

import pytest
import torch

from gensyn_node.cli import main
from gensyn_node.ml.workdir import HASHES_FILE, REPORT_FILE, TrainingDir
from runtime.ml.models import get_model
from runtime.ml.native import build_module, compute_native_accuracy
from runtime.ml.state import compute_state_hash, decode_state

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "run"
    code = main(["train", "--model", "mlp", "--steps", "80", "--checkpoint-every", "20", "--batch-size", "32",
                 "--out", str(out), "--seed", "export", "--threads", "1", "--no-progress"])
    assert code == 0
    return out


def test_job_model_loads_into_native_torch_and_reproduces_accuracy(run_dir, tmp_path, capsys, mnist):
    out = tmp_path / "model.pt"
    capsys.readouterr()
    assert main(["job", "model", "--dir", str(run_dir), "--out", str(out), "--threads", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    report = json.loads((run_dir / REPORT_FILE).read_text())
    module = build_module(get_model("mlp"))
    module.load_state_dict(torch.load(out, weights_only=True))  # a plain state_dict, nothing else
    accuracy = compute_native_accuracy(module, get_model("mlp"), mnist.test.images, mnist.test.labels)
    assert summary["exact_test_accuracy"] == report["test_accuracy"] and summary["state_hash"] == report["state_hash"]
    assert accuracy == summary["native_test_accuracy"]
    # The exact forward rounds onto coarse grids; plain float32 agrees to within 30 of 10,000 images.
    assert abs(accuracy - report["test_accuracy"]) <= 0.003
    assert accuracy > 0.5
    final = decode_state(TrainingDir(run_dir).read_checkpoint(4))
    assert compute_state_hash(final).hex() == report["state_hash"]
    first = module[0].weight.detach().to(torch.float64).flatten()[:5]
    assert torch.equal(first, (final.params[:5] * 2.0**-32).to(torch.float32).to(torch.float64))


def test_job_plot_writes_a_png_of_the_curves(run_dir, tmp_path, capsys):
    import matplotlib.image

    out = tmp_path / "curve.png"
    capsys.readouterr()
    assert main(["job", "plot", "--dir", str(run_dir), "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert matplotlib.image.imread(out).shape[:2] == (400, 1000)
    journal = TrainingDir(run_dir).read_journal()
    assert summary["points"] == sum(len(e.metrics) for e in journal) == 4  # one window per 20-step segment
    assert summary["last_step"] == 80


def test_job_model_and_plot_refuse_unfinished_or_empty_dirs(run_dir, tmp_path, capsys):
    import shutil

    unfinished = tmp_path / "unfinished"
    shutil.copytree(run_dir, unfinished)
    (unfinished / HASHES_FILE).unlink()
    capsys.readouterr()
    assert main(["job", "model", "--dir", str(unfinished), "--out", str(tmp_path / "m.pt")]) == 2
    assert "no finished run" in capsys.readouterr().err
    assert main(["job", "plot", "--dir", str(unfinished), "--out", str(tmp_path / "c.png")]) == 0  # the curve so far
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "job.json").write_text((run_dir / "job.json").read_text())
    assert main(["job", "plot", "--dir", str(empty), "--out", str(tmp_path / "e.png")]) == 2
    assert "no training metrics" in capsys.readouterr().err
    assert main(["job", "model", "--dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "n.pt")]) == 2
