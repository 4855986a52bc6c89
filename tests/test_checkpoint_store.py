"""The checkpoint blob store on LevelDB on disk: content addressing, bounds, the capacity,
settled-job eviction that keeps the final model, orphans, and reopening."""

from __future__ import annotations

from pathlib import Path

import pytest

from gensyn_node.db import keys
from gensyn_node.db.checkpoints import (
    CheckpointHashMismatch,
    CheckpointStore,
    CheckpointStoreFull,
    InvalidCheckpoint,
    Settlement,
)
from gensyn_node.db.kv import LevelKV, StoreCorruptError
from runtime.hashing import blake2_256

JOB_A, JOB_B = b"\xaa" * 32, b"\xbb" * 32
DAY_MS = 24 * 3600 * 1000


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


class Settled:
    """The settlement input as the pallet will give it: job id -> (when, final state)."""

    def __init__(self) -> None:
        self.jobs: dict[bytes, Settlement] = {}

    def settle(self, job_id: bytes, at_ms: int, final_hash: bytes | None) -> None:
        self.jobs[job_id] = Settlement(job_id, at_ms, final_hash)

    def get_settlement(self, job_id: bytes) -> Settlement | None:
        return self.jobs.get(job_id)


@pytest.fixture
def kv(tmp_path: Path):
    store = LevelKV(str(tmp_path / "db"))
    yield store
    store.close()


def make_store(kv, clock=None, settled=None, **kw) -> CheckpointStore:
    return CheckpointStore(kv, clock_ms=clock or Clock(), settlements=settled, retention_ms=DAY_MS,
                           orphan_retention_ms=DAY_MS, **kw)


def blob(n: int, size: int = 1000) -> bytes:
    return bytes([n % 256]) * size


def test_checkpoint_store_put_get_content_addressed(kv):
    store = make_store(kv)
    data = blob(1)
    h = store.put(data)
    assert h == blake2_256(data)
    assert store.get(h) == data and store.has(h)
    assert store.put(data) == h  # idempotent
    assert store.used_bytes == len(data)
    assert store.get(b"\x00" * 32) is None and not store.has(b"\x00" * 32)


def test_checkpoint_store_rejects_bad_input_and_writes_nothing(kv):
    store = make_store(kv, max_blob_bytes=2000, capacity_bytes=10_000)
    data = blob(2)
    with pytest.raises(CheckpointHashMismatch, match="hash to"):
        store.put(data, expected_hash=b"\x01" * 32)
    with pytest.raises(InvalidCheckpoint, match="exceeds the 2000-byte bound"):
        store.put(blob(3, 2001))
    with pytest.raises(InvalidCheckpoint, match="empty"):
        store.put(b"")
    with pytest.raises(InvalidCheckpoint, match="job id"):
        store.put(data, job_id=b"short")
    with pytest.raises(InvalidCheckpoint, match="index"):
        store.put(data, job_id=JOB_A, index=-1)
    with pytest.raises(InvalidCheckpoint, match="bytes, not str"):
        store.put("text")  # type: ignore[arg-type]
    with pytest.raises(InvalidCheckpoint, match="hash must be 32 bytes"):
        store.get(b"abc")
    assert list(kv.iterate(b"")) == [] and store.used_bytes == 0


def test_checkpoint_store_full_is_refused_and_keeps_what_it_holds(kv):
    store = make_store(kv, max_blob_bytes=1000, capacity_bytes=2500)
    kept = [store.put(blob(i), job_id=JOB_A, index=i) for i in range(2)]
    with pytest.raises(CheckpointStoreFull, match="2000 of 2500 bytes used"):
        store.put(blob(9), job_id=JOB_A, index=2)
    assert [store.get(h) for h in kept] == [blob(0), blob(1)]
    assert store.used_bytes == 2000


def test_checkpoint_store_evicts_settled_job_but_keeps_final_model(kv):
    clock, settled = Clock(), Settled()
    store = make_store(kv, clock, settled, max_blob_bytes=1000, capacity_bytes=3500)
    hashes = [store.put(blob(i), job_id=JOB_A, index=i) for i in range(3)]
    assert store.get_job_checkpoints(JOB_A) == sorted(zip(range(3), hashes))
    # Open job: nothing may go, so the put is refused.
    with pytest.raises(CheckpointStoreFull):
        store.put(blob(10), job_id=JOB_B, index=0)
    settled.settle(JOB_A, clock.now, hashes[-1])
    # Settled, but not long enough ago.
    with pytest.raises(CheckpointStoreFull):
        store.put(blob(10), job_id=JOB_B, index=0)
    clock.now += DAY_MS
    new = store.put(blob(10), job_id=JOB_B, index=0)  # evicts A's first two, keeps its final
    assert store.get(hashes[0]) is None and store.get(hashes[1]) is None
    assert store.get(hashes[2]) == blob(2) and store.get(new) == blob(10)
    assert store.get_job_checkpoints(JOB_A) == [(2, hashes[2])]
    assert store.used_bytes == 2000
    assert kv.get(keys.checkpoint_info_key(hashes[0])) is None
    assert store.evict().blobs == 0  # the final model stays however long ago


def test_checkpoint_store_shared_blob_survives_one_jobs_eviction(kv):
    clock, settled = Clock(), Settled()
    store = make_store(kv, clock, settled)
    shared = store.put(blob(1), job_id=JOB_A, index=0)
    store.put(blob(1), job_id=JOB_B, index=0)
    final_a = store.put(blob(2), job_id=JOB_A, index=1)
    assert sorted(store.get_owners(shared)) == [JOB_A, JOB_B]
    settled.settle(JOB_A, clock.now - DAY_MS, final_a)
    report = store.evict()
    assert report.blobs == 0 and store.get(shared) == blob(1)  # job B still holds it
    assert store.get_owners(shared) == [JOB_B]
    settled.settle(JOB_B, clock.now - DAY_MS, None)  # refunded: no final model to keep
    assert store.evict().blobs == 1 and store.get(shared) is None
    assert store.get(final_a) == blob(2)


def test_checkpoint_store_orphans_expire(kv):
    clock = Clock()
    store = make_store(kv, clock)
    orphan = store.put(blob(1))
    owned = store.put(blob(2), job_id=JOB_A)
    clock.now += DAY_MS - 1
    assert store.evict().blobs == 0
    clock.now += 1
    assert store.evict() .blobs == 1
    assert store.get(orphan) is None and store.get(owned) == blob(2)
    assert store.used_bytes == 1000


def test_checkpoint_store_unverified_references_expire_as_orphans(kv):
    clock = Clock()
    store = make_store(kv, clock)
    loose = store.put(blob(1), job_id=JOB_A, index=0, pinned=False)
    both = store.put(blob(2), job_id=JOB_A, index=1, pinned=False)
    store.put(blob(2), job_id=JOB_B, index=0)  # a checked reference pins the shared blob
    store.put(blob(2), job_id=JOB_B, index=0, pinned=False)  # and a later unchecked put keeps the pin
    assert not store.is_pinned(loose) and store.is_pinned(both)
    clock.now += DAY_MS
    assert store.evict().blobs == 1
    assert store.get(loose) is None and store.get(both) == blob(2)
    # The orphan's unverified reference went with it; the pinned blob keeps both of its jobs.
    assert store.get_job_checkpoints(JOB_A) == [(1, both)]
    assert sorted(store.get_owners(both)) == [JOB_A, JOB_B]
    assert kv.get(keys.checkpoint_owner_key(loose, JOB_A)) is None


def test_checkpoint_store_full_evicts_oldest_orphans_for_a_pinned_put_only(kv):
    clock = Clock()
    store = make_store(kv, clock, max_blob_bytes=1000, capacity_bytes=2500)
    old = store.put(blob(1), job_id=JOB_A, index=0, pinned=False)
    clock.now += 1
    young = store.put(blob(2))
    # An unverified put never displaces anything.
    with pytest.raises(CheckpointStoreFull):
        store.put(blob(3), job_id=JOB_A, index=1, pinned=False)
    assert store.get(old) == blob(1) and store.get(young) == blob(2)
    pinned = store.put(blob(3), job_id=JOB_B, index=0)
    assert store.get(old) is None and store.get(young) == blob(2) and store.get(pinned) == blob(3)
    assert store.used_bytes == 2000 and store.get_job_checkpoints(JOB_A) == []


def test_checkpoint_store_reopen_keeps_blobs_and_usage(tmp_path):
    path = str(tmp_path / "db")
    kv = LevelKV(path)
    h = make_store(kv).put(blob(5), job_id=JOB_A, index=3)
    kv.close()
    kv = LevelKV(path)
    try:
        store = make_store(kv)
        assert store.get(h) == blob(5) and store.used_bytes == 1000
        assert store.get_job_checkpoints(JOB_A) == [(3, h)]
    finally:
        kv.close()


def test_checkpoint_store_corrupt_blob_is_not_served(kv):
    store = make_store(kv)
    h = store.put(blob(1))
    kv.write({keys.checkpoint_key(h): blob(7)})
    with pytest.raises(StoreCorruptError, match="stored with other bytes"):
        store.get(h)
