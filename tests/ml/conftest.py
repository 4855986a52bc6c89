"""Shared fixtures of the exact-engine tests: MNIST (cached), a small seeded subset, jobs."""

from __future__ import annotations

import pytest

from gensyn_node.ml.datasets import Splits, load_mnist, make_subset
from runtime.ml.data import Dataset
from runtime.ml.job import HyperParams, TrainingJob
from runtime.ml.models import CNN, MLP


@pytest.fixture(scope="session")
def mnist() -> Splits:
    return load_mnist()


@pytest.fixture(scope="session")
def subset(mnist: Splits) -> Dataset:
    """512 training samples with their own Merkle root."""
    return make_subset(mnist.train, 512, seed=7)


@pytest.fixture(scope="session")
def make_job():
    """A factory of small jobs on a given data set."""
    return _make_job


def _make_job(dataset: Dataset, model: str = "mlp", steps: int = 8, every: int = 4,
             batch_size: int = 32, seed: bytes = b"\x05" * 32, **hyper: int) -> TrainingJob:
    model_id = {"mlp": MLP.model_id, "cnn": CNN.model_id}[model]
    return TrainingJob(model_id, dataset.root, seed, HyperParams(batch_size=batch_size, **hyper), steps, every)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """In-process tests run torch on one thread: on a shared 2-core machine, two spinning
    OpenMP threads slow small products tenfold. Thread-count independence is tested in
    subprocesses (test_engine.test_same_hash_with_one_and_two_threads)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
