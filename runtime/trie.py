"""The Merkle state trie: the state root in every header and the read proofs that verify against it.

Data path step: block execution writes its storage changes through `Trie.apply`, whose new root
goes into the header; block import persists the returned nodes in the block's one atomic batch.

A radix-16 Patricia trie in Substrate's nibbled-branch form: every node carries a partial key
(a run of nibbles), so there are no separate extension nodes.

- leaf:   partial key and value;
- branch: partial key, up to 16 children (by hash) and an optional value.

Nodes, their encoding and the node cache are in runtime/trie_node.py.

Pure: no I/O, no clock, no threads. Nodes come from an injected `get_node(hash)` callable.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import cast

__all__ = [
    "EMPTY_NODE",
    "EMPTY_ROOT",
    "MAX_KEY_BYTES",
    "NodeCache",
    "ProofError",
    "Trie",
    "TrieDiff",
    "TrieError",
    "decode_node",
    "encode_node",
    "verify_proof",
]
from runtime.trie_node import (
    _HEX,
    _NEXT,
    _NIBBLE,
    EMPTY_NODE,
    EMPTY_ROOT,
    HASH_LEN,
    MAX_KEY_BYTES,
    Node,
    NodeCache,
    ProofError,
    TrieError,
    _blake2b,
    _check_value,
    _common_prefix_len,
    _hash,
    decode_node,
    encode_node,
)


@dataclass(frozen=True, slots=True)
class TrieDiff:
    """What one `Trie.update` did, position by position, for whoever keeps reference counts.

    A node may sit at several positions of one trie (two identical subtrees), so the lists count
    positions: the new trie holds the old one's nodes, minus one occurrence of each entry of
    `removed`, plus `new_nodes` (once each) and one more occurrence of each `inserted_again`.
    """

    root: bytes
    new_nodes: dict[bytes, bytes]
    removed: list[bytes]  # nodes of the old trie at the positions the update rewrote
    inserted_again: list[bytes]  # a new node committed at a second (third...) position


class Trie:
    """A read view of the state at `root`, and the batch update that yields the next root."""

    def __init__(
        self,
        root: bytes,
        get_node: Callable[[bytes], bytes | None],
        cache: NodeCache | None = None,
    ) -> None:
        if not isinstance(root, bytes) or len(root) != HASH_LEN:
            raise TrieError("a trie root is a 32-byte hash")
        self.root = root
        self._get_node = get_node
        self._cache = cache if cache is not None else NodeCache(capacity=65_536)

    # -- reading -----------------------------------------------------------------------------

    def load_node(self, node_hash: bytes) -> Node:
        """The decoded node with this hash: from the cache, else from the store (hash checked)."""
        node = self._cache.get(node_hash)
        if node is not None:
            return node
        data = self._get_node(node_hash)
        if data is None:
            raise TrieError(f"trie node {node_hash.hex()} is missing from the store")
        if _hash(data) != node_hash:
            raise TrieError(f"trie node {node_hash.hex()} does not match its hash")
        node = decode_node(data)
        self._cache.put(node_hash, node, len(data))
        return node

    def get(self, key: bytes) -> bytes | None:
        """The value stored at `key`, or None."""
        path = key.hex()
        node_hash = self.root
        if node_hash == EMPTY_ROOT:
            return None
        load = self.load_node
        young = self._cache._young.get  # the cache's fast path, inlined: get is the hottest read
        end = len(path)
        depth = 0
        while True:
            partial, children, value = young(node_hash) or load(node_hash)
            if not path.startswith(partial, depth):
                return None
            depth += len(partial)
            if depth == end:
                return value
            if children is None:
                return None
            node_hash = children[_NIBBLE[path[depth]]]
            if node_hash is None:
                return None
            depth += 1

    def get_many(self, keys: Iterable[bytes]) -> dict[bytes, bytes | None]:
        """The value (or None) of each key, read in one walk: the keys in order, each node on
        their paths loaded once however many keys pass through it (a block's touched keys,
        read ahead of its execution)."""
        ordered = sorted(set(keys))
        result: dict[bytes, bytes | None] = dict.fromkeys(ordered)
        if self.root == EMPTY_ROOT or not ordered:
            return result
        paths = [k.hex() for k in ordered]
        load = self.load_node
        young = self._cache._young.get
        # Entries: (node, depth of its partial key, the range of paths under it).
        stack: list[tuple[bytes, int, int, int]] = [(self.root, 0, 0, len(paths))]
        while stack:
            node_hash, depth, lo, hi = stack.pop()
            partial, children, value = young(node_hash) or load(node_hash)
            end = depth + len(partial)
            if partial:
                prefix = paths[lo][:depth] + partial
                lo = bisect_left(paths, prefix, lo, hi)
                hi = bisect_left(paths, prefix + "~", lo, hi)  # "~" sorts after every hex digit
            if lo < hi and len(paths[lo]) == end:
                result[ordered[lo]] = value
                lo += 1
            if children is None:
                continue
            while lo < hi:
                nibble = paths[lo][end]
                j = lo + 1
                if j < hi and paths[j][end] == nibble:
                    j = bisect_left(paths, paths[lo][:end] + _NEXT[nibble], j + 1, hi)
                child = children[_NIBBLE[nibble]]
                if child is not None:
                    stack.append((child, end + 1, lo, j))
                lo = j
        return result

    def iter_prefix(self, prefix: bytes, start_after: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) whose key starts with `prefix`, in key order, after `start_after`."""
        if self.root == EMPTY_ROOT:
            return
        want = prefix.hex()
        after = None if start_after is None else start_after.hex()
        # Entries: (slot, path of nibbles above the node, start_after bound still in force).
        stack: list[tuple[bytes, str, str | None]] = [(self.root, "", after)]
        while stack:
            node_hash, path, bound = stack.pop()
            partial, children, value = self.load_node(node_hash)
            full = path + partial
            common = min(len(full), len(want))
            if full[:common] != want[:common]:
                continue
            if bound is not None:
                head = bound[: len(full)]
                if full < head:
                    continue
                if full > head:
                    bound = None
            if value is not None and bound is None and len(full) >= len(want):
                yield _hex_to_key(full), value
            if children is not None:
                for i in range(15, -1, -1):
                    child = children[i]
                    if child is not None:
                        stack.append((child, full + _HEX[i], bound))

    def prove(self, keys: Iterable[bytes]) -> list[bytes]:
        """The encoded nodes that prove each key's value or absence against `root`, deduplicated."""
        proof: dict[bytes, bytes] = {}
        if self.root == EMPTY_ROOT:
            return []
        for key in keys:
            for node_hash, node in self._walk(key.hex()):
                if node_hash not in proof:
                    proof[node_hash] = encode_node(node)
        return list(proof.values())

    def _walk(self, path: str) -> Iterator[tuple[bytes, Node]]:
        node_hash: bytes | None = self.root
        depth = 0
        while node_hash is not None:
            node = self.load_node(node_hash)
            yield node_hash, node
            partial, children, _value = node
            if not path.startswith(partial, depth):
                return
            depth += len(partial)
            if depth == len(path) or children is None:
                return
            node_hash = children[_NIBBLE[path[depth]]]
            depth += 1

    # -- writing -----------------------------------------------------------------------------

    def apply(self, changes: Mapping[bytes, bytes | None]) -> tuple[bytes, dict[bytes, bytes]]:
        """Apply the changes (None deletes) and return (new_root, new_nodes); self is unchanged."""
        diff = self.update(changes)
        return diff.root, diff.new_nodes

    def update(self, changes: Mapping[bytes, bytes | None]) -> TrieDiff:
        """`apply`, also telling which old nodes the new trie no longer holds where they were."""
        if not changes:
            return TrieDiff(self.root, {}, [], [])
        keys, values = _sorted_changes(changes)
        return _Update(self, keys, values).run()


def _sorted_changes(changes: Mapping[bytes, bytes | None]) -> tuple[list[str], list[bytes | None]]:
    """The changes as parallel lists of hex keys and values, in key order; checks their types."""
    if not all(type(k) is bytes for k in changes):
        bad = next(k for k in changes if type(k) is not bytes)
        raise TypeError(f"trie keys are bytes, not {type(bad).__name__}")
    longest = max(map(len, changes))
    if longest > MAX_KEY_BYTES:
        raise ValueError(f"trie key of {longest} bytes exceeds the limit of {MAX_KEY_BYTES}")
    ordered = sorted(changes)
    values = [changes[k] for k in ordered]
    if not all(v is None or type(v) is bytes for v in values):
        values = [_check_value(v) for v in values]
    return [k.hex() for k in ordered], values


class _Update:
    """One batch update: rebuilds the dirty paths bottom-up, encoding each new node once.

    `update`/`fill` return a node tuple that is not yet committed (encoded and hashed): its
    partial key may still grow if its parent ends up with no value and this lone child. Once a
    branch is final its new children are committed, so each dirty node is encoded exactly once.
    """

    __slots__ = ("again", "cache", "decoded", "deletes_before", "keys", "load", "new_nodes", "removed", "trie",
                 "values")

    def __init__(self, trie: Trie, keys: list[str], values: list[bytes | None]) -> None:
        self.trie = trie
        self.keys = keys
        self.values = values
        self.new_nodes: dict[bytes, bytes] = {}
        self.decoded: dict[bytes, Node] = {}
        self.removed: list[bytes] = []
        self.again: list[bytes] = []
        # deletes_before[i]: how many of the changes before keys[i] are deletes.
        self.deletes_before = list(accumulate((v is None for v in values), initial=0))
        self.load = trie.load_node
        self.cache = trie._cache

    def run(self) -> TrieDiff:
        root = self.trie.root
        count = len(self.keys)
        if root == EMPTY_ROOT:
            new = self.build(0, 0, count)
            old = None
        else:
            old = self.load(root)
            new = self.update(old, 0, 0, count)
        if new is old:
            return TrieDiff(root, {}, [], [])
        if old is not None:
            self.removed.append(root)
        if new is None:
            return TrieDiff(EMPTY_ROOT, {}, self.removed, [])
        root = self.commit(new)
        self.cache_new_nodes()
        return TrieDiff(root, self.new_nodes, self.removed, self.again)

    def update(self, node: Node, depth: int, lo: int, hi: int) -> Node | None:
        """Apply keys[lo:hi] (all sharing the path above `node`) to the subtree at `node`."""
        partial, children, value = node
        keys = self.keys
        first = keys[lo]
        if first.startswith(partial, depth):
            if children is None and hi - lo == 1 and len(first) == depth + len(partial):
                value_now = self.values[lo]
                if value_now is None:
                    return None
                return node if value_now == value else (partial, None, value_now)
            if keys[hi - 1].startswith(partial, depth):
                return self.fill(node, partial, children, value, depth, lo, hi, None)
        # Some key leaves the node's partial key. Deleting an absent key changes nothing; any
        # insert splits the node where the first key leaves it.
        inside = self._range_with_prefix(first[:depth] + partial, lo, hi)
        if inside is not None:
            start, stop = inside
            if start == stop:
                return node
            return self.fill(node, partial, children, value, depth, start, stop, None)
        end = depth + len(partial)
        cut = min(
            _common_prefix_len(partial, first[depth:end]),
            _common_prefix_len(partial, keys[hi - 1][depth:end]),
        )
        slots: list = [None] * 16
        index = _NIBBLE[partial[cut]]
        slots[index] = (partial[cut + 1 :], children, value)
        return self.fill(None, partial[:cut], slots, None, depth, lo, hi, [index])

    def _range_with_prefix(self, prefix: str, lo: int, hi: int) -> tuple[int, int] | None:
        """The range of keys[lo:hi] under `prefix` if every key outside it is a delete, else None."""
        keys = self.keys
        start = bisect_left(keys, prefix, lo, hi)
        stop = bisect_left(keys, prefix + "~", start, hi)  # "~" sorts after every hex digit
        deletes = self.deletes_before
        if deletes[start] - deletes[lo] != start - lo or deletes[hi] - deletes[stop] != hi - stop:
            return None
        return start, stop

    def build(self, depth: int, lo: int, hi: int) -> Node | None:
        """A new subtree from keys[lo:hi] where there was nothing."""
        keys = self.keys
        if hi - lo == 1:
            value = self.values[lo]
            return None if value is None else (keys[lo][depth:], None, value)
        first = keys[lo]
        cut = _common_prefix_len(first[depth:], keys[hi - 1][depth:])
        return self.fill(None, first[depth : depth + cut], None, None, depth, lo, hi, None)

    def fill(
        self,
        original: Node | None,
        partial: str,
        children: tuple | list | None,
        value: bytes | None,
        depth: int,
        lo: int,
        hi: int,
        dirty: list[int] | None,
    ) -> Node | None:
        """Apply keys[lo:hi], which all start with `partial` at `depth`, below this node.

        `dirty` lists the child slots already holding uncommitted nodes.
        """
        keys = self.keys
        end = depth + len(partial)
        i = lo
        new_value = value
        changed = original is None
        if len(keys[i]) == end:
            new_value = self.values[i]
            changed = changed or new_value != value
            i += 1
        slots = children
        if i < hi:
            slots = [None] * 16 if children is None else list(children)
            if dirty is None:
                dirty = []
            # With no delete below, this node stays a branch: its new children are final.
            eager = self.deletes_before[hi] == self.deletes_before[lo]
            changed = self.fill_children(slots, end, i, hi, dirty, eager) or changed
        if not changed:
            return original
        if slots is None:
            return None if new_value is None else (partial, None, new_value)
        present = 16 - slots.count(None)
        if present == 0:
            return None if new_value is None else (partial, None, new_value)
        if present == 1 and new_value is None:
            return self.merge_lone_child(partial, slots)
        if dirty:
            self.commit_slots(cast(list, slots), dirty)  # dirty slots imply a fresh list
        return (partial, tuple(slots), new_value)

    def merge_lone_child(self, partial: str, slots: tuple | list) -> Node:
        """A branch left with one child and no value becomes that child, its key lengthened."""
        for index, slot in enumerate(slots):
            if slot is not None:
                if type(slot) is tuple:
                    child = slot
                else:
                    child = self.load(slot)
                    self.removed.append(slot)  # it moves up into this node, rewritten
                child_partial, grandchildren, child_value = child
                return (partial + _HEX[index] + child_partial, grandchildren, child_value)
        raise TrieError("a branch with one child has none")

    def fill_children(
        self, slots: list, end: int, i: int, hi: int, dirty: list[int], eager: bool
    ) -> bool:
        """Apply keys[i:hi] to the child slots, grouped by their nibble at `end`.

        Changed slots are committed at once if `eager`, else noted in `dirty`; returns whether
        any changed. The hot loop of `apply`: the common cases (a new leaf, a leaf's value
        replaced) are handled inline.
        """
        new_nodes = self.new_nodes
        decoded = self.decoded
        removed = self.removed
        touched = False
        keys = self.keys
        values = self.values
        cache_get = self.cache.get
        load = self.load
        child_depth = end + 1
        new: Node | None
        while i < hi:
            key = keys[i]
            nibble = key[end]
            j = i + 1
            if j < hi and keys[j][end] == nibble:
                j = bisect_left(keys, key[:end] + _NEXT[nibble], j + 1, hi)
            index = _NIBBLE[nibble]
            slot = slots[index]
            if slot is None:
                if j - i == 1:
                    value = values[i]
                    if value is None:
                        i = j
                        continue
                    new = (key[child_depth:], None, value)
                else:
                    new = self.build(child_depth, i, j)
                    if new is None:
                        i = j
                        continue
            else:
                if type(slot) is tuple:
                    old = slot
                else:
                    old = cache_get(slot) or load(slot)
                old_partial, old_children, old_value = old
                if (
                    j - i == 1
                    and old_children is None
                    and len(key) == child_depth + len(old_partial)
                    and key.startswith(old_partial, child_depth)
                ):
                    value = values[i]
                    if value == old_value:
                        i = j
                        continue
                    new = None if value is None else (old_partial, None, value)
                else:
                    if key.startswith(old_partial, child_depth) and keys[j - 1].startswith(
                        old_partial, child_depth
                    ):
                        new = self.fill(
                            old, old_partial, old_children, old_value, child_depth, i, j, None
                        )
                    else:
                        new = self.update(old, child_depth, i, j)
                    if new is old:
                        i = j
                        continue
                if type(slot) is not tuple:
                    removed.append(slot)
            if eager and new is not None:
                data = encode_node(new)
                node_hash = _blake2b(data, digest_size=32).digest()
                if node_hash in new_nodes:
                    self.again.append(node_hash)
                new_nodes[node_hash] = data
                decoded[node_hash] = new
                slots[index] = node_hash
            else:
                slots[index] = new
                dirty.append(index)
            touched = True
            i = j
        return touched

    def commit_slots(self, slots: list, dirty: list[int]) -> None:
        """Commit the uncommitted nodes in a final branch's dirty slots, replacing them by hashes."""
        commit = self.commit
        for index in dirty:
            node = slots[index]
            if type(node) is tuple:
                slots[index] = commit(node)

    def commit(self, node: Node) -> bytes:
        """Encode and hash a final node, whose children are all hashes; return its hash."""
        data = encode_node(node)
        node_hash = _blake2b(data, digest_size=32).digest()
        if node_hash in self.new_nodes:
            self.again.append(node_hash)
        self.new_nodes[node_hash] = data
        self.decoded[node_hash] = node
        return node_hash

    def cache_new_nodes(self) -> None:
        """Keep the new nodes decoded: the next block reads what this one wrote."""
        self.cache.put_many(self.decoded, sum(map(len, self.new_nodes.values())))


def _hex_to_key(path: str) -> bytes:
    if len(path) & 1:
        raise TrieError("a value sits at an odd number of nibbles: the trie is corrupt")
    return bytes.fromhex(path)


def verify_proof(root: bytes, key: bytes, proof: Sequence[bytes]) -> bytes | None:
    """The value of `key` under `root` if present, None if proven absent; ProofError otherwise."""
    if not isinstance(root, bytes) or len(root) != HASH_LEN:
        raise ProofError("a state root is a 32-byte hash")
    if root == EMPTY_ROOT:
        return None
    nodes: dict[bytes, bytes] = {}
    for data in proof:
        if not isinstance(data, (bytes, bytearray)):
            raise ProofError("proof nodes are bytes")
        nodes[_hash(bytes(data))] = bytes(data)
    path = key.hex()
    node_hash: bytes | None = root
    depth = 0
    while node_hash is not None:
        encoded = nodes.get(node_hash)
        if encoded is None:
            raise ProofError(f"proof lacks trie node {node_hash.hex()}")
        try:
            partial, children, value = decode_node(encoded)
        except TrieError as exc:
            raise ProofError(f"proof holds a malformed node: {exc}") from exc
        if not path.startswith(partial, depth):
            return None
        depth += len(partial)
        if depth == len(path):
            return value
        if children is None:
            return None
        node_hash = children[_NIBBLE[path[depth]]]
        depth += 1
    return None
