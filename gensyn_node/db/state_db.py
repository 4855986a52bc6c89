"""State pruning: which trie nodes a pruned store keeps, by reference counts and per-block journals
(the scheme of Substrate's state-db, on content-addressed nodes).

Data path step: `commit_block` adds a block's new nodes and its journal to the block's own atomic
batch; `set_finalized` (and the store's opening, after a crash) then folds the journals of the
blocks that leave the window and discards the forks that finality ruled out, each step one more
atomic batch. Every step is a function of what is on disk, so a kill between two steps loses
nothing: the next opening does the rest.

A node can sit at several positions of one trie, and the same node can come back in a later
block, so a node's count is kept per position:

    rc(h) = positions of h in the base state (the oldest kept canonical state)
          + for each block after the base not yet folded or discarded, the positions it inserted h

Every kept state is the base state plus a path of such blocks, each of which only inserts what
it counts and removes what it held, so every node of a kept state has rc >= 1. Folding the
block after the base (when the base leaves the window) subtracts what that block removed; it
becomes the base. Discarding a fork block subtracts what it inserted. A node is deleted when its
count reaches 0, in the same batch. Nothing is leaked for ever: once every block is folded or
discarded, rc(h) is exactly h's positions in the base state.

On disk: a node's count is b"r" ++ hash (u32) only when it is above 1 (a present node without
one counts 1), so the common node costs no second key and, with `NodeCounts` in memory, no read; a block's journal is b"s" ++ number ++
hash (the nodes it inserted, again and removed); every block not yet finalized has an empty
b"u" ++ number ++ hash, so finality finds the forks without reading journals.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from gensyn_node.db import keys
from gensyn_node.db.kv import KVStore
from runtime.codec import canonical
from runtime.codec.errors import CodecError
from runtime.trie import EMPTY_ROOT, decode_node

log = logging.getLogger(__name__)
HASH_LEN = 32
MAX_JOURNAL_BYTES = 64 * 1024 * 1024


class StateDbError(Exception):
    """The reference counts or journals on disk contradict each other (a corrupt store)."""


@dataclass(frozen=True, slots=True)
class StateJournal:
    """What one block did to the set of trie nodes (each hash once per position)."""

    inserted: tuple[bytes, ...]  # its new nodes, once each
    inserted_again: tuple[bytes, ...]  # new nodes it put at one more position, once per position
    removed: tuple[bytes, ...]  # nodes of its parent's state at the positions it rewrote

    def encode(self) -> bytes:
        return canonical.encode([b"".join(self.inserted), b"".join(self.inserted_again), b"".join(self.removed)])

    @classmethod
    def decode(cls, data: bytes) -> StateJournal:
        try:
            fields = canonical.decode(data, max_bytes=MAX_JOURNAL_BYTES)
        except CodecError as exc:
            raise StateDbError(f"a state journal does not decode: {exc}") from None
        if not (isinstance(fields, list) and len(fields) == 3
                and all(isinstance(f, bytes) and len(f) % HASH_LEN == 0 for f in fields)):
            raise StateDbError("a state journal is not three lists of 32-byte hashes")
        return cls(*(_split(f) for f in fields))


def _split(blob: bytes) -> tuple[bytes, ...]:
    return tuple(blob[i:i + HASH_LEN] for i in range(0, len(blob), HASH_LEN))


def _encode_rc(count: int) -> bytes:
    return count.to_bytes(4, "big")


class NodeCounts:
    """What resolving counts needs, in memory, so that the hot path reads nothing from the store:
    every count above 1 (a mirror of the b"r" table, which stays small: nodes at two positions,
    nodes a block brought back), and a Bloom filter of the nodes the store may hold, so that a
    new node is known new without a read (a LevelDB read that misses costs ~8 us here under
    load; 5,000 new nodes a block would cost 40 ms).

    Both are built from the store on first use, and the filter again once it has taken as many
    nodes as it was sized for (deleted nodes stay in it as stale bits until then).
    """

    BITS_PER_NODE = 16  # with 3 probes: about 0.5% false positives at capacity

    def __init__(self, kv: KVStore) -> None:
        self.kv = kv
        self.multi: dict[bytes, int] = {}
        self._bits: np.ndarray | None = None
        self._mask = 0
        self._room = 0  # nodes the filter takes before it is rebuilt

    def load(self) -> None:
        if self._bits is not None:
            return
        rc_prefix = len(keys.TRIE_REFCOUNT)
        self.multi = {k[rc_prefix:]: int.from_bytes(v, "big") for k, v in self.kv.iterate(keys.TRIE_REFCOUNT)}
        node_prefix = len(keys.TRIE_NODE)
        # Each node's first 12 bytes, packed in one buffer: no object per node survives the scan.
        packed = bytearray()
        for key in self.kv.iterate_keys(keys.TRIE_NODE):
            packed += key[node_prefix:node_prefix + 12]
        probes = _probes_of_packed(bytes(packed))
        del packed
        count = len(probes)
        capacity = max(2 * count, 1 << 18)
        size = min(1 << (capacity * self.BITS_PER_NODE - 1).bit_length(), 1 << 32)  # probes are u32
        self._bits = np.zeros(size >> 3, dtype=np.uint8)
        self._mask = size - 1
        self._room = capacity - count
        self._set(probes)
        log.debug("node filter built nodes=%d bytes=%d multi=%d", count, size >> 3, len(self.multi))

    def _set(self, probes: np.ndarray) -> None:
        assert self._bits is not None
        index = probes & self._mask
        np.bitwise_or.at(self._bits, index >> 3, (1 << (index & 7)).astype(np.uint8))

    def may_hold(self, hashes: list[bytes]) -> np.ndarray:
        """For each hash, False when the store certainly lacks that node."""
        assert self._bits is not None
        index = _probes_of(hashes) & self._mask
        return ((self._bits[index >> 3] >> (index & 7)) & 1).all(axis=1)  # type: ignore[no-any-return]

    def note_written(self, hashes: list[bytes]) -> None:
        if self._bits is None or not hashes:
            return
        self._set(_probes_of(hashes))
        self._room -= len(hashes)
        if self._room < 0:
            self._bits = None  # rebuilt from the store before its next use


def _probes_of(hashes: list[bytes]) -> np.ndarray:
    """Three 32-bit probes from each hash's first 12 bytes (node hashes are uniform already)."""
    return _probes_of_packed(b"".join(h[:12] for h in hashes))


def _probes_of_packed(data: bytes) -> np.ndarray:
    # uint32 throughout: the filter has at most 2**32 bits, so the masked probes fit.
    return np.frombuffer(data, dtype="<u4").reshape(-1, 3)


class Batch:
    """The puts and deletes of one atomic write, with the count changes still to resolve (puts
    and deletes stay disjoint: putting a key cancels its delete and the other way round)."""

    def __init__(self, kv: KVStore, counts: NodeCounts | None = None) -> None:
        self.kv = kv
        self.counts = counts
        self.puts: dict[bytes, bytes] = {}
        self.deletes: set[bytes] = set()
        self._added: dict[bytes, bytes] = {}
        self._again: list[bytes] = []
        self._dropped: list[bytes] = []
        self._multi_after: dict[bytes, int] = {}
        self._written_nodes: list[bytes] = []

    @property
    def is_empty(self) -> bool:
        return not (self.puts or self.deletes or self._added or self._again or self._dropped)

    def put(self, key: bytes, value: bytes) -> None:
        self.puts[key] = value
        self.deletes.discard(key)

    def delete(self, key: bytes) -> None:
        self.puts.pop(key, None)
        self.deletes.add(key)

    def add_nodes(self, nodes: Mapping[bytes, bytes], again: Iterable[bytes] = ()) -> None:
        """Count one more position for each node (and for each entry of `again`)."""
        self._added.update(nodes)
        self._again.extend(again)

    def drop_nodes(self, hashes: Iterable[bytes]) -> None:
        """Count one position less for each entry."""
        self._dropped.extend(hashes)

    def resolve(self) -> None:
        """Turn the count changes into puts and deletes of nodes and counts."""
        added, again, dropped = self._added, self._again, self._dropped
        if not (added or again or dropped):
            return
        if self.counts is None:
            raise StateDbError("counting trie nodes needs the store's NodeCounts")
        counts = self.counts
        counts.load()
        multi = counts.multi
        prefix = keys.TRIE_NODE
        deltas: Counter[bytes] = Counter()
        if added and dropped:
            deltas.update(added.keys())
        elif added:
            # The common node: new to the store, at one position. Anything else is counted.
            hashes = list(added)
            maybe = counts.may_hold(hashes)
            irregular = {hashes[i] for i in np.flatnonzero(maybe)} | set(again) | (multi.keys() & added.keys())
            self.puts.update({prefix + h: d for h, d in added.items() if h not in irregular})
            self._written_nodes.extend(h for h in hashes if h not in irregular)
            deltas.update(h for h in irregular if h in added)
        deltas.update(again)
        if dropped:
            removed = Counter(dropped)
            if not added:
                # The common node: at one position, gone now.
                self.deletes.update([prefix + h for h, n in removed.items() if n == 1 and h not in multi])
                removed = Counter({h: n for h, n in removed.items() if n > 1 or h in multi})
            deltas.subtract(removed)
        for node_hash, delta in deltas.items():
            if delta:
                self._resolve_one(node_hash, delta)
        added.clear()
        again.clear()
        dropped.clear()

    def _resolve_one(self, node_hash: bytes, delta: int) -> None:
        assert self.counts is not None
        multi = self.counts.multi
        node_key, rc_key = keys.TRIE_NODE + node_hash, keys.TRIE_REFCOUNT + node_hash
        current = multi.get(node_hash)
        if current is None:
            current = 1 if delta < 0 or self.kv.get(node_key) is not None else 0
        count = current + delta
        if count < 0:
            raise StateDbError(f"trie node {node_hash.hex()} would be referenced {count} times")
        if count == 0:
            self.delete(node_key)
        elif current == 0:
            data = self._added.get(node_hash)
            if data is None:
                raise StateDbError(f"trie node {node_hash.hex()} is counted but missing")
            self.put(node_key, data)
            self._written_nodes.append(node_hash)
        if count >= 2:
            self.put(rc_key, _encode_rc(count))
        elif current >= 2:
            self.delete(rc_key)
        if (count >= 2) != (current >= 2) or count >= 2:
            self._multi_after[node_hash] = count

    def write(self) -> None:
        """Resolve and write atomically; the in-memory counts follow only a write that succeeded."""
        self.resolve()
        self.kv.write(self.puts, self.deletes)
        if self.counts is not None:
            multi = self.counts.multi
            for node_hash, count in self._multi_after.items():
                if count >= 2:
                    multi[node_hash] = count
                else:
                    multi.pop(node_hash, None)
            self.counts.note_written(self._written_nodes)


def count_extra_positions(root: bytes, nodes: Mapping[bytes, bytes]) -> list[bytes]:
    """For a whole trie given as its nodes (genesis): each node once per position beyond its
    first, so that `add_nodes(nodes, again=...)` counts every position."""
    if root == EMPTY_ROOT:
        return []
    children: dict[bytes, list[bytes]] = {}
    refs: Counter[bytes] = Counter()
    for node_hash, data in nodes.items():
        _partial, slots, _value = decode_node(data)
        kids = [c for c in slots or () if c is not None]
        children[node_hash] = kids
        refs.update(kids)
    if all(n == 1 for n in refs.values()):
        return []  # a tree: every node at one position
    # Positions flow from parents to children in topological order (Kahn's algorithm).
    positions: Counter[bytes] = Counter({root: 1})
    waiting = Counter(refs)
    ready = [root]
    while ready:
        node_hash = ready.pop()
        for child in children.get(node_hash, ()):
            positions[child] += positions[node_hash]
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    return [h for h, n in positions.items() for _ in range(n - 1)]
