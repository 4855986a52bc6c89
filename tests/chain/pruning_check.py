"""The invariant of a pruned chain store, checked from scratch (not a test module): every kept
state is whole, the store holds exactly the nodes of the kept states, and every stored count is
what the journals on disk say it must be (so nothing is lost and nothing leaks)."""

from __future__ import annotations

from collections import Counter

from gensyn_node.chain_db import ChainStore
from gensyn_node.db import keys
from gensyn_node.db.state_db import StateJournal
from runtime.trie import EMPTY_ROOT, decode_node


def positions(store: ChainStore, root: bytes) -> Counter:
    """Each node of the trie at `root`, once per position, read from the store (not the cache)."""
    counts: Counter = Counter()
    stack = [] if root == EMPTY_ROOT else [root]
    while stack:
        node_hash = stack.pop()
        data = store.kv.get(keys.trie_node_key(node_hash))
        assert data is not None, f"a kept state lacks trie node {node_hash.hex()}"
        counts[node_hash] += 1
        _partial, children, _value = decode_node(data)
        stack.extend(c for c in children or () if c is not None)
    return counts


def kept_headers(store: ChainStore) -> list:
    pruned = int.from_bytes(store.kv.get(keys.META_STATE_PRUNED) or bytes(8), "big")
    best = store.best_header()
    headers = [store.require_header(store.hash_at(n)) for n in range(pruned, best.number + 1)]
    for key in store.kv.iterate_keys(keys.UNFINALIZED):
        _number, block_hash = keys.split_numbered_key(key)
        if store.hash_at(_number) != block_hash:
            headers.append(store.require_header(block_hash))
    return headers


def check_pruned_store(store: ChainStore) -> dict[str, int]:
    """Assert the invariant; returns a few sizes for the caller's own checks."""
    pruned = int.from_bytes(store.kv.get(keys.META_STATE_PRUNED) or bytes(8), "big")
    finalized = store.finalized_header()
    window = store.state_pruning.window
    assert window is not None
    assert pruned == max(0, finalized.number - window + 1), "pruning stopped short of the window"
    headers = kept_headers(store)
    reachable: set[bytes] = set()
    for header in headers:
        reachable.update(positions(store, header.state_root))
        assert store.is_state_kept(header)
    base = store.require_header(store.hash_at(pruned))
    expected = positions(store, base.state_root)
    journals = 0
    for key, raw in store.kv.iterate(keys.STATE_JOURNAL):
        number, _block_hash = keys.split_numbered_key(key)
        assert number > pruned, f"the journal of block #{number} outlived the fold of its block"
        journal = StateJournal.decode(raw)
        expected.update(journal.inserted)
        expected.update(journal.inserted_again)
        journals += 1
    stored_nodes = {k[1:] for k in store.kv.iterate_keys(keys.TRIE_NODE)}
    assert stored_nodes == reachable, (
        f"{len(stored_nodes - reachable)} nodes leaked, {len(reachable - stored_nodes)} lost")
    assert set(+expected) == stored_nodes
    stored_rc = {k[1:]: int.from_bytes(v, "big") for k, v in store.kv.iterate(keys.TRIE_REFCOUNT)}
    for node_hash in stored_nodes:
        assert stored_rc.get(node_hash, 1) == expected[node_hash], f"wrong count for {node_hash.hex()}"
    assert set(stored_rc) <= stored_nodes
    return {"nodes": len(stored_nodes), "journals": journals, "kept_states": len(headers), "pruned": pruned}
