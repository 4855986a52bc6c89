"""Crash safety: a node killed with SIGKILL in the middle of importing blocks reopens at a
consistent head (never a partial block) and has lost no block it reported committed."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from gensyn_node.chain_db import ChainStore
from runtime.pallets.system.account import AccountRecord
from runtime.pallets.system.storage import Account
from tests.chain.crash_worker import KEYS, genesis

ROOT = Path(__file__).resolve().parents[2]


def _run_and_kill(db: Path, rng: random.Random) -> int:
    """Start the worker, let it commit a few blocks, SIGKILL it mid-import; return the highest
    block number it reported committed."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.chain.crash_worker", str(db)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    wanted = rng.randint(1, 4)
    committed = -1
    assert proc.stdout is not None
    for line in proc.stdout:
        committed = int(line.split()[1])
        wanted -= 1
        if wanted <= 0:
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


def _check_consistent(db: Path) -> int:
    store = ChainStore.open(str(db))
    try:
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
