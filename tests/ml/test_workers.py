"""The solver and verifier cores in-process on a small data set: resume after an interruption
ends on the uninterrupted hash, the journal survives a torn line, each cheat mode is caught by
re-execution exactly where it cheats, and the lazy verifier misses it."""

from __future__ import annotations

import pytest

from gensyn_node.ml.cheats import CheatError, fake_segment, other_data, parse_cheat, skip_steps
from gensyn_node.ml.solver import run_solver
from gensyn_node.ml.verifier import MATCH, MISMATCH, UNAVAILABLE, verify_segment_from
from gensyn_node.ml.workdir import JOURNAL_FILE, TrainingDir, WorkDirError
from runtime.ml.segments import iter_checkpoints, run_segment


class Interrupted(Exception):
    pass


def interrupt_after(step: int):  # type: ignore[no-untyped-def]
    def run(state, job, dataset, first, n, on_step):  # type: ignore[no-untyped-def]
        if first >= step:
            raise Interrupted
        return run_segment(state, job, dataset, first, n, on_step)

    return run


@pytest.fixture(scope="module")
def job(subset, make_job):  # type: ignore[no-untyped-def]
    return make_job(subset, steps=12, every=3, batch_size=16)


@pytest.fixture(scope="module")
def honest_hashes(job, subset):  # type: ignore[no-untyped-def]
    return [cp.state_hash for cp in iter_checkpoints(job, subset)]


def verify_all(workdir: TrainingDir, job, subset, hashes, lazy=False):  # type: ignore[no-untyped-def]
    index_of = {h: i for i, h in enumerate(hashes)}
    fetch = lambda h: workdir.read_checkpoint(index_of[h], h)
    return [verify_segment_from(fetch, job, subset, i, hashes, lazy=lazy).result for i in range(len(hashes) - 1)]


def test_solver_resumes_to_the_uninterrupted_hash(tmp_path, job, subset, honest_hashes):
    workdir = TrainingDir(tmp_path / "run")
    events: list[tuple[str, dict]] = []
    with pytest.raises(Interrupted):
        run_solver(job, subset, workdir, cheat=interrupt_after(6), progress=False,
                   on_event=lambda name, fields: events.append((name, fields)))
    assert [e.index for e in workdir.read_journal()] == [0, 1, 2]
    result = run_solver(job, subset, workdir, progress=False, on_event=lambda n, f: events.append((n, f)))
    assert result.resumed_from_step == 6
    assert result.hashes == honest_hashes
    assert workdir.read_hashes() == honest_hashes
    assert ("resumed", {"index": 2, "step": 6}) in events
    assert [f["index"] for n, f in events if n == "checkpoint"] == [0, 1, 2, 3, 4]
    # The metrics windows cover each step once, however the run was cut.
    assert [m[0] for m in result.metrics] == [2, 5, 8, 11]


def test_solver_journal_torn_line_and_lost_checkpoint_fall_back(tmp_path, job, subset, honest_hashes):
    workdir = TrainingDir(tmp_path / "run")
    with pytest.raises(Interrupted):
        run_solver(job, subset, workdir, cheat=interrupt_after(9), progress=False)
    with open(workdir.path / JOURNAL_FILE, "a") as f:
        f.write('{"index":4,"step":12,"ha')  # a kill in the middle of an append
    workdir.checkpoint_path(3).unlink()  # and the last journalled checkpoint is gone
    result = run_solver(job, subset, workdir, progress=False)
    assert result.resumed_from_step == 6 and result.hashes == honest_hashes


def test_solver_refuses_another_jobs_directory(tmp_path, job, subset, make_job):
    workdir = TrainingDir(tmp_path / "run")
    run_solver(job, subset, workdir, progress=False)
    with pytest.raises(WorkDirError, match="another job"):
        run_solver(make_job(subset, steps=6, every=3, batch_size=16), subset, workdir, progress=False)


def test_solver_corrupt_journal_is_an_error(tmp_path, job, subset):
    workdir = TrainingDir(tmp_path / "run")
    workdir.bind_job(job)
    (workdir.path / JOURNAL_FILE).write_text("garbage\n")
    with pytest.raises(WorkDirError, match="journal line 1 is corrupt"):
        run_solver(job, subset, workdir, progress=False)


@pytest.mark.parametrize("cheat, expected", [
    (fake_segment(2), [MATCH, MATCH, MISMATCH, MATCH]),
    (skip_steps(2), [MISMATCH] * 4),
    (other_data(), [MISMATCH] * 4),
])
def test_cheats_are_caught_where_they_cheat(tmp_path, job, subset, honest_hashes, cheat, expected):
    workdir = TrainingDir(tmp_path / "cheat")
    hashes = run_solver(job, subset, workdir, cheat=cheat, progress=False).hashes
    assert hashes[0] == honest_hashes[0] and hashes[-1] != honest_hashes[-1]
    assert verify_all(workdir, job, subset, hashes) == expected
    assert verify_all(workdir, job, subset, hashes, lazy=True) == [MATCH] * 4  # the lazy verifier misses it


def test_honest_run_verifies_everywhere_and_unavailable_start(tmp_path, job, subset, honest_hashes):
    workdir = TrainingDir(tmp_path / "honest")
    run_solver(job, subset, workdir, progress=False)
    assert verify_all(workdir, job, subset, honest_hashes) == [MATCH] * 4
    verdict = verify_segment_from(lambda h: None, job, subset, 1, honest_hashes)
    assert verdict.result == UNAVAILABLE and "not available" in verdict.reason
    forged = verify_segment_from(lambda h: b"junk", job, subset, 1, honest_hashes)
    assert forged.result == MISMATCH and "StateHashMismatchError" in forged.reason


def test_parse_cheat_modes(job):
    assert callable(parse_cheat("fake-segment", job)) and callable(parse_cheat("skip-steps:3", job))
    assert callable(parse_cheat("other-data:x", job))
    for bad, reason in [("teleport", "unknown cheat mode"), ("fake-segment:9", "segments 0..3"),
                        ("skip-steps:1", "K >= 2"), ("skip-steps:x", "not an integer")]:
        with pytest.raises(CheatError, match=reason):
            parse_cheat(bad, job)


def test_command_line_parser_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys; from gensyn_node.cli.dispatch import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr
