"""The checkpoint blob store: training states in the node's LevelDB, keyed by their blake2-256.

Data path step: a solver uploads every checkpoint (`mlcompute_putCheckpoint`), verifiers and the
job CLI read them back (`mlcompute_getCheckpoint`), and peers over the p2p blob protocol. A blob is
stored once whatever the number of jobs that name it; each job's reference is kept in two
index tables (job -> blobs, blob -> jobs), so eviction can drop a settled job's checkpoints
while another job still holding the same bytes keeps them.

Bounds: one blob is at most `max_blob_bytes`; all blobs together at most `capacity_bytes`. A put
that would pass the capacity first evicts what the policy allows, and is refused with
`CheckpointStoreFull` if that is not enough (nothing stored is lost to make room otherwise).

Eviction policy: a job settled more than `retention_ms` ago keeps only its final model; a blob
no job pins is dropped `orphan_retention_ms` after it was stored. A job's reference either pins
its blob (the default: the caller checked it against the job on chain, as
`mlcompute_putCheckpoint` does when named the job's id) or is unverified (`pinned=False`: an
upload naming only a job hash, such as `gensyn-node train --rpc` off chain, or a blob fetched
from a peer): a blob with no pinning reference is an orphan, whatever its unverified references.
When a pinned put finds the store full, the oldest orphans make room for it first, so unverified
uploads are bounded by time (the orphan retention) and never crowd out a checked checkpoint.
Which jobs are settled, when, and with which final state comes from an injected
`SettlementSource` (the ML pallet's storage once it exists; `NoSettlements` until then).
Every write is one atomic batch of the one `KVStore`: a crash never leaves a blob without its
record or a reference to a blob that is gone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from gensyn_node.db import keys
from gensyn_node.db.kv import KVStore, StoreCorruptError
from runtime.codec import canonical
from runtime.codec.errors import CodecError
from runtime.hashing import blake2_256

log = logging.getLogger(__name__)

# The largest registered model's state (MLP, 784-256-10) is 3.26 MB; 8 MiB leaves room for a
# larger model while bounding what one call can make the node hold.
MAX_CHECKPOINT_BYTES = 8 * 1024 * 1024
DEFAULT_CAPACITY_BYTES = 4 * 1024**3
DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000
DEFAULT_ORPHAN_RETENTION_MS = 24 * 3600 * 1000
HASH_LEN = keys.HASH_LEN
# The value of an owner record (blob -> job): a pinning reference is empty, as every reference
# written before unverified ones existed; an unverified one is this marker.
UNVERIFIED_OWNER = b"u"


class CheckpointStoreError(Exception):
    """A checkpoint the store refuses; the message says why. Nothing was written."""


class InvalidCheckpoint(CheckpointStoreError):
    """Not bytes, empty, over the size bound, or with a malformed job id or index."""


class CheckpointHashMismatch(CheckpointStoreError):
    """The bytes do not hash to the hash they were sent with."""


class CheckpointStoreFull(CheckpointStoreError):
    """Storing the blob would pass the capacity even after eviction."""


@dataclass(frozen=True, slots=True)
class Settlement:
    """A job that is over: when it settled (or was refunded) and its final state, kept forever."""

    job_id: bytes
    settled_at_ms: int
    final_hash: bytes | None


class SettlementSource(Protocol):
    def get_settlement(self, job_id: bytes) -> Settlement | None:
        """The job's settlement, or None while it is open (or unknown)."""
        ...


class NoSettlements:
    """No job is ever settled: what a node knows before the ML pallet exists."""

    def get_settlement(self, job_id: bytes) -> Settlement | None:
        return None


@dataclass(frozen=True, slots=True)
class BlobInfo:
    size: int
    stored_at_ms: int


@dataclass(frozen=True, slots=True)
class EvictionReport:
    blobs: int
    bytes: int
    jobs: int


def _decode_info(raw: bytes) -> BlobInfo:
    try:
        size, stored_at = canonical.decode(raw)
    except (CodecError, TypeError, ValueError) as exc:
        raise StoreCorruptError(f"corrupt checkpoint record: {exc}") from exc
    return BlobInfo(size, stored_at)


def _validate_hash(value: object, what: str) -> bytes:
    if type(value) is not bytes or len(value) != HASH_LEN:
        raise InvalidCheckpoint(f"{what} must be {HASH_LEN} bytes")
    return value


class CheckpointStore:
    """Content-addressed checkpoint blobs with a size cap and settled-job eviction."""

    def __init__(
        self,
        kv: KVStore,
        *,
        capacity_bytes: int = DEFAULT_CAPACITY_BYTES,
        max_blob_bytes: int = MAX_CHECKPOINT_BYTES,
        retention_ms: int = DEFAULT_RETENTION_MS,
        orphan_retention_ms: int = DEFAULT_ORPHAN_RETENTION_MS,
        settlements: SettlementSource | None = None,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        if not 0 < max_blob_bytes <= capacity_bytes:
            raise ValueError("need 0 < max_blob_bytes <= capacity_bytes")
        self.kv = kv
        self.capacity_bytes = capacity_bytes
        self.max_blob_bytes = max_blob_bytes
        self.retention_ms = retention_ms
        self.orphan_retention_ms = orphan_retention_ms
        self.settlements: SettlementSource = settlements or NoSettlements()
        self.clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        # The records are a few bytes each: summing them at open keeps the total exact without
        # a counter that every write would have to keep in step.
        self._used = sum(_decode_info(raw).size for _k, raw in kv.iterate(keys.CHECKPOINT_INFO))

    @property
    def used_bytes(self) -> int:
        return self._used

    # --- reads ---------------------------------------------------------------------------------

    def has(self, blob_hash: bytes) -> bool:
        return self.kv.get(keys.checkpoint_info_key(_validate_hash(blob_hash, "a checkpoint hash"))) is not None

    def get(self, blob_hash: bytes) -> bytes | None:
        """The blob's bytes, or None. Bytes that no longer hash to their key (disk corruption)
        raise StoreCorruptError rather than being served."""
        data = self.kv.get(keys.checkpoint_key(_validate_hash(blob_hash, "a checkpoint hash")))
        if data is not None and blake2_256(data) != blob_hash:
            raise StoreCorruptError(f"checkpoint 0x{blob_hash.hex()} is stored with other bytes")
        return data

    def get_info(self, blob_hash: bytes) -> BlobInfo | None:
        raw = self.kv.get(keys.checkpoint_info_key(_validate_hash(blob_hash, "a checkpoint hash")))
        return None if raw is None else _decode_info(raw)

    def get_job_checkpoints(self, job_id: bytes) -> list[tuple[int | None, bytes]]:
        """(index, hash) of each checkpoint stored for the job, by index (unindexed last)."""
        prefix = keys.CHECKPOINT_JOB + _validate_hash(job_id, "a job id")
        found = []
        for key, raw in self.kv.iterate(prefix):
            [index] = canonical.decode(raw)
            found.append((index, key[len(prefix):]))
        return sorted(found, key=lambda item: (item[0] is None, item[0] or 0))

    def get_owners(self, blob_hash: bytes) -> list[bytes]:
        prefix = keys.CHECKPOINT_OWNER + _validate_hash(blob_hash, "a checkpoint hash")
        return [key[len(prefix):] for key, _ in self.kv.iterate(prefix)]

    def is_pinned(self, blob_hash: bytes) -> bool:
        """True when some job's reference pins the blob (it is not an orphan)."""
        prefix = keys.CHECKPOINT_OWNER + _validate_hash(blob_hash, "a checkpoint hash")
        return any(value != UNVERIFIED_OWNER for _key, value in self.kv.iterate(prefix))

    # --- writes --------------------------------------------------------------------------------

    def put(self, data: bytes, *, expected_hash: bytes | None = None, job_id: bytes | None = None,
            index: int | None = None, pinned: bool = True, hashed: bytes | None = None) -> bytes:
        """Store `data` (for `job_id`, as its checkpoint `index`, when given); returns its hash.
        Storing bytes already held only adds the job's reference. `pinned=False` records the
        reference as unverified (see the module docstring). `hashed`: the hash the caller has
        just computed of these very bytes (megabytes are not hashed twice). Raises
        CheckpointStoreError."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidCheckpoint(f"a checkpoint is bytes, not {type(data).__name__}")
        data = bytes(data)
        # Verify that the blob is within the size bound.
        if not data:
            raise InvalidCheckpoint("a checkpoint cannot be empty")
        if len(data) > self.max_blob_bytes:
            raise InvalidCheckpoint(f"checkpoint of {len(data)} bytes exceeds the {self.max_blob_bytes}-byte bound")
        if job_id is not None:
            _validate_hash(job_id, "a job id")
        if index is not None and (type(index) is not int or not 0 <= index < 2**32):
            raise InvalidCheckpoint(f"a checkpoint index is an integer in [0, 2^32), not {index!r}")
        blob_hash = hashed if hashed is not None else blake2_256(data)
        # Verify that the bytes are the ones the sender meant.
        if expected_hash is not None and blob_hash != _validate_hash(expected_hash, "the expected hash"):
            raise CheckpointHashMismatch(
                f"checkpoint bytes hash to 0x{blob_hash.hex()}, not 0x{expected_hash.hex()}")
        puts: dict[bytes, bytes] = {}
        if job_id is not None:
            owner_key = keys.checkpoint_owner_key(blob_hash, job_id)
            # An unverified put never downgrades a reference that a checked one pinned.
            held = self.kv.get(owner_key)
            puts[keys.checkpoint_job_key(job_id, blob_hash)] = canonical.encode([index])
            puts[owner_key] = b"" if pinned or held == b"" else UNVERIFIED_OWNER
        if self.has(blob_hash):
            if puts:
                self.kv.write(puts)
            return blob_hash
        # Verify that the store has room, after evicting what the policy allows.
        if self._used + len(data) > self.capacity_bytes:
            self.evict()
            if pinned and job_id is not None:
                self._evict_oldest_orphans(self._used + len(data) - self.capacity_bytes)
            if self._used + len(data) > self.capacity_bytes:
                raise CheckpointStoreFull(
                    f"checkpoint store full: {self._used} of {self.capacity_bytes} bytes used, "
                    f"{len(data)} more refused (no settled job's checkpoints left to evict)")
        puts[keys.checkpoint_key(blob_hash)] = data
        puts[keys.checkpoint_info_key(blob_hash)] = canonical.encode([len(data), self.clock_ms()])
        self.kv.write(puts)
        self._used += len(data)
        log.debug("checkpoint stored hash=0x%s bytes=%d used=%d", blob_hash.hex()[:16], len(data), self._used)
        return blob_hash

    # --- eviction ------------------------------------------------------------------------------

    def evict(self) -> EvictionReport:
        """Drop what the policy allows: every checkpoint but the final one of each job settled
        more than `retention_ms` ago, and blobs of no job older than `orphan_retention_ms`."""
        now = self.clock_ms()
        blobs = freed = jobs = 0
        for job_id in self._iter_job_ids():
            settlement = self.settlements.get_settlement(job_id)
            if settlement is None or now - settlement.settled_at_ms < self.retention_ms:
                continue
            n, size = self._evict_job(job_id, settlement.final_hash)
            blobs, freed, jobs = blobs + n, freed + size, jobs + (1 if n else 0)
        n, size = self._evict_orphans(now)
        blobs, freed = blobs + n, freed + size
        if blobs:
            log.info("checkpoints evicted blobs=%d bytes=%d jobs=%d used=%d", blobs, freed, jobs, self._used)
        return EvictionReport(blobs, freed, jobs)

    def _iter_job_ids(self):  # type: ignore[no-untyped-def]
        """Each distinct job id of the job index, once, skipping over each job's entries."""
        start: bytes | None = None
        while True:
            entry = next(self.kv.iterate(keys.CHECKPOINT_JOB, start=start), None)
            if entry is None:
                return
            job_id = entry[0][len(keys.CHECKPOINT_JOB):len(keys.CHECKPOINT_JOB) + HASH_LEN]
            yield job_id
            start = keys.CHECKPOINT_JOB + job_id + b"\xff" * (HASH_LEN + 1)

    def _evict_job(self, job_id: bytes, keep: bytes | None) -> tuple[int, int]:
        blobs = freed = 0
        for _index, blob_hash in self.get_job_checkpoints(job_id):
            if blob_hash == keep:
                continue
            puts: dict[bytes, bytes] = {}
            deletes = [keys.checkpoint_job_key(job_id, blob_hash), keys.checkpoint_owner_key(blob_hash, job_id)]
            others = [owner for owner in self.get_owners(blob_hash) if owner != job_id]
            size = 0
            if not others:
                info = self.get_info(blob_hash)
                size = info.size if info is not None else 0
                deletes += [keys.checkpoint_key(blob_hash), keys.checkpoint_info_key(blob_hash)]
            self.kv.write(puts, deletes)
            if not others:
                self._used -= size
                blobs, freed = blobs + 1, freed + size
        return blobs, freed

    def _drop_orphan(self, blob_hash: bytes, info: BlobInfo) -> None:
        """Delete an orphan with its unverified references, in one batch."""
        deletes = [keys.checkpoint_key(blob_hash), keys.checkpoint_info_key(blob_hash)]
        for job_id in self.get_owners(blob_hash):
            deletes += [keys.checkpoint_job_key(job_id, blob_hash), keys.checkpoint_owner_key(blob_hash, job_id)]
        self.kv.write({}, deletes)
        self._used -= info.size

    def _evict_orphans(self, now: int) -> tuple[int, int]:
        blobs = freed = 0
        for key, raw in self.kv.iterate(keys.CHECKPOINT_INFO):
            info = _decode_info(raw)
            blob_hash = key[len(keys.CHECKPOINT_INFO):]
            if now - info.stored_at_ms < self.orphan_retention_ms or self.is_pinned(blob_hash):
                continue
            self._drop_orphan(blob_hash, info)
            blobs, freed = blobs + 1, freed + info.size
        return blobs, freed

    def _evict_oldest_orphans(self, need: int) -> None:
        """Free at least `need` bytes of orphans, oldest first (as many as there are)."""
        orphans = []
        for key, raw in self.kv.iterate(keys.CHECKPOINT_INFO):
            blob_hash = key[len(keys.CHECKPOINT_INFO):]
            if not self.is_pinned(blob_hash):
                info = _decode_info(raw)
                orphans.append((info.stored_at_ms, blob_hash, info))
        freed = 0
        for _at, blob_hash, info in sorted(orphans):
            if freed >= need:
                break
            self._drop_orphan(blob_hash, info)
            freed += info.size
        if freed:
            log.info("checkpoint orphans evicted for room bytes=%d used=%d", freed, self._used)
