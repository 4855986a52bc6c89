"""A local training directory: the one on-disk layout the solver writes and the verifier, the
model export and the plot read.

    job.json              the TrainingJob (hex bytes, q16 hyper-parameters)
    checkpoints/N.ckpt    checkpoint N's canonical state bytes (written atomically)
    journal.jsonl         one line per stored checkpoint, appended and fsynced after it is stored
                          everywhere it goes: {"index", "step", "hash", "metrics": [[step, loss, acc]]}
    checkpoints.json      every checkpoint hash in order (the commitment's leaves), once done
    report.json           the run's summary (test accuracy, final hash, commitment root)

The journal is what makes a killed solver resume: its last complete line names the last
checkpoint that was stored, and a line torn by the kill is ignored.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.hashing import blake2_256

if TYPE_CHECKING:  # runtime.ml imports torch: `gensyn-node --help` must not
    from runtime.ml.job import TrainingJob

JOB_FILE = "job.json"
JOURNAL_FILE = "journal.jsonl"
HASHES_FILE = "checkpoints.json"
REPORT_FILE = "report.json"
CHECKPOINT_DIR = "checkpoints"


class WorkDirError(Exception):
    """The directory cannot be read or written as a training directory; the message says why."""


@dataclass(frozen=True, slots=True)
class JournalEntry:
    index: int
    step: int
    state_hash: bytes
    metrics: tuple[tuple[int, float, float], ...]  # (last step of the window, mean loss, accuracy)

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "step": self.step, "hash": self.state_hash.hex(),
                "metrics": [list(m) for m in self.metrics]}

    @classmethod
    def from_json(cls, data: Any) -> JournalEntry:
        return cls(int(data["index"]), int(data["step"]), bytes.fromhex(data["hash"]),
                   tuple((int(s), float(loss), float(acc)) for s, loss, acc in data["metrics"]))


def job_to_json(job: TrainingJob) -> dict[str, Any]:
    h = job.hyper
    return {
        "model_id": job.model_id,
        "dataset_id": job.dataset_id.hex(),
        "seed": job.seed.hex(),
        "hyper": {"lr_q16": h.lr_q16, "momentum_q16": h.momentum_q16,
                  "weight_decay_q16": h.weight_decay_q16, "batch_size": h.batch_size},
        "steps": job.steps,
        "checkpoint_every": job.checkpoint_every,
    }


def job_from_json(data: Any) -> TrainingJob:
    from runtime.ml.job import HyperParams, TrainingJob

    try:
        return TrainingJob(
            model_id=int(data["model_id"]),
            dataset_id=bytes.fromhex(data["dataset_id"]),
            seed=bytes.fromhex(data["seed"]),
            hyper=HyperParams(**{k: int(v) for k, v in data["hyper"].items()}),
            steps=int(data["steps"]),
            checkpoint_every=int(data["checkpoint_every"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise WorkDirError(f"bad {JOB_FILE}: {exc}") from exc


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class TrainingDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def checkpoint_path(self, index: int) -> Path:
        return self.path / CHECKPOINT_DIR / f"{index:06d}.ckpt"

    def _read_json(self, name: str) -> Any:
        try:
            return json.loads((self.path / name).read_text())
        except (OSError, ValueError) as exc:
            raise WorkDirError(f"cannot read {self.path / name}: {exc}") from exc

    def _write_json(self, name: str, value: Any) -> None:
        try:
            _write_atomic(self.path / name, (json.dumps(value, indent=2) + "\n").encode())
        except OSError as exc:
            raise WorkDirError(f"cannot write {self.path / name}: {exc}") from exc

    # --- the job ---------------------------------------------------------------------------------

    def read_job(self) -> TrainingJob:
        return job_from_json(self._read_json(JOB_FILE))

    def bind_job(self, job: TrainingJob) -> None:
        """Make this the directory of `job`: creates it, or checks that it already is."""
        if (self.path / JOB_FILE).exists():
            if self.read_job() != job:
                raise WorkDirError(f"{self.path} holds another job's run; use another directory")
            return
        try:
            (self.path / CHECKPOINT_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkDirError(f"cannot create {self.path}: {exc}") from exc
        self._write_json(JOB_FILE, job_to_json(job))

    # --- checkpoints -----------------------------------------------------------------------------

    def write_checkpoint(self, index: int, data: bytes) -> None:
        try:
            self.checkpoint_path(index).parent.mkdir(parents=True, exist_ok=True)
            _write_atomic(self.checkpoint_path(index), data)
        except OSError as exc:
            raise WorkDirError(f"cannot write checkpoint {index}: {exc}") from exc

    def read_checkpoint(self, index: int, expected_hash: bytes | None = None) -> bytes | None:
        """Checkpoint `index`'s bytes; None if missing or (given a hash) not those bytes."""
        try:
            data = self.checkpoint_path(index).read_bytes()
        except OSError:
            return None
        if expected_hash is not None and blake2_256(data) != expected_hash:
            return None
        return data

    # --- journal ---------------------------------------------------------------------------------

    def append_journal(self, entry: JournalEntry) -> None:
        try:
            with open(self.path / JOURNAL_FILE, "a") as f:
                f.write(json.dumps(entry.to_json(), separators=(",", ":")) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise WorkDirError(f"cannot append to the journal: {exc}") from exc

    def read_journal(self) -> list[JournalEntry]:
        """The complete journal lines in order; a last line torn by a kill is dropped."""
        try:
            lines = (self.path / JOURNAL_FILE).read_text().split("\n")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise WorkDirError(f"cannot read the journal: {exc}") from exc
        entries: list[JournalEntry] = []
        complete, tail = lines[:-1], lines[-1]  # text after the last newline was never finished
        for number, line in enumerate(complete, 1):
            try:
                entry = JournalEntry.from_json(json.loads(line))
            except (ValueError, KeyError, TypeError) as exc:
                raise WorkDirError(f"journal line {number} is corrupt: {exc}") from exc
            if entry.index != len(entries):
                raise WorkDirError(f"journal line {number} holds checkpoint {entry.index}, expected {len(entries)}")
            entries.append(entry)
        if tail:
            self.truncate_journal(entries)
        return entries

    def truncate_journal(self, entries: list[JournalEntry]) -> None:
        """Rewrite the journal to exactly `entries` (drops a torn or abandoned tail)."""
        text = "".join(json.dumps(e.to_json(), separators=(",", ":")) + "\n" for e in entries)
        try:
            _write_atomic(self.path / JOURNAL_FILE, text.encode())
        except OSError as exc:
            raise WorkDirError(f"cannot rewrite the journal: {exc}") from exc

    # --- results ---------------------------------------------------------------------------------

    def write_hashes(self, hashes: list[bytes]) -> None:
        self._write_json(HASHES_FILE, [h.hex() for h in hashes])

    def read_hashes(self) -> list[bytes]:
        try:
            return [bytes.fromhex(h) for h in self._read_json(HASHES_FILE)]
        except (TypeError, ValueError) as exc:
            raise WorkDirError(f"bad {HASHES_FILE}: {exc}") from exc

    def write_report(self, report: dict[str, Any]) -> None:
        self._write_json(REPORT_FILE, report)

    def read_report(self) -> dict[str, Any]:
        report = self._read_json(REPORT_FILE)
        if not isinstance(report, dict):
            raise WorkDirError(f"bad {REPORT_FILE}: not an object")
        return report
