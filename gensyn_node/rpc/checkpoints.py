"""`mlcompute_getCheckpoint` and `mlcompute_putCheckpoint`: checkpoint blobs over JSON-RPC.

Data path step: a solver uploads each checkpoint it trains through the put (unsafe: loopback
or `--rpc-methods unsafe` only, like every method that makes the node store something for a
caller); verifiers and the job CLI fetch them by hash through the get. Bytes travel as 0x-hex in
JSON-RPC (what Substrate's clients expect) or raw over the same port's `/checkpoint/0x<hash>`
(GET, and PUT with `?job=&index=&chain_job=`: what the workers use, since a megabyte state as
hex in JSON costs more to encode and parse than to train on). Both run the same checks.
The put decodes the bytes as an exact-engine training state of a registered model before
storing them; decoding runs in a worker thread, since the first one imports torch and a state
is megabytes.

A put that names the job's on-chain id (`chain_job`, what the solver daemon sends) is checked
against the job at the best block: the job exists and is assigned, `job` (if given) is the
job's hash, the state is of the job's registered model (the architecture's spec hash) and its
step is the one the pallet gives checkpoint `index` (`min(index * checkpoint_every, steps)`).
Such a checkpoint is pinned in the store until the job's eviction. A put without `chain_job`
(`gensyn-node train --rpc` off chain) is stored unverified: an orphan, dropped after the store's
orphan retention (a day by default) or sooner to make room for a checked one.

A get for a blob this node lacks asks its peers (`fetch`, the node's blob fetcher) before it
answers null; what a peer sends is only stored and served once it hashes to the request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from gensyn_node.db.checkpoints import (
    CheckpointHashMismatch,
    CheckpointStore,
    CheckpointStoreError,
    CheckpointStoreFull,
)
from gensyn_node.db.kv import StoreCorruptError
from gensyn_node.rpc.api import BulkRoute, RpcApi
from gensyn_node.rpc.errors import INVALID_PARAMS, INVALID_PARAMS_MSG, RpcError
from runtime.hashing import blake2_256
from runtime.pallets.ml_compute import storage as ml
from runtime.storage import OverlayState

# Application errors of this module (Substrate leaves codes >= 1000 to each RPC).
INVALID_CHECKPOINT = 8010
CHECKPOINT_HASH_MISMATCH = 8011
CHECKPOINT_STORE_FULL = 8012
CHECKPOINT_UNREADABLE = 8013
UNKNOWN_JOB = 8014
JOB_NOT_ASSIGNED = 8015
JOB_HASH_MISMATCH = 8016
WRONG_MODEL = 8017
WRONG_STEP = 8018

# The raw-bytes route beside JSON-RPC: GET and PUT /checkpoint/0x<blake2-256 of the bytes>.
CHECKPOINT_ROUTE = "/checkpoint/"

BlobFetch = Callable[[bytes], Awaitable["bytes | None"]]


def _hex(value: Any, what: str, length: int | None = None) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise RpcError(INVALID_PARAMS, INVALID_PARAMS_MSG, f"{what}: expected 0x-prefixed hex")
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError:
        raise RpcError(INVALID_PARAMS, INVALID_PARAMS_MSG, f"{what}: invalid hex") from None
    if length is not None and len(raw) != length:
        raise RpcError(INVALID_PARAMS, INVALID_PARAMS_MSG, f"{what}: expected {length} bytes")
    return raw


def validate_state_bytes(data: bytes) -> None:
    """Verify that `data` is the canonical bytes of a training state of a registered model;
    raises StateDecodeError with the reason."""
    from runtime.ml.state import decode_state

    decode_state(data)


def get_assigned_job(state: OverlayState, chain_job: int) -> tuple[dict[str, Any], bytes]:
    """The job record and its model's spec hash; RpcError unless the job exists and is assigned."""
    job = ml.Jobs.get(state, chain_job)
    # Verify that the job exists at the best block.
    if job is None:
        raise RpcError(UNKNOWN_JOB, "Unknown job", f"no job {chain_job} at the best block")
    # Verify that a solver trains it now: checkpoints of a job not (or no longer) assigned are
    # nobody's work to upload.
    status = job["status"][0]
    if status != "Assigned":
        raise RpcError(JOB_NOT_ASSIGNED, "Job not assigned", f"job {chain_job} is {status}, not Assigned")
    arch = ml.Architectures.get(state, job["model"])
    if arch is None:  # the pallet checks the model at submission; a registry without it is a broken chain
        raise RpcError(UNKNOWN_JOB, "Unknown job", f"job {chain_job} names model {job['model']}, not registered")
    return job, arch["spec_hash"]


def validate_job_checkpoint(job: dict[str, Any], chain_job: int, spec_hash: bytes, job_hash: bytes | None,
                            index: int, data: bytes) -> bytes:
    """Verify that `data` is checkpoint `index` of the assigned `job`; returns the job's hash
    (the store's key of the job). Raises RpcError with the failed check; runs in a thread."""
    from runtime.ml.errors import StateDecodeError
    from runtime.ml.job import HyperParams, TrainingJob
    from runtime.pallets.ml_compute.jobs import compute_checkpoint_step, compute_n_checkpoints

    h = job["hyper"]
    hyper = HyperParams(h["lr_q16"], h["momentum_q16"], h["weight_decay_q16"], h["batch_size"])
    expected_job_hash = TrainingJob(job["model"], job["dataset"], job["seed"], hyper, job["steps"],
                                    job["checkpoint_every"]).job_hash
    # Verify that the job hash the caller names, if any, is this job's.
    if job_hash is not None and job_hash != expected_job_hash:
        raise RpcError(JOB_HASH_MISMATCH, "Job hash mismatch",
                       f"job {chain_job} hashes to 0x{expected_job_hash.hex()}, not 0x{job_hash.hex()}")
    # Verify that the job has a checkpoint `index`.
    n = compute_n_checkpoints(job["steps"], job["checkpoint_every"])
    if index >= n:
        raise RpcError(WRONG_STEP, "Wrong checkpoint step", f"job {chain_job} has checkpoints 0..{n - 1}, not {index}")
    try:
        state = decode_training_state(data)
    except StateDecodeError as exc:
        raise RpcError(INVALID_CHECKPOINT, "Invalid checkpoint", f"not a training state: {exc}") from None
    # Verify that the state is of the job's registered model.
    if state.model.spec_hash != spec_hash:
        raise RpcError(WRONG_MODEL, "Wrong model",
                       f"a state of model {state.model.name}, job {chain_job} trains model {job['model']}")
    # Verify that the state's step is the step of checkpoint `index`.
    step = compute_checkpoint_step(job, index)
    if state.step != step:
        raise RpcError(WRONG_STEP, "Wrong checkpoint step",
                       f"checkpoint {index} of job {chain_job} is at step {step}, the state is at step {state.step}")
    return expected_job_hash


def decode_training_state(data: bytes):  # type: ignore[no-untyped-def]
    from runtime.ml.state import decode_state

    return decode_state(data)


class CheckpointRpc:
    def __init__(self, store: CheckpointStore, best_state: Callable[[], OverlayState] | None = None,
                 fetch: BlobFetch | None = None) -> None:
        self.store = store
        self.best_state = best_state
        self.fetch = fetch

    async def get_bytes(self, blob_hash: str) -> bytes | None:
        """The checkpoint's bytes, or None if neither this node nor its peers hold it."""
        key = _hex(blob_hash, "checkpoint hash", 32)
        try:
            data = self.store.get(key)
        except StoreCorruptError as exc:
            raise RpcError(CHECKPOINT_UNREADABLE, "Checkpoint unreadable", str(exc)) from None
        if data is None and self.fetch is not None:
            data = await self.fetch(key)
        return data

    async def mlcompute_getCheckpoint(self, blob_hash: str) -> str | None:
        """The checkpoint's bytes as 0x-hex, or null if neither this node nor its peers hold it."""
        data = await self.get_bytes(blob_hash)
        return None if data is None else "0x" + data.hex()

    async def mlcompute_getJobCheckpoints(self, job_hash: str) -> list[dict[str, Any]]:
        """The checkpoints this node holds for a job (by the job's hash, as uploaded):
        [{index, hash}] in index order, so a verifier can rebuild the commitment's leaves."""
        key = _hex(job_hash, "job hash", 32)
        try:
            found = self.store.get_job_checkpoints(key)
        except StoreCorruptError as exc:
            raise RpcError(CHECKPOINT_UNREADABLE, "Checkpoint unreadable", str(exc)) from None
        return [{"index": index, "hash": "0x" + blob.hex()} for index, blob in found]

    async def mlcompute_putCheckpoint(self, data: str, blob_hash: str | None = None, job: str | None = None,
                                      index: int | None = None, chain_job: int | None = None) -> str:
        """Store a checkpoint; returns its hash. `blob_hash`, when given, must be the bytes'
        blake2-256; `job` (the job's hash) and `index` record whose checkpoint it is (for
        eviction); `chain_job`, the job's on-chain id, has the node check the checkpoint against
        that job (see the module docstring) and pin it."""
        return await self.put_bytes(_hex(data, "checkpoint"), blob_hash, job, index, chain_job)

    async def put_bulk(self, blob_hash: str, query: dict[str, str], body: bytes) -> str:
        """`PUT /checkpoint/0x<hash>?job=0x..&index=N&chain_job=M` with the raw bytes as the body:
        the same put, without hex in JSON (half the bytes, none of the encoding)."""
        unknown = set(query) - {"job", "index", "chain_job"}
        if unknown:
            raise RpcError(INVALID_PARAMS, INVALID_PARAMS_MSG, f"unknown query parameters: {', '.join(sorted(unknown))}")
        numbers: dict[str, int | None] = {}
        for name in ("index", "chain_job"):
            value = query.get(name)
            if value is not None and not (value.isascii() and value.isdigit()):
                raise RpcError(INVALID_PARAMS, INVALID_PARAMS_MSG, f"{name}: expected a non-negative integer")
            numbers[name] = None if value is None else int(value)
        return await self.put_bytes(body, blob_hash, query.get("job"), numbers["index"], numbers["chain_job"])

    async def put_bytes(self, raw: bytes, blob_hash: str | None, job: str | None, index: int | None,
                        chain_job: int | None) -> str:
        from runtime.ml.errors import StateDecodeError

        expected = None if blob_hash is None else _hex(blob_hash, "checkpoint hash", 32)
        job_id = None if job is None else _hex(job, "job id", 32)
        if index is not None and (isinstance(index, bool) or not isinstance(index, int) or index < 0):
            raise RpcError(INVALID_PARAMS, INVALID_PARAMS_MSG, "index: expected a non-negative integer")
        if chain_job is not None and (isinstance(chain_job, bool) or not 0 <= chain_job < 1 << 64):
            raise RpcError(INVALID_PARAMS, INVALID_PARAMS_MSG, "chain_job: expected a u64 job id")
        if len(raw) > self.store.max_blob_bytes:
            raise RpcError(INVALID_CHECKPOINT, "Invalid checkpoint",
                           f"{len(raw)} bytes exceed the {self.store.max_blob_bytes}-byte bound")
        # Verify that the bytes are what the sender meant before decoding megabytes.
        actual = None if expected is None else blake2_256(raw)
        if actual is not None and actual != expected:
            raise RpcError(CHECKPOINT_HASH_MISMATCH, "Checkpoint hash mismatch",
                           f"checkpoint bytes hash to 0x{actual.hex()}, not 0x{expected.hex()}")
        if chain_job is not None:
            if index is None:
                raise RpcError(INVALID_PARAMS, INVALID_PARAMS_MSG, "index: required with chain_job")
            if self.best_state is None:
                raise RpcError(INVALID_PARAMS, INVALID_PARAMS_MSG, "chain_job: this node serves no chain state")
            record, spec_hash = get_assigned_job(self.best_state(), chain_job)
            job_id = await trio.to_thread.run_sync(validate_job_checkpoint, record, chain_job, spec_hash, job_id,
                                                   index, raw)
        else:
            try:
                await trio.to_thread.run_sync(validate_state_bytes, raw)
            except StateDecodeError as exc:
                raise RpcError(INVALID_CHECKPOINT, "Invalid checkpoint", f"not a training state: {exc}") from None
        try:
            stored = self.store.put(raw, expected_hash=expected, job_id=job_id, index=index,
                                    pinned=chain_job is not None, hashed=actual)
        except CheckpointHashMismatch as exc:
            raise RpcError(CHECKPOINT_HASH_MISMATCH, "Checkpoint hash mismatch", str(exc)) from None
        except CheckpointStoreFull as exc:
            raise RpcError(CHECKPOINT_STORE_FULL, "Checkpoint store full", str(exc)) from None
        except CheckpointStoreError as exc:
            raise RpcError(INVALID_CHECKPOINT, "Invalid checkpoint", str(exc)) from None
        return "0x" + stored.hex()


def register_checkpoint_api(api: RpcApi, store: CheckpointStore, best_state: Callable[[], OverlayState] | None = None,
                            fetch: BlobFetch | None = None) -> None:
    rpc = CheckpointRpc(store, best_state, fetch)
    api.bulk_route(BulkRoute(CHECKPOINT_ROUTE, "checkpoint_bytes", rpc.get_bytes, rpc.put_bulk, put_unsafe=True))
    api.method("mlcompute_getCheckpoint", rpc.mlcompute_getCheckpoint)
    api.method("mlcompute_getJobCheckpoints", rpc.mlcompute_getJobCheckpoints)
    api.method("mlcompute_putCheckpoint", rpc.mlcompute_putCheckpoint, unsafe=True)
