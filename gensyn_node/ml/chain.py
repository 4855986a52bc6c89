"""What a worker process (solver, verifier, the job CLI) reads and writes of the chain: a plain
JSON-RPC client to one node, never the node's own objects.

Data path step: the daemons follow the best head by polling `chain_getHeader` (with backoff
while the node is unreachable), read jobs and disputes through the `mlcompute_*` views, read
their own stake from storage, and sign and submit ML-compute calls, waiting until each is in a
block. Checkpoint lists come from `mlcompute_getJobCheckpoints` and are only trusted once they
rebuild the job's committed Merkle root.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gensyn_node.client import NodeClient
from gensyn_node.keyring import Keypair
from gensyn_node.rpc.client import RpcClientException, RpcConnectionError
from runtime.crypto import ss58_encode
from runtime.pallets.ml_compute import storage as ml
from runtime.pallets.ml_compute.types import FINAL_STATUSES, MlConfig

if TYPE_CHECKING:  # torch-free import for `gensyn-node --help`
    from runtime.ml.job import TrainingJob

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 5.0


class ChainError(Exception):
    """The node rejected a call or could not be reached in time; the message says which."""


def _hex(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def build_training_job(job: dict[str, Any]) -> TrainingJob:
    """The engine's TrainingJob of an assigned job as `mlcompute_getJob` shows it."""
    from runtime.ml.job import HyperParams, TrainingJob

    if job.get("seed") is None:
        raise ChainError(f"job {job['id']} has no data seed yet (not assigned)")
    h = job["hyper"]
    hyper = HyperParams(lr_q16=h["lrQ16"], momentum_q16=h["momentumQ16"], weight_decay_q16=h["weightDecayQ16"],
                        batch_size=h["batchSize"])
    return TrainingJob(job["model"], _hex(job["dataset"]), _hex(job["seed"]), hyper, job["steps"],
                       job["checkpointEvery"])


def is_final(job: dict[str, Any]) -> bool:
    return job["status"] in FINAL_STATUSES


@dataclass
class Head:
    number: int
    hash: str


class ChainView:
    """One worker's connection to its node, signing with `key` (None: read only)."""

    def __init__(self, url: str, key: Keypair | None = None, *, timeout: float = 60.0) -> None:
        self.url = url
        self.key = key
        self.client = NodeClient(url, timeout=timeout)
        self.rpc = self.client.rpc
        self.me = None if key is None else ss58_encode(key.public)

    def close(self) -> None:
        self.client.close()

    # --- reads -----------------------------------------------------------------------------------

    def get_head(self) -> Head:
        header = self.rpc.call("chain_getHeader")
        return Head(int(header["number"], 16), self.rpc.call("chain_getBlockHash"))

    def get_job(self, job_id: int) -> dict[str, Any] | None:
        return self.rpc.call("mlcompute_getJob", job_id)

    def list_jobs(self, status: str | None = None) -> list[dict[str, Any]]:
        """Every job (or those in `status`), following the pages."""
        out: list[dict[str, Any]] = []
        start: int | None = 0
        while start is not None:
            page = self.rpc.call("mlcompute_listJobs", status, start, 100)
            out.extend(page["jobs"])
            start = page["next"]
        return out

    def get_dispute(self, job_id: int) -> dict[str, Any] | None:
        return self.rpc.call("mlcompute_getDispute", job_id)

    def get_model(self, job_id: int) -> dict[str, Any] | None:
        return self.rpc.call("mlcompute_getModel", job_id)

    def get_config(self) -> MlConfig:
        raw = self.rpc.call("state_getStorage", "0x" + ml.Config.key().hex())
        return MlConfig() if raw is None else MlConfig.from_scale(ml.Config.value_type.decode(_hex(raw)))

    def get_worker(self, role: str, who: bytes) -> dict[str, Any] | None:
        item = ml.Solvers if role == "Solver" else ml.Verifiers
        raw = self.rpc.call("state_getStorage", "0x" + item.key(who).hex())
        return None if raw is None else item.value_type.decode(_hex(raw))

    def get_job_checkpoints(self, job: dict[str, Any]) -> list[bytes] | None:
        """The committed checkpoint hashes of a job, in order, from the node's store; None
        unless the node holds exactly the committed set (the Merkle root is rebuilt and compared)."""
        from runtime.ml.segments import compute_commitment

        commitment = job.get("commitment")
        if commitment is None:
            return None
        listed = self.rpc.call("mlcompute_getJobCheckpoints", "0x" + build_training_job(job).job_hash.hex())
        by_index = {item["index"]: _hex(item["hash"]) for item in listed if item["index"] is not None}
        n = commitment["nCheckpoints"]
        if any(i not in by_index for i in range(n)):
            return None
        hashes = [by_index[i] for i in range(n)]
        return hashes if compute_commitment(hashes) == _hex(commitment["checkpointRoot"]) else None

    def get_published_checkpoints(self, job: dict[str, Any]) -> list[bytes] | None:
        """The checkpoint list the solver had to publish on chain (after a report), if any."""
        raw = self.rpc.call("state_getStorage", "0x" + ml.PublishedCheckpoints.key(job["id"]).hex())
        return None if raw is None else list(ml.PublishedCheckpoints.value_type.decode(_hex(raw)))

    def free_balance(self, who: bytes) -> int:
        return self.client.balance(who).free

    # --- writes ----------------------------------------------------------------------------------

    def send(self, call: str, args: dict[str, Any], pallet: str = "MlCompute") -> None:
        """Sign `pallet.call(args)`, submit it and wait until it is in a block. Raises
        ChainError if the pool refuses it or it is dropped. Whether it succeeded in its block
        is read back from state by the caller (a failed dispatch is still included)."""
        if self.key is None:
            raise ChainError("no signing key")
        try:
            extrinsic = self.client.sign(self.key, self.client.encode_call(pallet, call, args))
            statuses = self.client.submit_and_watch(extrinsic, until="inBlock")
        except RpcClientException as exc:
            raise ChainError(f"{call}: {exc}") from exc
        except TimeoutError as exc:
            raise ChainError(f"{call}: not in a block in time") from exc
        final = statuses[-1] if statuses else None
        if not (isinstance(final, dict) and "inBlock" in final):
            raise ChainError(f"{call}: ended {final!r}")


def follow_heads(view: ChainView, on_head: Callable[[Head], None], should_stop: Callable[[], bool],
                 poll_s: float = 0.25) -> None:
    """Call `on_head` once for each new best head (polling), until `should_stop()`. While the
    node is unreachable, retry with a doubling backoff (logged once per outage)."""
    last: str | None = None
    backoff = poll_s
    down_since: float | None = None
    while not should_stop():
        try:
            head = view.get_head()
        except RpcConnectionError as exc:
            if down_since is None:
                down_since = time.monotonic()
                log.warning("event=node_unreachable url=%s error=%s", view.url, exc)
            time.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
            continue
        if down_since is not None:
            log.warning("event=node_reachable url=%s down_s=%.1f", view.url, time.monotonic() - down_since)
            down_since, backoff = None, poll_s
        if head.hash != last:
            last = head.hash
            on_head(head)
        else:
            time.sleep(poll_s)
