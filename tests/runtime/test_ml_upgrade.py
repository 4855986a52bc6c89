"""A chain started at spec_version 1 (no ML-compute pallet) upgrades to 2 with sudo through
real signed extrinsics in real blocks: before the upgrade an ML call does not even decode;
the first block of spec 2 builds the pallet's registries (its storage-version-gated
migration), and from then on the chain accepts jobs."""

from __future__ import annotations

import pytest

from runtime.codec.errors import CodecError
from runtime.pallets.ml_compute import storage as ml
from runtime.pallets.ml_compute.registry import MNIST_ROOT
from runtime.pallets.system import storage as system
from runtime.storage import OverlayState
from runtime.transaction_validity import InvalidTransaction
from runtime.version import get_runtime
from tests.runtime.conftest import _read_events

RT2 = get_runtime(2)
JOB_ARGS = {"model": 1, "dataset": MNIST_ROOT,
            "hyper": {"lr_q16": 3277, "momentum_q16": 58982, "weight_decay_q16": 0, "batch_size": 64},
            "steps": 100, "checkpoint_every": 10, "bounty": 10**14,
            "verification": {"verifiers": 2, "segments": 2, "fee": 10**12}, "deadline": 50}


def test_upgrade_from_1_to_2_then_jobs_are_accepted(chain, trie, store, sign, rt, alice, bob, make_block, commit):
    assert "MlCompute" not in rt.pallets_by_name
    submit2 = RT2.encode_call("MlCompute", "submit_job", JOB_ARGS)
    with pytest.raises((CodecError, InvalidTransaction)):
        make_block(trie, chain.header, [sign(bob, submit2, 0)])

    upgrade = rt.encode_call("Sudo", "sudo", {"call": ("System", ("upgrade_runtime", {"spec_version": 2}))})
    first = make_block(trie, chain.header, [sign(alice, upgrade, 0)])
    after1 = commit(store, first)
    assert system.PendingSpecVersion.get(OverlayState(after1.get)) == 2
    assert ml.StorageVersion.get(OverlayState(after1.get)) is None

    second = make_block(after1, first.header, [sign(bob, submit2, 0, spec_version=2)])
    assert second.outcomes[0].success, second.outcomes[0]
    after2 = commit(store, second)
    state = OverlayState(after2.get, after2.iter_prefix)
    assert system.SpecVersion.get(state) == 2
    assert ml.StorageVersion.get(state) == 1
    assert sorted(a["name"] for _k, a in ml.Architectures.iter_values(state)) == [b"cnn", b"mlp"]
    assert ml.Datasets.get(state, MNIST_ROOT)["n_samples"] == 60000
    job = ml.Jobs.get(state, 0)
    assert job["submitter"] == bob.public and job["status"] == ("Pending", None)
    assert OverlayState(after2.get).get(system.Account.key(bob.public)) is not None
    events = [e["event"] for e in _read_events(RT2, after2.get)]
    assert ("System", ("CodeUpdated", None)) in events
    names = [ev[1][0] for ev in events if ev[0] == "MlCompute"]
    assert names[:3] == ["ArchitectureRegistered", "ArchitectureRegistered", "DatasetRegistered"]
    assert "JobSubmitted" in names

    # The next block draws no solver (none registered) and runs no second migration.
    third = make_block(after2, second.header, [])
    after3 = commit(store, third)
    events3 = [e["event"] for e in _read_events(RT2, after3.get)]
    assert not [e for e in events3 if e[0] == "MlCompute"]
