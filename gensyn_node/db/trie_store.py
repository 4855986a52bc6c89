"""Glue between the state trie and the key-value store.

Data path step: block import opens the parent's state with `open_state`, executes, and adds
`trie_node_puts(new_nodes)` to the same atomic batch as the block's header and meta pointers,
so a block's state is on disk exactly when the block is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gensyn_node.db.keys import TRIE_NODE
from gensyn_node.db.kv import KVStore
from runtime.trie import NodeCache, Trie


def trie_node_getter(kv: KVStore) -> Callable[[bytes], bytes | None]:
    """The `get_node` callable of a Trie whose nodes live in `kv`."""
    get = kv.get
    prefix = TRIE_NODE

    def get_node(node_hash: bytes) -> bytes | None:
        return get(prefix + node_hash)

    return get_node


def trie_node_puts(new_nodes: Mapping[bytes, bytes]) -> dict[bytes, bytes]:
    """The puts that store the nodes a `Trie.apply` returned; add them to the block's batch."""
    prefix = TRIE_NODE
    return {prefix + node_hash: data for node_hash, data in new_nodes.items()}


def open_state(kv: KVStore, root: bytes, cache: NodeCache | None = None,
               pending: Mapping[bytes, bytes] | None = None) -> Trie:
    """The state trie at `root`, reading nodes from `kv` through the shared `cache`; `pending`:
    nodes not yet committed (hash -> encoded node, as `Trie.apply` returns them), read first."""
    stored = trie_node_getter(kv)
    if pending is None:
        return Trie(root, stored, cache)
    pending_get = pending.get

    def get_node(node_hash: bytes) -> bytes | None:
        data = pending_get(node_hash)
        return data if data is not None else stored(node_hash)

    return Trie(root, get_node, cache)
