"""State trie nodes: their canonical encoding, strict decoding, and the shared cache of decoded
nodes (runtime/trie.py builds and walks the trie from them).

Nodes are identified by blake2b-256 of their canonical encoding; the empty trie's root is the hash
of the one-byte empty node. Inside this module a key is its hex string: one character per nibble,
which is both the fastest nibble representation in Python and sorts like the bytes.

Encoding (big-endian, every field fixed by the node, so one node has exactly one encoding):

    empty          0x00
    leaf           0x01 | nibble count (u16) | nibbles packed, odd count padded with a 0 nibble | value
    branch         0x02 | nibble count (u16) | packed nibbles | child bitmap (u16) | 32-byte hashes
    branch+value   0x03 | ... as branch ...                                          | value

Bit i of the bitmap is child nibble i. A branch without a value has at least two children and a
branch with a value at least one (anything else is a leaf or merges with its child): decoding
rejects other shapes, so a set of keys has exactly one trie and one root.

Pure: no I/O, no clock, no threads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from itertools import compress

EMPTY_NODE = b"\x00"
EMPTY_ROOT = hashlib.blake2b(EMPTY_NODE, digest_size=32).digest()
MAX_KEY_BYTES = 4096
HASH_LEN = 32

_LEAF = 0x01
_BRANCH = 0x02
_BRANCH_VALUE = 0x03
_HEX = "0123456789abcdef"
_NIBBLE = {c: i for i, c in enumerate(_HEX)}
# The character sorting right after each nibble: `prefix + _NEXT[c]` bounds the keys under c.
_NEXT = {c: chr(ord(c) + 1) for c in _HEX}
_BIT = tuple(1 << i for i in range(16))
_blake2b = hashlib.blake2b
_U16 = tuple(n.to_bytes(2, "big") for n in range(2 * MAX_KEY_BYTES + 1))
# The child slots present in each branch bitmap met so far (at most 65,536 of them).
_PRESENT: dict[int, tuple[int, ...]] = {}

# A decoded node is (partial, children, value): children is None for a leaf, else 16 slots each
# holding a child hash or None. While `apply` runs, a slot may also hold an uncommitted node tuple.
Node = tuple[str, tuple | list | None, bytes | None]


class TrieError(Exception):
    """A trie node is missing from the store or does not decode."""


class ProofError(Exception):
    """A proof does not prove a key's value or absence against the given root."""


class NodeCache:
    """A bounded cache of decoded nodes by hash, shared by every Trie over the same store.

    Approximately least-recently-used, with two generations of plain dicts (much cheaper than
    an OrderedDict on the hot path): new and recently read nodes go to the young generation;
    when it holds half the capacity it becomes the old one and the previous old one is dropped.
    A node read from the old generation moves back to the young one.

    The bound is `capacity` nodes, or `max_bytes` of memory: then the capacity in nodes follows
    the nodes' measured size (a decoded node takes about 3.5 times its encoding plus ~100 bytes
    of dict and hash; a leaf ~0.45 KB, a full branch ~1.4 KB), re-estimated at each rotation, so
    the hot path never weighs a node.
    """

    BYTES_PER_ENCODED_BYTE = 3.5
    BYTES_PER_ENTRY = 100

    def __init__(self, capacity: int = 200_000, max_bytes: int | None = None) -> None:
        if capacity < 1 or (max_bytes is not None and max_bytes < 1):
            raise ValueError("a node cache needs a capacity of at least 1")
        self.max_bytes = max_bytes
        self.capacity = capacity if max_bytes is None else max(max_bytes // 600, 2)
        self._half = max(self.capacity // 2, 1)
        self._young: dict[bytes, Node] = {}
        self._old: dict[bytes, Node] = {}
        self._sampled_nodes = 0
        self._sampled_bytes = 0

    def get(self, node_hash: bytes) -> Node | None:
        node = self._young.get(node_hash)
        if node is None:
            node = self._old.get(node_hash)
            if node is not None:
                self.put(node_hash, node)
        return node

    def put(self, node_hash: bytes, node: Node, encoded_bytes: int = 0) -> None:
        young = self._young
        young[node_hash] = node
        if encoded_bytes:
            self._sampled_nodes += 1
            self._sampled_bytes += encoded_bytes
        if len(young) >= self._half:
            self._rotate()

    def put_many(self, nodes: Mapping[bytes, Node], encoded_bytes: int = 0) -> None:
        """Add decoded nodes; `encoded_bytes`, their encodings' total size, when known."""
        self._young.update(nodes)
        if encoded_bytes:
            self._sampled_nodes += len(nodes)
            self._sampled_bytes += encoded_bytes
        if len(self._young) >= self._half:
            self._rotate()

    def _rotate(self) -> None:
        self._old = self._young
        self._young = {}
        if self.max_bytes is not None and self._sampled_nodes:
            per_node = self.BYTES_PER_ENCODED_BYTE * self._sampled_bytes / self._sampled_nodes + self.BYTES_PER_ENTRY
            self.capacity = max(int(self.max_bytes / per_node), 2)
            self._half = max(self.capacity // 2, 1)
            self._sampled_nodes = self._sampled_bytes = 0

    def clear(self) -> None:
        self._young = {}
        self._old = {}

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    def __contains__(self, node_hash: object) -> bool:
        return node_hash in self._young or node_hash in self._old


def encode_node(node: Node) -> bytes:
    """The canonical encoding of a committed node (children are hashes or None)."""
    partial, children, value = node
    count = len(partial)
    packed = bytes.fromhex(partial + "0" if count & 1 else partial)
    if children is None:
        if value is None:
            raise TrieError("a leaf without a value has no encoding")
        return b"".join((b"\x01", _U16[count], packed, value))
    parts = [
        b"\x02" if value is None else b"\x03",
        _U16[count],
        packed,
        sum(compress(_BIT, children)).to_bytes(2, "big"),  # bit i set where child i is present
        b"".join(filter(None, children)),
    ]
    if value is not None:
        parts.append(value)
    return b"".join(parts)


def decode_node(data: bytes) -> Node:
    """Strictly decode a stored non-empty node; raises TrieError on anything non-canonical."""
    if type(data) is not bytes:
        data = bytes(data)
    size = len(data)
    if size < 3:
        raise TrieError(f"trie node of {size} bytes is truncated")
    kind = data[0]
    if kind not in (_LEAF, _BRANCH, _BRANCH_VALUE):
        raise TrieError(f"trie node has unknown kind {kind}")
    count = (data[1] << 8) | data[2]
    end = 3 + ((count + 1) >> 1)
    if end > size:
        raise TrieError("trie node's partial key is truncated")
    partial = data[3:end].hex()
    if count & 1:
        if partial[-1] != "0":
            raise TrieError("trie node's partial key has a non-zero padding nibble")
        partial = partial[:-1]
    if kind == _LEAF:
        return (partial, None, data[end:])
    return _decode_branch(data, kind, partial, end)


def _decode_branch(data: bytes, kind: int, partial: str, start: int) -> Node:
    size = len(data)
    if start + 2 > size:
        raise TrieError("trie branch's bitmap is truncated")
    bitmap = (data[start] << 8) | data[start + 1]
    present = _PRESENT.get(bitmap)
    if present is None:
        present = _PRESENT[bitmap] = tuple(i for i in range(16) if bitmap & _BIT[i])
    pos = start + 2
    end = pos + HASH_LEN * len(present)
    if end > size:
        raise TrieError("trie branch's child hashes are truncated")
    children: list[bytes | None] = [None] * 16
    for i in present:
        children[i] = data[pos:pos + HASH_LEN]
        pos += HASH_LEN
    if kind == _BRANCH:
        if end != size:
            raise TrieError(f"trie branch has {size - end} trailing bytes")
        if len(present) < 2:
            raise TrieError("trie branch without a value must have at least two children")
        return (partial, tuple(children), None)
    if not present:
        raise TrieError("trie branch with a value must have a child")
    return (partial, tuple(children), data[end:])


def _hash(data: bytes) -> bytes:
    return _blake2b(data, digest_size=32).digest()


def _common_prefix_len(a: str, b: str) -> int:
    """Length of the common prefix of two nibble strings."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _check_value(value: bytes | None) -> bytes | None:
    if value is None or type(value) is bytes:
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"trie values are bytes or None, not {type(value).__name__}")
