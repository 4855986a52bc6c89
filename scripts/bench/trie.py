"""Micro-benchmark of the state trie: a batch `apply` and a warm `get` on a Substrate-like state.

A trie of --keys account-like storage keys (twox128 ++ twox128 ++ blake2_128concat(32 bytes));
each block changes --changes keys (four fifths updates, one fifth new accounts). Prints one JSON
object per figure, each with a baseline measured in the same run:
- apply: against blake2b-256 of exactly the bytes of the nodes that apply created (the hashing
  any Merkle commitment of the same nodes cannot avoid);
- get: against a plain dict lookup of the same keys.
Times are CPU time of this process (time.process_time), which other load on a shared machine
disturbs far less than wall time.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from runtime.hashing import blake2_128_concat, blake2_256, twox_128
from runtime.trie import EMPTY_ROOT, NodeCache, Trie


def make_key(rng: random.Random, prefix: bytes) -> bytes:
    return prefix + blake2_128_concat(rng.randbytes(32))


def build_state(
    rng: random.Random, count: int, prefix: bytes, cache: NodeCache
) -> tuple[dict[bytes, bytes], dict, Trie]:
    store: dict[bytes, bytes] = {}
    model = {make_key(rng, prefix): rng.randbytes(rng.randint(10, 200)) for _ in range(count)}
    root, nodes = Trie(EMPTY_ROOT, store.get, cache).apply(model)
    store.update(nodes)
    return model, store, Trie(root, store.get, cache)


def make_blocks(rng: random.Random, keys: list[bytes], blocks: int, changes: int, prefix: bytes) -> list:
    out = []
    for _ in range(blocks):
        batch = {k: rng.randbytes(80) for k in rng.sample(keys, changes * 4 // 5)}
        while len(batch) < changes:
            key = make_key(rng, prefix)
            batch[key] = rng.randbytes(80)
            keys.append(key)
        out.append(batch)
    return out


def bench_apply(
    trie: Trie, store: dict, blocks: list, cache: NodeCache
) -> tuple[list[float], list[float], int]:
    apply_ms, hash_ms = [], []
    nodes_per_block = 0
    for batch in blocks:
        start = time.process_time()
        root, nodes = trie.apply(batch)
        apply_ms.append((time.process_time() - start) * 1e3)
        data = list(nodes.values())
        start = time.process_time()
        for item in data:
            blake2_256(item)
        hash_ms.append((time.process_time() - start) * 1e3)
        nodes_per_block = len(nodes)
        store.update(nodes)
        trie = Trie(root, store.get, cache)
    return apply_ms, hash_ms, nodes_per_block


def bench_get(trie: Trie, model: dict, rng: random.Random, reads: int) -> tuple[float, float]:
    keys = rng.choices(list(model), k=reads)
    for key in keys:
        trie.get(key)  # warm the cache
    start = time.process_time()
    for key in keys:
        trie.get(key)
    trie_us = (time.process_time() - start) / reads * 1e6
    start = time.process_time()
    for key in keys:
        model.get(key)
    dict_us = (time.process_time() - start) / reads * 1e6
    return trie_us, dict_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=2_500)
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    prefix = twox_128(b"System") + twox_128(b"Account")
    cache = NodeCache()
    model, store, trie = build_state(rng, args.keys, prefix, cache)
    blocks = make_blocks(rng, list(model), args.blocks, args.changes, prefix)
    apply_ms, hash_ms, nodes = bench_apply(trie, store, blocks, cache)
    for batch in blocks:
        model.update(batch)
    final_root = trie.apply({k: v for b in blocks for k, v in b.items()})[0]
    trie = Trie(final_root, store.get, cache)
    get_us, dict_us = bench_get(trie, model, rng, args.reads)
    apply_median, hash_median = statistics.median(apply_ms), statistics.median(hash_ms)
    print(json.dumps({
        "figure": "trie_apply", "keys": args.keys, "changes": args.changes, "new_nodes": nodes,
        "apply_ms": round(apply_median, 2), "apply_ms_min": round(min(apply_ms), 2),
        "baseline_hash_new_nodes_ms": round(hash_median, 2),
        "ratio": round(apply_median / hash_median, 2),
    }))
    print(json.dumps({
        "figure": "trie_get", "keys": len(model), "get_us": round(get_us, 2),
        "baseline_dict_get_us": round(dict_us, 3), "ratio": round(get_us / dict_us, 1),
    }))


if __name__ == "__main__":
    main()
