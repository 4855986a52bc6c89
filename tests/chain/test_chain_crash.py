"""Crash safety: a node killed with SIGKILL in the middle of importing blocks, or of pruning,
reopens at a consistent head (never a partial block), has lost no block it reported committed,
and (pruning) finishes the interrupted pruning: every kept state whole, no node leaked."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from gensyn_node.chain_db import ChainStore
from gensyn_node.db import keys
from gensyn_node.db.pruning import StatePruning
from runtime.pallets.system.account import AccountRecord
from runtime.pallets.system.storage import Account
from tests.chain.crash_worker import KEYS, genesis
from tests.chain.pruning_check import check_pruned_store

ROOT = Path(__file__).resolve().parents[2]


def _run_and_kill(db: Path, rng: random.Random, *worker_args: str) -> int:
    """Start the worker, let it commit a few blocks, SIGKILL it mid-import (or, pruning, in half
    the rounds just as it starts finalizing); return the highest block it reported committed."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.chain.crash_worker", str(db), *worker_args], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    wanted = rng.randint(1, 4)
    at_finality = bool(worker_args) and rng.random() < 0.5
    committed = -1
    assert proc.stdout is not None
    for line in proc.stdout:
        what, number = line.split()[:2]
        if what == "committed":
            committed = int(number)
            wanted -= 1
        if wanted <= 0 and (not at_finality or what == "finalizing"):
            break
    # Kill at a random point inside the next block's build/import.
    os.kill(proc.pid, signal.SIGKILL) if rng.random() < 0.5 else _kill_after_spin(proc, rng)
    proc.wait()
    return committed


def _kill_after_spin(proc: subprocess.Popen, rng: random.Random) -> None:
    # Burn a random, small amount of CPU so the kill lands at varied points of the import.
    for _ in range(rng.randint(0, 200_000)):
        pass
    os.kill(proc.pid, signal.SIGKILL)


def _has_pruning_to_finish(store: ChainStore) -> bool:
    finalized = store.finalized_header()
    window = store.state_pruning.window or 0
    pruned = int.from_bytes(store.kv.get(keys.META_STATE_PRUNED) or bytes(8), "big")
    settled = all(keys.split_numbered_key(k)[0] > finalized.number for k in store.kv.iterate_keys(keys.UNFINALIZED))
    return pruned < finalized.number - window + 1 or not settled


def _check_consistent(db: Path, prune: bool = False) -> int:
    store = ChainStore.open(str(db))
    try:
        if prune:
            header, _storage, nodes = genesis()
            store.initialize(header, nodes)  # finishes the pruning a kill interrupted
            assert not _has_pruning_to_finish(store)
            check_pruned_store(store)
        best = store.best_header()
        # Every canonical block up to best is present, linked, and indexed.
        parent_hash = None
        for number in range(best.number + 1):
            block_hash = store.hash_at(number)
            assert block_hash is not None, f"block #{number} missing from the index"
            block = store.get_block(block_hash)
            assert block is not None and block.header.number == number
            if parent_hash is not None:
                assert block.header.parent_hash == parent_hash
            parent_hash = block_hash
        assert parent_hash == best.hash
        assert store.hash_at(best.number + 1) is None
        # The head's whole state is readable and balances are intact.
        state = store.state_at(best.hash)
        accounts = list(state.iter_prefix(Account.prefix))
        assert len(accounts) >= len(KEYS)
        assert sum(AccountRecord.from_bytes(v).free for _, v in accounts) > 0
        return best.number
    finally:
        store.close()


def test_chain_store_survives_sigkill_mid_import(tmp_path):
    rng = random.Random(1234)
    db = tmp_path / "db"
    header, _storage, _nodes = genesis()
    acknowledged = -1
    for _round in range(10):
        acknowledged = max(acknowledged, _run_and_kill(db, rng))
        best = _check_consistent(db)
        assert best >= acknowledged, f"block #{acknowledged} was reported committed but the head is #{best}"
    assert acknowledged >= 10, "the worker should have committed blocks in every round"
    store = ChainStore.open(str(db))
    assert store.genesis_hash == header.hash
    store.close()


def _run_until_it_dies(db: Path, writes: int) -> int:
    """Run the worker until it kills itself after `writes` writes of a finalization."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.chain.crash_worker", str(db), "3", str(writes)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    out, _err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    return max(int(line.split()[1]) for line in out.splitlines() if line.startswith("committed"))


def test_chain_store_survives_sigkill_mid_pruning(tmp_path):
    rng = random.Random(99)
    db = tmp_path / "db"
    acknowledged = -1
    interrupted = 0
    for round_ in range(8):
        if round_ % 2:
            acknowledged = max(acknowledged, _run_and_kill(db, rng, "3"))
        else:
            acknowledged = max(acknowledged, _run_until_it_dies(db, rng.randint(1, 3)))
            store = ChainStore.open(str(db))
            interrupted += _has_pruning_to_finish(store)
            store.close()
        best = _check_consistent(db, prune=True)
        assert best >= acknowledged, f"block #{acknowledged} was reported committed but the head is #{best}"
    assert acknowledged >= 8
    assert interrupted >= 2, "the kills between pruning steps should leave pruning to finish"
    store = ChainStore.open(str(db))
    assert store.state_pruning == StatePruning(3)
    assert store.finalized_header().number >= 4
    store.close()
