"""`gensyn-node verifier`: the chain-driven verifier. Registers its stake, follows the best head,
and for every segment the chain drew it for: fetches the committed checkpoint list and the
segment's start checkpoint from the node (both checked: the list against the committed Merkle
root, the bytes against their hash), re-runs the segment with the exact engine step by step,
and attests (a match) or challenges with a bond (a mismatch). In the dispute it answers each
midpoint from its own re-run and, at the last step, submits the referee's input: the agreed
pre-state and the step's Merkle-proven batch.

When the list or the start checkpoint cannot be had for a few blocks (the solver's node withholds
them and no peer holds them), it reports the segment on chain (`report_unavailable`); the
solver must then publish the checkpoint and the list in a block, where every node picks them up,
or lose its lock (runtime/pallets/ml_compute/availability.py).

`--cheat lazy` attests every drawn segment without fetching or re-running anything (the
verifier's dilemma, for tests and the demo).
"""

from __future__ import annotations

import logging
from typing import Any

from gensyn_node.ml.chain import ChainView, Head, build_training_job, is_final
from gensyn_node.ml.workers import (
    SegmentTrace,
    StopFlag,
    build_referee_args,
    ensure_registered,
    print_event,
    try_send,
)

log = logging.getLogger(__name__)
REPORT_AFTER_BLOCKS = 3  # heads of retrying (the node fetches from peers meanwhile) before a report


class VerifierDaemon:
    def __init__(self, view: ChainView, stake: int, *, lazy: bool = False, bond: int | None = None,
                 device: str = "cpu", cache_dir: str | None = None,
                 poll_s: float = 0.25) -> None:
        self.view = view
        self.stake = stake
        self.lazy = lazy
        self.bond = bond
        self.device = device
        self.cache_dir = cache_dir
        self.poll_s = poll_s
        self.statuses: dict[int, str] = {}
        self.handled: set[tuple[int, int]] = set()  # (job, segment) attested, challenged or given up
        self.unavailable: set[int] = set()
        self.missing_since: dict[tuple[int, int], int] = {}  # (job, segment) -> the head we first lacked it at
        self.reported: set[tuple[int, int]] = set()
        self.traces: dict[tuple[int, int], SegmentTrace] = {}
        self.moves_sent: set[tuple[int, str, int]] = set()
        self._splits: dict[bytes, Any] = {}

    def emit(self, name: str, **fields: Any) -> None:
        print_event("verifier", name, **fields)

    def run(self, stop: StopFlag) -> None:
        from gensyn_node.ml.chain import follow_heads

        ensure_registered(self.view, "Verifier", self.stake, self.emit)
        if self.bond is None:
            config = self.view.get_config()
            self.bond = config.min_challenge_bond
        follow_heads(self.view, self.on_head, stop, self.poll_s)

    def on_head(self, head: Head) -> None:
        for job_id in [j for j, s in self.statuses.items() if s not in ("Settled", "Rejected", "Refunded")]:
            job = self.view.get_job(job_id)
            if job is not None and is_final(job):
                self.note_status(job)
        for status in ("Verifying", "Disputed"):
            for job in self.view.list_jobs(status):
                if not self.is_involved(job):
                    continue
                self.note_status(job)
                self.check_duties(job, head)
                if job["status"] == "Disputed":
                    self.play(job)

    def is_involved(self, job: dict[str, Any]) -> bool:
        return any(d["verifier"] == self.view.me for d in job["duties"]) or job["id"] in self.statuses

    def note_status(self, job: dict[str, Any]) -> None:
        if self.statuses.get(job["id"]) == job["status"]:
            return
        self.statuses[job["id"]] = job["status"]
        fields: dict[str, Any] = {"job": job["id"], "status": job["status"]}
        if job["status"] == "Verifying":
            fields["segments"] = ",".join(str(s) for d in job["duties"] if d["verifier"] == self.view.me
                                          for s in d["segments"]) or "none"
        self.emit("job_" + job["status"].lower(), **fields)

    def load_splits(self, dataset_id: bytes):  # type: ignore[no-untyped-def]
        from gensyn_node.ml.datasets import load_dataset
        from runtime.ml.data import get_dataset_spec

        if dataset_id not in self._splits:
            self._splits[dataset_id] = load_dataset(get_dataset_spec(dataset_id).name, self.cache_dir)
        return self._splits[dataset_id]

    # --- attest or challenge ---------------------------------------------------------------------

    def check_duties(self, job: dict[str, Any], head: Head) -> None:
        job_id = job["id"]
        mine = sorted(s for d in job["duties"] if d["verifier"] == self.view.me for s in d["segments"])
        attested = {a["segment"] for a in job["attestations"] if a["verifier"] == self.view.me}
        for segment in mine:
            if segment in attested or (job_id, segment) in self.handled:
                continue
            if head.number > job["attestEnd"]:
                self.emit("window_missed", job=job_id, segment=segment)
                self.handled.add((job_id, segment))
                continue
            if self.lazy:
                self.attest(job, segment, None)
                continue
            hashes = self.checkpoint_hashes(job)
            if hashes is None:
                if job_id not in self.unavailable:
                    self.emit("checkpoints_unavailable", job=job_id, retry_until=job["attestEnd"])
                    self.unavailable.add(job_id)
                self.report_if_still_missing(job, segment, head)
                return
            trace = self.rerun(job, segment, hashes)
            if trace is None:
                self.report_if_still_missing(job, segment, head)
                return
            expected = hashes[segment + 1]
            if trace.end_hash == expected:
                self.attest(job, segment, hashes)
            elif job["status"] == "Verifying" and head.number < job["challengeEnd"]:
                self.challenge(job, segment, trace.end_hash, expected)
            # Disputed: another challenge is open; this one waits for the next block.

    def checkpoint_hashes(self, job: dict[str, Any]) -> list[bytes] | None:
        """The job's committed checkpoint hashes: from the node's store, else as published on chain."""
        return self.view.get_job_checkpoints(job) or self.view.get_published_checkpoints(job)

    def report_if_still_missing(self, job: dict[str, Any], segment: int, head: Head) -> None:
        """The list or the segment's start checkpoint is still not to be had (the node asks its
        peers for a blob it lacks): after REPORT_AFTER_BLOCKS heads of retrying, or when the
        attest window is about to close, report it on chain, once; the solver must publish it."""
        key = (job["id"], segment)
        first = self.missing_since.setdefault(key, head.number)
        if key in self.reported or any(w["segment"] == segment for w in job["withheld"]):
            return
        if head.number - first < REPORT_AFTER_BLOCKS and head.number < job["attestEnd"] - 1:
            return
        self.reported.add(key)
        if try_send(self.view, self.emit, "report_unavailable", {"job": job["id"], "segment": segment}):
            self.emit("reported_unavailable", job=job["id"], segment=segment, after_blocks=head.number - first)

    def rerun(self, job: dict[str, Any], segment: int, hashes: list[bytes]) -> SegmentTrace | None:
        from gensyn_node.ml.remote import BlobError, NodeBlobs
        from runtime.ml.errors import MlError
        from runtime.ml.segments import run_segment
        from runtime.ml.state import decode_state_checked

        key = (job["id"], segment)
        if key in self.traces:
            return self.traces[key]
        tjob = build_training_job(job)
        blobs = NodeBlobs(self.view.url)
        try:
            data = blobs.get(hashes[segment])
        except BlobError as exc:
            self.emit("checkpoint_rejected", job=job["id"], index=segment, reason=str(exc).replace(" ", "_")[:120])
            return None
        finally:
            blobs.close()
        if data is None:
            if key not in self.missing_since:
                self.emit("checkpoint_unavailable", job=job["id"], index=segment)
            return None
        try:
            start = decode_state_checked(data, hashes[segment]).to(self.device)
        except MlError as exc:
            self.emit("checkpoint_rejected", job=job["id"], index=segment, reason=type(exc).__name__)
            return None
        end_step = tjob.get_checkpoint_step(segment + 1)
        self.emit("rerun", job=job["id"], segment=segment, steps=f"{start.step}..{end_step}")
        trace = SegmentTrace.run(tjob, self.load_splits(tjob.dataset_id).train, start, run_segment, end_step)
        self.traces[key] = trace
        return trace

    def attest(self, job: dict[str, Any], segment: int, hashes: list[bytes] | None) -> None:
        from runtime.ml.segments import get_checkpoint_proof

        job_id = job["id"]
        if hashes is None:  # lazy: the proof needs the list, but nothing is re-run
            hashes = self.view.get_job_checkpoints(job)
            if hashes is None:
                return
        args = {"job": job_id, "segment": segment, "end_state_hash": hashes[segment + 1],
                "proof": get_checkpoint_proof(hashes, segment + 1)}
        if try_send(self.view, self.emit, "attest", args):
            # In a block is not succeeded: read the attestation back (the window may have closed).
            after = self.view.get_job(job_id) or {"attestations": []}
            if any(a["verifier"] == self.view.me and a["segment"] == segment for a in after["attestations"]):
                self.emit("attested", job=job_id, segment=segment, lazy=self.lazy)
            else:
                # Its block left the best chain (a fork lost) or the window closed: a later head
                # retries while the window is open (check_duties reads the chain's attestations).
                self.emit("attest_failed", job=job_id, segment=segment, reason="not_recorded_in_its_block")
                return
        self.handled.add((job_id, segment))

    def challenge(self, job: dict[str, Any], segment: int, got: bytes, expected: bytes) -> None:
        job_id = job["id"]
        args = {"job": job_id, "segment": segment, "claimed_end_hash": got, "bond": self.bond}
        if try_send(self.view, self.emit, "challenge", args):
            dispute = self.view.get_dispute(job_id)
            if dispute is None or dispute["challenger"] != self.view.me:
                self.emit("challenge_failed", job=job_id, segment=segment, reason="not_recorded_in_its_block")
                return
            self.emit("challenge", job=job_id, segment=segment, bond=self.bond, solver_claims="0x" + expected.hex()[:16],
                      rerun_gives="0x" + got.hex()[:16])
            self.statuses[job_id] = "Disputed"
            self.handled.add((job_id, segment))

    # --- the dispute -----------------------------------------------------------------------------

    def resume_dispute(self, job: dict[str, Any], segment: int) -> SegmentTrace | None:
        """Our challenge is open but its re-run is not in memory (this process was restarted,
        killed even, mid-dispute): the chain says where the fight stands, so re-run the segment
        from its checkpoint and play on from the current round."""
        hashes = self.checkpoint_hashes(job)
        if hashes is None:
            return None
        self.emit("dispute_resumed", job=job["id"], segment=segment)
        return self.rerun(job, segment, hashes)

    def play(self, job: dict[str, Any]) -> None:
        job_id = job["id"]
        dispute = self.view.get_dispute(job_id)
        if dispute is None or dispute["challenger"] != self.view.me:
            return
        move = (job_id, dispute["phase"], dispute["rounds"])
        if move in self.moves_sent:
            return
        trace = self.traces.get((job_id, dispute["segment"])) or self.resume_dispute(job, dispute["segment"])
        if trace is None:
            return
        if dispute["phase"] == "AwaitAnswer":
            mid = dispute["midStep"]
            agree = "0x" + trace.hashes[mid].hex() == dispute["midHash"]
            if try_send(self.view, self.emit, "answer", {"job": job_id, "agree": agree}):
                self.emit("answer", job=job_id, round=dispute["rounds"], step=mid, agree=agree,
                          range=f"{dispute['loStep']}..{dispute['hiStep']}")
            self.moves_sent.add(move)
        elif dispute["phase"] == "AwaitReferee":
            step = dispute["loStep"]
            if "0x" + trace.hashes[step].hex() != dispute["loHash"]:
                return
            tjob = build_training_job(job)
            args = build_referee_args(job_id, tjob, self.load_splits(tjob.dataset_id).train, trace.state_at(step))
            self.emit("referee_input", job=job_id, step=step, pre_state_bytes=len(args["pre_state"]))
            if try_send(self.view, self.emit, "referee", args):
                self.emit("referee_submitted", job=job_id, step=step)
            self.moves_sent.add(move)
