"""Fixtures of the ML-compute pallet tests: a 256-sample MNIST subset registered as its own
data set (its Merkle root), its Merkle levels for the referee's proofs, and a fresh sim."""

from __future__ import annotations

import pytest

from gensyn_node.ml.datasets import load_mnist, make_subset
from runtime.ml.data import Dataset
from tests.ml_compute.actors import get_levels
from tests.ml_compute.sim import Sim


@pytest.fixture(scope="session")
def subset() -> Dataset:
    return make_subset(load_mnist().train, 256, seed=11)


@pytest.fixture(scope="session")
def levels(subset: Dataset) -> list[list[bytes]]:
    return get_levels(subset)


@pytest.fixture(scope="session")
def subset_info(subset: Dataset) -> tuple[bytes, dict]:
    return subset.root, {"name": b"mnist-256", "n_samples": 256, "sample_bytes": 784, "n_classes": 10}


@pytest.fixture
def sim(subset_info) -> Sim:
    return Sim(datasets=[subset_info])


@pytest.fixture(autouse=True)
def one_torch_thread():
    """In-process tests run torch on one thread (a shared 2-core machine; see tests/ml)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
