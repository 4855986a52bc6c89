"""Checkpoint blobs on a node, from a worker process: `mlcompute_putCheckpoint` and
`mlcompute_getCheckpoint` over the node's JSON-RPC, with retries while the node restarts.

Fetched bytes are hashed before they are returned: a worker never trusts a node's blob.
"""

from __future__ import annotations

import logging
import time

from gensyn_node.rpc.client import RpcClient, RpcClientError, RpcConnectionError
from runtime.hashing import blake2_256

log = logging.getLogger(__name__)

ATTEMPTS = 6
FIRST_BACKOFF_S = 0.25


class BlobError(Exception):
    """The node refused the blob, served other bytes, or could not be reached in time."""


class NodeBlobs:
    """`chain_job`: the on-chain id of the job whose checkpoints this uploads (the solver
    daemon's), so the node checks each against that job and pins it; None off chain."""

    def __init__(self, url: str, *, timeout: float = 60.0, attempts: int = ATTEMPTS,
                 chain_job: int | None = None) -> None:
        self.url = url
        self.rpc = RpcClient(url, timeout=timeout)
        self.attempts = attempts
        self.chain_job = chain_job

    def close(self) -> None:
        self.rpc.close()

    def _call(self, method: str, *params):  # type: ignore[no-untyped-def]
        delay = FIRST_BACKOFF_S
        for attempt in range(1, self.attempts + 1):
            try:
                return self.rpc.call(method, *params)
            except RpcClientError as exc:
                raise BlobError(f"{method} refused by {self.url}: {exc}") from exc
            except RpcConnectionError as exc:
                if attempt == self.attempts:
                    raise BlobError(f"{method}: node {self.url} unreachable after {attempt} tries: {exc}") from exc
                log.warning("event=node_unreachable method=%s attempt=%d retry_in_s=%.2f", method, attempt, delay)
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def put(self, data: bytes, job_id: bytes | None = None, index: int | None = None) -> bytes:
        """Upload one checkpoint; returns its hash, as the node computed and checked it."""
        blob_hash = blake2_256(data)
        params = ["0x" + data.hex(), "0x" + blob_hash.hex(), None if job_id is None else "0x" + job_id.hex(), index]
        if self.chain_job is not None:
            params.append(self.chain_job)
        result = self._call("mlcompute_putCheckpoint", *params)
        if result != "0x" + blob_hash.hex():
            raise BlobError(f"node stored the checkpoint under {result}, not 0x{blob_hash.hex()}")
        return blob_hash

    def get(self, blob_hash: bytes) -> bytes | None:
        """The blob's bytes, or None if the node does not hold it; BlobError if it serves bytes
        that do not hash to `blob_hash`."""
        result = self._call("mlcompute_getCheckpoint", "0x" + blob_hash.hex())
        if result is None:
            return None
        if not isinstance(result, str) or not result.startswith("0x"):
            raise BlobError("node answered a checkpoint that is not 0x-hex")
        try:
            data = bytes.fromhex(result[2:])
        except ValueError as exc:
            raise BlobError("node answered a checkpoint that is not 0x-hex") from exc
        if blake2_256(data) != blob_hash:
            raise BlobError(f"node served other bytes for checkpoint 0x{blob_hash.hex()}")
        return data
