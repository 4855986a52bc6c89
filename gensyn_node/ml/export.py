"""A finished job's results for people: the model as a torch file and its training curve.

`export_model` writes the final exact state's master weights as the `state_dict` of the native
torch model (`runtime.ml.native.build_module`), so that

    module = build_module(get_model("mlp")); module.load_state_dict(torch.load(FILE))

gives an ordinary float32 `nn.Sequential`. It re-measures the test accuracy both ways (the exact
engine's forward pass, and the native module from the file) and reports both: the exact
forward rounds weights and activations onto coarse grids that plain float32 does not, so the
two agree to a fraction of a point, not bit for bit (tests bound the gap).

`plot_metrics` draws the training loss and accuracy windows of the journal (and the test
accuracy of the report, when there is one) as a PNG with matplotlib's headless Agg backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gensyn_node.ml.workdir import TrainingDir, WorkDirError


class ExportError(Exception):
    """The directory has no finished run to export or plot; the message says what is missing."""


def load_final_state(workdir: TrainingDir):  # type: ignore[no-untyped-def]
    """The final checkpoint of a finished run, checked against its committed hash."""
    from runtime.ml.errors import MlError
    from runtime.ml.state import decode_state_checked

    job = workdir.read_job()
    try:
        hashes = workdir.read_hashes()
    except WorkDirError as exc:
        raise ExportError(f"{workdir.path} holds no finished run ({exc})") from exc
    if len(hashes) != job.n_checkpoints:
        raise ExportError(f"{workdir.path} has {len(hashes)} of the job's {job.n_checkpoints} checkpoints")
    data = workdir.read_checkpoint(len(hashes) - 1)
    if data is None:
        raise ExportError(f"final checkpoint {len(hashes) - 1} is missing from {workdir.path}")
    try:
        return job, decode_state_checked(data, hashes[-1])
    except MlError as exc:
        raise ExportError(f"final checkpoint is not the committed one: {exc}") from exc


def export_model(workdir: TrainingDir, out: Path, cache_dir: str | None = None) -> dict[str, Any]:
    from runtime.ml.data import get_dataset_spec

    job, state = load_final_state(workdir)
    return export_state(state, get_dataset_spec(job.dataset_id).name, out, cache_dir)


def export_state(state: Any, dataset: str, out: Path, cache_dir: str | None = None) -> dict[str, Any]:
    """Write `state`'s master weights as the native module's state_dict to `out`, then load the
    file back into a fresh module and measure both test accuracies on `dataset`."""
    import torch

    from gensyn_node.ml.datasets import load_dataset
    from runtime.ml.engine import compute_accuracy
    from runtime.ml.native import build_module, compute_native_accuracy, load_params
    from runtime.ml.state import compute_state_hash

    spec = state.model
    module = build_module(spec)
    load_params(module, spec, state.params)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        torch.save(module.state_dict(), out)
    except OSError as exc:
        raise ExportError(f"cannot write {out}: {exc}") from exc
    test = load_dataset(dataset, cache_dir).test
    reloaded = build_module(spec)
    reloaded.load_state_dict(torch.load(out, weights_only=True))
    return {
        "model": spec.name,
        "file": str(out),
        "state_hash": compute_state_hash(state).hex(),
        "step": state.step,
        "exact_test_accuracy": compute_accuracy(state, test.images, test.labels),
        "native_test_accuracy": compute_native_accuracy(reloaded, spec, test.images, test.labels),
        "load_with": f"build_module(get_model({spec.name!r})).load_state_dict(torch.load(FILE))",
    }


def compute_checkpoint_curve(states: list[Any], dataset: str, cache_dir: str | None = None,
                             n_test: int = 2000) -> list[tuple[int, float, float]]:
    """(step, test loss, test accuracy) of each checkpoint state, measured with the native
    module on the first `n_test` test samples: the curve of a job that ran elsewhere, from the
    committed checkpoints alone."""
    import torch

    from gensyn_node.ml.datasets import load_dataset
    from runtime.ml.native import build_module, load_params, to_native_input

    test = load_dataset(dataset, cache_dir).test
    images, labels = test.images[:n_test], test.labels[:n_test]
    curve = []
    for state in states:
        module = build_module(state.model)
        load_params(module, state.model, state.params)
        with torch.no_grad():
            logits = module(to_native_input(state.model, images))
            loss = float(torch.nn.functional.cross_entropy(logits, labels))
            acc = float((logits.argmax(1) == labels).float().mean())
        curve.append((state.step, round(loss, 6), round(acc, 6)))
    return curve


def plot_checkpoint_curve(curve: list[tuple[int, float, float]], out: Path, title: str) -> dict[str, Any]:
    """Draw test loss and accuracy per checkpoint as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not curve:
        raise ExportError("no checkpoints to plot")
    steps = [s for s, _l, _a in curve]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    try:
        loss_ax.plot(steps, [loss for _s, loss, _a in curve], color="tab:red", marker="o")
        loss_ax.set(xlabel="step", ylabel="test loss", title="loss per checkpoint")
        acc_ax.plot(steps, [acc for _s, _l, acc in curve], color="tab:blue", marker="o")
        acc_ax.set(xlabel="step", ylabel="test accuracy", title="accuracy per checkpoint", ylim=(0.0, 1.0))
        for ax in (loss_ax, acc_ax):
            ax.grid(alpha=0.3)
        fig.suptitle(title)
        fig.tight_layout()
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(out, format="png", dpi=100)
        except OSError as exc:
            raise ExportError(f"cannot write {out}: {exc}") from exc
    finally:
        plt.close(fig)
    return {"file": str(out), "points": len(curve), "last_step": steps[-1], "last_loss": curve[-1][1],
            "last_accuracy": curve[-1][2]}


def read_curve(workdir: TrainingDir) -> list[tuple[int, float, float]]:
    curve = [m for entry in workdir.read_journal() for m in entry.metrics]
    if not curve:
        raise ExportError(f"{workdir.path} has no training metrics yet")
    return curve


def plot_metrics(workdir: TrainingDir, out: Path) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = read_curve(workdir)
    try:
        report = workdir.read_report()
    except WorkDirError:
        report = {}
    steps = [s + 1 for s, _loss, _acc in curve]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    try:
        loss_ax.plot(steps, [loss for _s, loss, _a in curve], color="tab:red")
        loss_ax.set(xlabel="step", ylabel="training loss", title="loss")
        acc_ax.plot(steps, [acc for _s, _l, acc in curve], color="tab:blue", label="training (window)")
        test_acc = report.get("test_accuracy")
        if isinstance(test_acc, float):
            acc_ax.axhline(test_acc, color="tab:green", linestyle="--", label=f"test {test_acc:.4f}")
        acc_ax.set(xlabel="step", ylabel="accuracy", title="accuracy", ylim=(0.0, 1.0))
        acc_ax.legend(loc="lower right")
        for ax in (loss_ax, acc_ax):
            ax.grid(alpha=0.3)
        fig.suptitle(f"{report.get('model', 'job')} on {report.get('dataset', '?')}: {steps[-1]} steps")
        fig.tight_layout()
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(out, format="png", dpi=100)
        except OSError as exc:
            raise ExportError(f"cannot write {out}: {exc}") from exc
    finally:
        plt.close(fig)
    return {"file": str(out), "points": len(curve), "last_step": steps[-1],
            "last_loss": curve[-1][1], "last_accuracy": curve[-1][2]}
