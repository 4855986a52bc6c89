"""Checkpoint blobs on a node, from a worker process: raw bytes over the node's RPC port
(`PUT` and `GET /checkpoint/0x<hash>`, the same checks as `mlcompute_putCheckpoint` and
`mlcompute_getCheckpoint` without hex in JSON), with retries while the node restarts.

Fetched bytes are hashed before they are returned: a worker never trusts a node's blob.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

from gensyn_node.rpc.checkpoints import CHECKPOINT_ROUTE
from gensyn_node.rpc.client import RpcClientException, RpcConnectionError, result_of
from runtime.hashing import blake2_256

log = logging.getLogger(__name__)

ATTEMPTS = 6
FIRST_BACKOFF_S = 0.25


class BlobError(Exception):
    """The node refused the blob, served other bytes, or could not be reached in time."""


def _answer_of(response: httpx.Response) -> Any:
    """The result of the JSON-RPC response a bulk route answers with; RpcClientError for its
    error object (a refusal), RpcConnectionError for anything else."""
    try:
        reply = response.json()
    except ValueError:
        raise RpcConnectionError(f"HTTP {response.status_code}: not JSON") from None
    return result_of(reply)


class NodeBlobs:
    """`chain_job`: the on-chain id of the job whose checkpoints this uploads (the solver
    daemon's), so the node checks each against that job and pins it; None off chain."""

    def __init__(self, url: str, *, timeout: float = 60.0, attempts: int = ATTEMPTS,
                 chain_job: int | None = None) -> None:
        self.url = url
        base = url.replace("ws://", "http://", 1).replace("wss://", "https://", 1).rstrip("/")
        self.route = base + CHECKPOINT_ROUTE
        self.http = httpx.Client(timeout=timeout)
        self.attempts = attempts
        self.chain_job = chain_job

    def close(self) -> None:
        self.http.close()

    def _request(self, method: str, blob_hash: bytes, **kwargs) -> httpx.Response:  # type: ignore[no-untyped-def]
        """The node's answer (any status but a connection failure, retried with backoff)."""
        delay = FIRST_BACKOFF_S
        for attempt in range(1, self.attempts + 1):
            try:
                return self.http.request(method, self.route + "0x" + blob_hash.hex(), **kwargs)
            except httpx.HTTPError as exc:
                if attempt == self.attempts:
                    raise BlobError(f"{method} checkpoint: node {self.url} unreachable after {attempt} tries: "
                                    f"{exc}") from exc
                log.warning("event=node_unreachable method=%s attempt=%d retry_in_s=%.2f", method, attempt, delay)
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def put(self, data: bytes, job_id: bytes | None = None, index: int | None = None, *,
            blob_hash: bytes | None = None) -> bytes:
        """Upload one checkpoint; returns its hash, as the node computed and checked it.
        `blob_hash`: the bytes' hash when the caller has it already (not trusted by the node)."""
        blob_hash = blake2_256(data) if blob_hash is None else blob_hash
        query: dict[str, str | int] = {}
        if job_id is not None:
            query["job"] = "0x" + job_id.hex()
        if index is not None:
            query["index"] = index
        if self.chain_job is not None:
            query["chain_job"] = self.chain_job
        response = self._request("PUT", blob_hash, content=data, params=query,
                                 headers={"content-type": "application/octet-stream"})
        try:
            result = _answer_of(response)
        except RpcClientException as exc:
            raise BlobError(f"checkpoint upload refused by {self.url}: {exc}") from exc
        if result != "0x" + blob_hash.hex():
            raise BlobError(f"node stored the checkpoint under {result}, not 0x{blob_hash.hex()}")
        return blob_hash

    def get(self, blob_hash: bytes) -> bytes | None:
        """The blob's bytes, or None if the node does not hold it; BlobError if it serves bytes
        that do not hash to `blob_hash`."""
        response = self._request("GET", blob_hash)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            try:
                answer = _answer_of(response)
            except RpcClientException as exc:
                raise BlobError(f"checkpoint fetch refused by {self.url}: {exc}") from exc
            raise BlobError(f"checkpoint fetch from {self.url}: HTTP {response.status_code} answered {answer!r:.80}")
        data = response.content
        if blake2_256(data) != blob_hash:
            raise BlobError(f"node served other bytes for checkpoint 0x{blob_hash.hex()}")
        return data
