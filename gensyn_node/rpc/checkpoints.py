"""`mlcompute_getCheckpoint` and `mlcompute_putCheckpoint`: checkpoint blobs over JSON-RPC.

Data path step: a solver uploads each checkpoint it trains through the put (unsafe: loopback
or `--rpc-methods unsafe` only, like every method that makes the node store something for a
caller); verifiers and the job CLI fetch them by hash through the get. Bytes travel as 0x-hex.
The put decodes the bytes as an exact-engine training state of a registered model before
storing them (the check that they belong to a known job comes with the ML pallet); decoding
runs in a worker thread, since the first one imports torch and a state is megabytes.
"""

from __future__ import annotations

from typing import Any

import trio

from gensyn_node.db.checkpoints import (
    CheckpointHashMismatch,
    CheckpointStore,
    CheckpointStoreError,
    CheckpointStoreFull,
)
from gensyn_node.db.kv import StoreCorruptError
from gensyn_node.rpc.api import RpcApi
from gensyn_node.rpc.errors import INVALID_PARAMS, INVALID_PARAMS_MSG, RpcError

# Application errors of this module (Substrate leaves codes >= 1000 to each RPC).
INVALID_CHECKPOINT = 8010
CHECKPOINT_HASH_MISMATCH = 8011
CHECKPOINT_STORE_FULL = 8012
CHECKPOINT_UNREADABLE = 8013


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


class CheckpointRpc:
    def __init__(self, store: CheckpointStore) -> None:
        self.store = store

    async def mlcompute_getCheckpoint(self, blob_hash: str) -> str | None:
        """The checkpoint's bytes as 0x-hex, or null if this node does not hold it."""
        key = _hex(blob_hash, "checkpoint hash", 32)
        try:
            data = self.store.get(key)
        except StoreCorruptError as exc:
            raise RpcError(CHECKPOINT_UNREADABLE, "Checkpoint unreadable", str(exc)) from None
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
                                      index: int | None = None) -> str:
        """Store a checkpoint; returns its hash. `blob_hash`, when given, must be the bytes'
        blake2-256; `job` and `index` record whose checkpoint it is (for eviction)."""
        from runtime.ml.errors import StateDecodeError

        raw = _hex(data, "checkpoint")
        expected = None if blob_hash is None else _hex(blob_hash, "checkpoint hash", 32)
        job_id = None if job is None else _hex(job, "job id", 32)
        if index is not None and (isinstance(index, bool) or not isinstance(index, int) or index < 0):
            raise RpcError(INVALID_PARAMS, INVALID_PARAMS_MSG, "index: expected a non-negative integer")
        if len(raw) > self.store.max_blob_bytes:
            raise RpcError(INVALID_CHECKPOINT, "Invalid checkpoint",
                           f"{len(raw)} bytes exceed the {self.store.max_blob_bytes}-byte bound")
        try:
            await trio.to_thread.run_sync(validate_state_bytes, raw)
        except StateDecodeError as exc:
            raise RpcError(INVALID_CHECKPOINT, "Invalid checkpoint", f"not a training state: {exc}") from None
        try:
            stored = self.store.put(raw, expected_hash=expected, job_id=job_id, index=index)
        except CheckpointHashMismatch as exc:
            raise RpcError(CHECKPOINT_HASH_MISMATCH, "Checkpoint hash mismatch", str(exc)) from None
        except CheckpointStoreFull as exc:
            raise RpcError(CHECKPOINT_STORE_FULL, "Checkpoint store full", str(exc)) from None
        except CheckpointStoreError as exc:
            raise RpcError(INVALID_CHECKPOINT, "Invalid checkpoint", str(exc)) from None
        return "0x" + stored.hex()


def register_checkpoint_api(api: RpcApi, store: CheckpointStore) -> None:
    rpc = CheckpointRpc(store)
    api.method("mlcompute_getCheckpoint", rpc.mlcompute_getCheckpoint)
    api.method("mlcompute_getJobCheckpoints", rpc.mlcompute_getJobCheckpoints)
    api.method("mlcompute_putCheckpoint", rpc.mlcompute_putCheckpoint, unsafe=True)
