"""`gensyn-node solver`: the chain-driven solver. Registers its stake, follows the best head,
trains every job the chain assigns to it with the exact engine (the solver core, solver.py:
a progress bar, every checkpoint stored in a training directory and uploaded to the node),
commits, and defends its commitment in a dispute: reveals the segment, posts the state hash at
each midpoint the runtime picks, and (when honest) submits the referee's input.

When a verifier reports a checkpoint unavailable (`--no-upload` keeps checkpoints local, or the
node lost them), it publishes that checkpoint and the checkpoint list on chain before the
report's deadline. `--cheat withhold` uploads and publishes nothing, and loses its lock.

A restart resumes: a job still assigned is trained on from the last journalled checkpoint of
its directory (`<dir>/job-<id>`), a job already committed is only defended.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from gensyn_node.ml.chain import ChainError, ChainView, Head, build_training_job, is_final
from gensyn_node.ml.workers import (
    SegmentTrace,
    StopFlag,
    build_referee_args,
    ensure_registered,
    print_event,
    try_send,
)

log = logging.getLogger(__name__)


class SolverDaemon:
    def __init__(self, view: ChainView, stake: int, base_dir: Path, *, cheat: str | None = None,
                 upload: bool = True, progress: bool = True, device: str = "cpu", cache_dir: str | None = None,
                 poll_s: float = 0.25) -> None:
        self.view = view
        self.stake = stake
        self.base_dir = base_dir
        # `withhold` trains honestly but keeps its checkpoints to itself: it uploads none and
        # publishes none when a verifier reports one unavailable (so it loses by the deadline).
        self.withhold = cheat == "withhold"
        self.cheat = None if self.withhold else cheat
        self.upload = upload and not self.withhold
        self.progress = progress
        self.device = device
        self.cache_dir = cache_dir
        self.poll_s = poll_s
        self.statuses: dict[int, str] = {}
        self.moves_sent: set[tuple[int, str, int]] = set()
        self.published: set[tuple[int, int]] = set()  # (job, checkpoint index) sent on chain
        self.traces: dict[tuple[int, int], SegmentTrace] = {}
        self._splits: dict[bytes, Any] = {}

    def emit(self, name: str, **fields: Any) -> None:
        print_event("solver", name, **fields)

    def run(self, stop: StopFlag) -> None:
        from gensyn_node.ml.chain import follow_heads

        ensure_registered(self.view, "Solver", self.stake, self.emit)
        follow_heads(self.view, self.on_head, stop, self.poll_s)

    # --- per block -------------------------------------------------------------------------------

    def on_head(self, head: Head) -> None:
        for job in self.view.list_jobs():
            if job["solver"] != self.view.me:
                continue
            self.note_status(job)
            if job["status"] == "Assigned":
                if head.number <= job["commitBy"]:
                    self.train_and_commit(job)
            elif job["status"] == "Disputed":
                self.defend(job)
            if job["status"] in ("Verifying", "Disputed") and job["withheld"]:
                self.publish(job)

    def note_status(self, job: dict[str, Any]) -> None:
        before = self.statuses.get(job["id"])
        if before == job["status"] or (before is None and is_final(job)):
            self.statuses[job["id"]] = job["status"]
            return
        self.statuses[job["id"]] = job["status"]
        fields: dict[str, Any] = {"job": job["id"], "status": job["status"]}
        if job["status"] == "Assigned":
            fields.update(steps=job["steps"], checkpoint_every=job["checkpointEvery"], commit_by=job["commitBy"])
        if job["status"] in ("Settled", "Rejected"):
            assert self.view.key is not None
            worker = self.view.get_worker("Solver", self.view.key.public)
            fields["stake"] = None if worker is None else worker["stake"]
        self.emit("job_" + job["status"].lower(), **fields)

    # --- training --------------------------------------------------------------------------------

    def load_splits(self, dataset_id: bytes):  # type: ignore[no-untyped-def]
        from gensyn_node.ml.datasets import load_dataset
        from runtime.ml.data import get_dataset_spec

        if dataset_id not in self._splits:
            self._splits[dataset_id] = load_dataset(get_dataset_spec(dataset_id).name, self.cache_dir)
        return self._splits[dataset_id]

    def workdir(self, job_id: int):  # type: ignore[no-untyped-def]
        from gensyn_node.ml.workdir import TrainingDir

        return TrainingDir(self.base_dir / f"job-{job_id}")

    def runner(self, tjob):  # type: ignore[no-untyped-def]
        from gensyn_node.ml.cheats import parse_cheat
        from runtime.ml.segments import run_segment

        return parse_cheat(self.cheat, tjob) if self.cheat else run_segment

    def train_and_commit(self, job: dict[str, Any]) -> None:
        from gensyn_node.ml.remote import NodeBlobs
        from gensyn_node.ml.solver import run_solver
        from runtime.ml.engine import compute_accuracy
        from runtime.ml.segments import compute_commitment
        from runtime.ml.state import decode_state

        job_id = job["id"]
        tjob = build_training_job(job)
        splits = self.load_splits(tjob.dataset_id)
        self.emit("training", job=job_id, steps=tjob.steps, checkpoints=tjob.n_checkpoints,
                  cheat=self.cheat or "none")
        # The node checks each checkpoint against the job on chain.
        blobs = NodeBlobs(self.view.url, chain_job=job_id) if self.upload else None
        try:
            result = run_solver(tjob, splits.train, self.workdir(job_id), blobs=blobs,
                                cheat=self.runner(tjob) if self.cheat else None, progress=self.progress,
                                device=self.device,
                                on_event=lambda name, fields: self.emit(name, job=job_id, **fields))
        finally:
            if blobs is not None:
                blobs.close()
        final = decode_state(result.final).to(self.device)
        test = splits.test
        accuracy = compute_accuracy(final, test.images.to(self.device), test.labels.to(self.device))
        last = result.metrics[-1] if result.metrics else (0, 0.0, 0.0)
        metrics = {"loss_q16": max(0, round(last[1] * 65536)), "train_accuracy_ppm": round(last[2] * 1_000_000),
                   "test_accuracy_ppm": round(accuracy * 1_000_000)}
        root = compute_commitment(result.hashes)
        self.view.send("commit", {"job": job_id, "checkpoint_root": root, "final_state_hash": result.hashes[-1],
                                  "n_checkpoints": len(result.hashes), "metrics": metrics})
        after = self.view.get_job(job_id)
        if after is None or after["status"] == "Assigned":
            raise ChainError(f"commit of job {job_id} failed in its block")
        self.emit("committed", job=job_id, root="0x" + root.hex()[:16], final="0x" + result.hashes[-1].hex()[:16],
                  test_accuracy=f"{accuracy:.4f}", train_s=f"{result.seconds:.1f}")

    # --- data availability -----------------------------------------------------------------------

    def publish(self, job: dict[str, Any]) -> None:
        """A verifier reported a checkpoint unavailable: put its bytes and the checkpoint list on
        chain (`publish_checkpoint`) before the deadline."""
        job_id = job["id"]
        for report in job["withheld"]:
            index = report["segment"]
            if (job_id, index) in self.published:
                continue
            self.published.add((job_id, index))
            if self.withhold:
                self.emit("publication_withheld", job=job_id, index=index)
                continue
            workdir = self.workdir(job_id)
            hashes = workdir.read_hashes()
            data = workdir.read_checkpoint(index, hashes[index])
            if data is None:
                self.emit("publication_failed", job=job_id, index=index, reason="checkpoint_missing")
                continue
            args = {"job": job_id, "index": index, "state": data, "hashes": hashes}
            if try_send(self.view, self.emit, "publish_checkpoint", args):
                self.emit("checkpoint_published", job=job_id, index=index, bytes=len(data))

    # --- disputes --------------------------------------------------------------------------------

    def trace(self, job: dict[str, Any], segment: int) -> SegmentTrace:
        from runtime.ml.state import decode_state_checked

        key = (job["id"], segment)
        if key not in self.traces:
            tjob = build_training_job(job)
            workdir = self.workdir(job["id"])
            hashes = workdir.read_hashes()
            data = workdir.read_checkpoint(segment, hashes[segment])
            if data is None:
                raise ChainError(f"checkpoint {segment} of job {job['id']} is missing from {workdir.path}")
            start = decode_state_checked(data, hashes[segment]).to(self.device)
            self.traces[key] = SegmentTrace.run(tjob, self.load_splits(tjob.dataset_id).train, start,
                                                self.runner(tjob), tjob.get_checkpoint_step(segment + 1))
        return self.traces[key]

    def defend(self, job: dict[str, Any]) -> None:
        from runtime.ml.segments import get_checkpoint_proof

        job_id = job["id"]
        dispute = self.view.get_dispute(job_id)
        if dispute is None:
            return
        phase = dispute["phase"]
        move = (job_id, phase, dispute["rounds"])
        if move in self.moves_sent or dispute["whoseMove"] not in (self.view.me, None):
            return
        segment = dispute["segment"]
        if phase == "AwaitReveal":
            hashes = self.workdir(job_id).read_hashes()
            self.emit("challenged", job=job_id, segment=segment, challenger=dispute["challenger"])
            args = {"job": job_id, "segment": segment, "start_hash": hashes[segment],
                    "start_proof": get_checkpoint_proof(hashes, segment), "end_hash": hashes[segment + 1],
                    "end_proof": get_checkpoint_proof(hashes, segment + 1)}
            if try_send(self.view, self.emit, "reveal_segment", args):
                self.emit("revealed", job=job_id, segment=segment, lo=dispute["loStep"], hi=dispute["hiStep"])
        elif phase == "AwaitMidpoint":
            mid = dispute["midStep"]
            mid_hash = self.trace(job, segment).hashes[mid]
            if try_send(self.view, self.emit, "bisect", {"job": job_id, "mid_hash": mid_hash}):
                self.emit("bisect", job=job_id, round=dispute["rounds"], step=mid, hash="0x" + mid_hash.hex()[:16],
                          range=f"{dispute['loStep']}..{dispute['hiStep']}")
        elif phase == "AwaitReferee":
            if self.cheat:
                self.emit("referee_withheld", job=job_id, step=dispute["loStep"])  # a liar does not prove itself wrong
            else:
                self.submit_referee(job, dispute)
        self.moves_sent.add(move)

    def submit_referee(self, job: dict[str, Any], dispute: dict[str, Any]) -> None:
        trace = self.trace(job, dispute["segment"])
        step = dispute["loStep"]
        if "0x" + trace.hashes[step].hex() != dispute["loHash"]:
            return
        tjob = build_training_job(job)
        args = build_referee_args(job["id"], tjob, self.load_splits(tjob.dataset_id).train, trace.state_at(step))
        if try_send(self.view, self.emit, "referee", args):
            self.emit("referee_submitted", job=job["id"], step=step)
