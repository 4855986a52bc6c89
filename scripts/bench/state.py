"""Benchmark: block import as the state grows, and what pruning keeps on disk.

Speed: blocks of 1,000 signed transfers between random existing accounts, imported (execute,
state root, commit, finalize with pruning) into a LevelDB store holding only genesis, at each
account count, against the raw ed25519 verification of the same signatures in the same run (one
core's ceiling). Each import runs in its own process (so its peak RSS is the import's, not the
chain builder's), from a copy of a store that holds genesis only. The store's opening (the scan
of every node key a pruning store makes once, at startup) is timed apart, as store_open_s.

Disk: a long run of small blocks at a flat account set, with --state-pruning 256 and archive:
the store's size (after compaction) as it goes, and disk bytes per block past the window.

Prints one JSON object per figure (speed at each size, the ratio of the sizes, disk), each with
its baseline and a per-part breakdown.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sigverify import time_verify

from gensyn_node.block_import import import_block
from gensyn_node.chain_db import ChainStore
from gensyn_node.db.kv import open_kv
from gensyn_node.db.pruning import StatePruning
from gensyn_node.keyring import keypair_from_seed
from runtime.block import Block
from runtime.crypto import ED25519
from runtime.executive import BlockBuilder, execute_block
from runtime.extrinsic import encode_signed, signing_payload
from runtime.genesis import build_genesis
from runtime.params import ChainParameters
from runtime.trie import NodeCache, Trie
from runtime.types import Era
from runtime.version import get_runtime

PARAMS = ChainParameters(max_block_weight=10**15)


def _keys(accounts: int) -> list:
    return [keypair_from_seed(i.to_bytes(32, "little"), ED25519) for i in range(1, accounts + 1)]


def _senders(accounts: int, signers: int) -> list:
    return _keys(min(accounts, signers))


def build(out: Path, accounts: int, blocks: int, per_block: int, signers: int, seed: int, archive: bool) -> None:
    """Genesis with `accounts` endowed accounts (the first `signers` have keys) into a template
    store at out/genesis-db (and out/genesis-db-archive), and a chain of blocks into out/blocks."""
    started = time.perf_counter()
    keys = _senders(accounts, signers)
    endowed = [(k.public, 10**18) for k in keys]
    endowed += [(i.to_bytes(32, "big"), 10**18) for i in range(len(keys) + 1, accounts + 1)]
    genesis, _storage, nodes = build_genesis({"balances": endowed, "params": PARAMS, "spec_version": 1})
    del _storage
    genesis_s = time.perf_counter() - started
    template = ChainStore.open(str(out / "genesis-db"), state_pruning=StatePruning.parse("256"))
    template.initialize(genesis, nodes)
    # Into tables now: else every import's open replays genesis (one huge batch) from the log.
    template.kv.db.compact_range()  # type: ignore[attr-defined]
    template.close()
    if archive:
        template = ChainStore.open(str(out / "genesis-db-archive"), state_pruning=StatePruning.parse("archive"))
        template.initialize(genesis, nodes)
        template.kv.db.compact_range()  # type: ignore[attr-defined]
        template.close()
    del nodes
    work = out / "build-db"
    shutil.copytree(out / "genesis-db", work)
    store = ChainStore.open(str(work))
    rng = random.Random(seed)
    runtime = get_runtime(1)
    nonces = [0] * len(keys)
    parent = genesis
    with open(out / "blocks", "wb") as f:
        for b in range(blocks):
            builder = BlockBuilder(store.state_at(parent.hash), parent, slot=b + 1, author=keys[0].public,
                                   timestamp_ms=(b + 1) * PARAMS.slot_duration_ms)
            for s in rng.sample(range(len(keys)), min(per_block, len(keys))):
                dest = endowed[rng.randrange(accounts)][0]
                call = runtime.encode_call("Balances", "transfer_keep_alive", {"dest": ("Id", dest), "value": 10**12 + s})
                payload = signing_payload(call, Era.encode(None), nonces[s], 0, 1, 1, genesis.hash, genesis.hash)
                builder.push(encode_signed(call, keys[s].public, ED25519, keys[s].sign(payload), None, nonces[s], 0))
                nonces[s] += 1
            block, executed = builder.build()
            import_block(store, block, executed=executed)
            store.set_finalized(block.hash)
            data = block.encode()
            f.write(len(data).to_bytes(4, "big") + data)
            parent = block.header
    store.close()
    shutil.rmtree(work)
    (out / "genesis.json").write_text(json.dumps({"genesis_s": round(genesis_s, 1), "hash": genesis.hash.hex()}))


def read_blocks(path: Path) -> list[Block]:
    data = path.read_bytes()
    blocks, pos = [], 0
    while pos < len(data):
        size = int.from_bytes(data[pos:pos + 4], "big")
        blocks.append(Block.decode(data[pos + 4:pos + 4 + size]))
        pos += 4 + size
    return blocks


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _rss_split_mb() -> dict[str, float]:
    """Anonymous memory (the process's own) and file pages mapped in (LevelDB reads its tables
    through mmap: those pages are the kernel's page cache, counted in RSS while mapped)."""
    split = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("RssAnon:", "RssFile:")):
            split[line.split(":")[0]] = round(int(line.split()[1]) / 1024, 1)
    return split


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run_import(out: Path, mode: str, profile: bool, sample_every: int, cache_mb: int = 0) -> dict:
    """Import the chain into a copy of the genesis store; per-part times and sizes."""
    blocks = read_blocks(out / "blocks")
    db = out / f"import-{mode}"
    if db.exists():
        shutil.rmtree(db)
    shutil.copytree(out / ("genesis-db-archive" if mode == "archive" else "genesis-db"), db)
    cache = NodeCache(max_bytes=cache_mb << 20) if cache_mb else None
    store = ChainStore(open_kv(str(db)), cache, state_pruning=StatePruning.parse(mode))
    parts: dict[str, list[float]] = {"read_ahead": [], "execute": [], "apply": [], "commit": [], "finalize": [],
                                     "total": []}
    original_update = Trie.update
    apply_s = [0.0]

    def timed_update(self, changes):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        try:
            return original_update(self, changes)
        finally:
            apply_s[0] += time.perf_counter() - t

    original_get_many = Trie.get_many
    read_s = [0.0]

    def timed_get_many(self, keys):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        try:
            return original_get_many(self, keys)
        finally:
            read_s[0] += time.perf_counter() - t

    Trie.update = timed_update  # type: ignore[method-assign]
    Trie.get_many = timed_get_many  # type: ignore[method-assign]
    t_open = time.perf_counter()
    store.load_node_counts()  # a startup cost, reported apart from the blocks' own
    open_s = time.perf_counter() - t_open
    rss_open = _rss_mb()
    profiler = cProfile.Profile() if profile else None
    sizes = []
    for index, block in enumerate(blocks):
        apply_s[0] = read_s[0] = 0.0
        if profiler:
            profiler.enable()
        t0 = time.perf_counter()
        executed = execute_block(store.state_at(block.header.parent_hash), block)
        t1 = time.perf_counter()
        import_block(store, block, executed=executed)
        t2 = time.perf_counter()
        store.set_finalized(block.hash)
        t3 = time.perf_counter()
        if profiler:
            profiler.disable()
        parts["read_ahead"].append(read_s[0])
        parts["execute"].append(t1 - t0 - apply_s[0] - read_s[0])
        parts["apply"].append(apply_s[0])
        parts["commit"].append(t2 - t1)
        parts["finalize"].append(t3 - t2)
        parts["total"].append(t3 - t0)
        if sample_every and (index + 1) % sample_every == 0:
            store.kv.db.compact_range()  # type: ignore[attr-defined]
            sizes.append([index + 1, _dir_bytes(db)])
    Trie.update = original_update  # type: ignore[method-assign]
    Trie.get_many = original_get_many  # type: ignore[method-assign]
    memory = {"rss_at_open_mb": round(rss_open, 1), "rss_at_end_mb": round(_rss_mb(), 1),
              "rss_at_end_split_mb": _rss_split_mb(),
              "node_cache_nodes": len(store.cache), "node_cache_budget_mb": (store.cache.max_bytes or 0) >> 20}
    store.close()
    if profiler:
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(25)
    shutil.rmtree(db)
    return {"parts_s": parts, "sizes": sizes, "open_s": open_s, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "memory": memory,
            "transfers": sum(len(b.extrinsics) - 1 for b in blocks)}


def verify_chain(out: Path) -> tuple[float, int]:
    """The raw verification of the chain's signatures (the baseline of the import figure)."""
    genesis_hash = bytes.fromhex(json.loads((out / "genesis.json").read_text())["hash"])
    return time_verify(read_blocks(out / "blocks"), get_runtime(1), genesis_hash)


def _child(*args: str) -> dict:
    """Run this script's own subcommand in a fresh process; its last stdout line is JSON."""
    run = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise SystemExit(f"{args[0]} failed:\n{run.stderr[-4000:]}")
    if run.stderr.strip():
        print(run.stderr, file=sys.stderr, end="")
    return json.loads(run.stdout.strip().splitlines()[-1]) if run.stdout.strip() else {}


def prepare(root: Path, name: str, accounts: int, blocks: int, per_block: int, signers: int,
            archive: bool = False) -> Path:
    out = root / name
    if (out / "genesis.json").exists():
        return out  # built by an earlier run with --workdir
    out.mkdir(parents=True, exist_ok=True)
    (out / "meta.json").write_text(json.dumps({"accounts": accounts, "signers": signers}))
    print(f"building {name}: {accounts} accounts, {blocks} blocks of {per_block} transfers...", file=sys.stderr)
    _child("build", str(out), str(accounts), str(blocks), str(per_block), str(signers), "1" if archive else "0")
    return out


def _median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 2)


def speed_figure(out: Path, accounts: int, rounds: int, profile: bool, cache_mb: int) -> dict:
    best_verify, best, count = float("inf"), None, 0
    for _ in range(rounds):
        verify_s, count = verify_chain(out)
        best_verify = min(best_verify, verify_s)
        this = _child("import", str(out), "256", "1" if profile else "0", "0", str(cache_mb))
        if best is None or sum(this["parts_s"]["total"]) < sum(best["parts_s"]["total"]):
            best = this
        profile = False
    assert best is not None
    total = sum(best["parts_s"]["total"])
    per_s = best["transfers"] / total
    ceiling = count / best_verify
    parts = {k: _median_ms(v) for k, v in best["parts_s"].items()}
    return {"figure": "import_with_state", "accounts": accounts, "transfers_per_s": round(per_s, 1),
            "verify_ceiling_per_s": round(ceiling, 1), "ratio": round(per_s / ceiling, 3),
            "ms_per_block_median": parts, "blocks": len(best["parts_s"]["total"]),
            "peak_rss_mb": round(best["rss_mb"], 1), "memory": best["memory"], "state_pruning": 256, "rounds": rounds,
            "store_open_s": round(best["open_s"], 2),
            "baseline": "raw ed25519 verification of the same signatures, same run, one core (best round)"}


def disk_figure(out: Path, blocks: int, sample_every: int) -> dict:
    pruned = _child("import", str(out), "256", "0", str(sample_every), "0")
    archive = _child("import", str(out), "archive", "0", str(sample_every), "0")

    def per_block(sizes: list) -> float:
        past = [s for s in sizes if s[0] > 256]
        if len(past) < 2:
            return float("nan")
        return (past[-1][1] - past[0][1]) / (past[-1][0] - past[0][0])

    return {"figure": "disk_with_pruning", "blocks": blocks,
            "bytes_per_block_pruned_256": round(per_block(pruned["sizes"])),
            "bytes_per_block_archive": round(per_block(archive["sizes"])),
            "store_bytes_pruned_256": pruned["sizes"], "store_bytes_archive": archive["sizes"],
            "peak_rss_mb_pruned": round(pruned["rss_mb"], 1),
            "baseline": "the same blocks imported with --state-pruning archive, same run",
            "note": "sizes after a LevelDB compaction; past the window the pruned store only grows with the state"}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "build":
        out, accounts, blocks, per_block, signers, archive = sys.argv[2:8]
        build(Path(out), int(accounts), int(blocks), int(per_block), int(signers), seed=7, archive=archive == "1")
        return
    if len(sys.argv) > 1 and sys.argv[1] == "import":
        out, mode, profile, sample_every, cache_mb = sys.argv[2:7]
        print(json.dumps(run_import(Path(out), mode, profile == "1", int(sample_every), int(cache_mb))))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,1000000", help="account counts, comma-separated")
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--per-block", type=int, default=1000)
    parser.add_argument("--signers", type=int, default=50_000, help="accounts that send (the rest only receive)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--disk-blocks", type=int, default=2000, help="0 skips the disk figure")
    parser.add_argument("--disk-per-block", type=int, default=20)
    parser.add_argument("--disk-accounts", type=int, default=10_000)
    parser.add_argument("--profile", action="store_true", help="cProfile the first import at each size (stderr)")
    parser.add_argument("--workdir", default=None, help="keep the built chains here (and reuse them)")
    parser.add_argument("--cache-mb", type=int, default=0, help="node cache budget (0: the chain store's default)")
    args = parser.parse_args()
    root = Path(args.workdir or tempfile.mkdtemp(prefix="bench-state-"))
    try:
        figures = []
        for accounts in [int(s) for s in args.sizes.split(",")]:
            out = prepare(root, f"speed-{accounts}", accounts, args.blocks, args.per_block, args.signers)
            figure = speed_figure(out, accounts, args.rounds, args.profile, args.cache_mb)
            figure["genesis_build_s"] = json.loads((out / "genesis.json").read_text())["genesis_s"]
            print(json.dumps(figure), flush=True)
            figures.append(figure)
            if args.workdir is None:
                shutil.rmtree(out)
        if len(figures) >= 2:
            small, large = figures[0], figures[-1]
            print(json.dumps({"figure": "import_ratio_large_over_small", "value": round(large["ratio"] / small["ratio"], 3),
                              "large_accounts": large["accounts"], "small_accounts": small["accounts"], "target": 0.8,
                              "baseline": "each size's ratio to raw verify, same run"}), flush=True)
        if args.disk_blocks:
            out = prepare(root, "disk", args.disk_accounts, args.disk_blocks, args.disk_per_block, args.disk_accounts,
                          archive=True)
            print(json.dumps(disk_figure(out, args.disk_blocks, max(args.disk_blocks // 8, 1))), flush=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
        os.sync()


if __name__ == "__main__":
    main()
