"""Every LevelDB key of the node, in one place: one short prefix per table, then the record's id.

Data path step: block import and every reader (RPC, sync, finality, ML checkpoints) build their
keys here, so that no two tables can collide and a prefix scan never crosses into another table.

| table                      | key                                    | value                           |
|----------------------------|----------------------------------------|---------------------------------|
| headers                    | b"h" ++ block hash                     | encoded header                  |
| bodies                     | b"b" ++ block hash                     | encoded list of extrinsics      |
| canonical number -> hash   | b"n" ++ u64 big-endian block number    | block hash                      |
| justifications             | b"j" ++ block hash                     | encoded justification           |
| state trie nodes           | b"t" ++ node hash                      | encoded trie node               |
| checkpoint blobs           | b"c" ++ blob hash                      | checkpoint bytes                |
| validator signing state    | b"v" ++ public key                     | what that key last signed       |
| meta pointers              | b"meta:" ++ name                       | block hash (best, finalized...) |

The big-endian number keeps the canonical index in block order for prefix scans.
"""

from __future__ import annotations

HASH_LEN = 32
MAX_BLOCK_NUMBER = 2**64 - 1

HEADER = b"h"
BODY = b"b"
NUMBER = b"n"
JUSTIFICATION = b"j"
TRIE_NODE = b"t"
CHECKPOINT = b"c"
SIGNING_STATE = b"v"
META = b"meta:"

META_BEST = META + b"best"
META_FINALIZED = META + b"finalized"
META_GENESIS = META + b"genesis"
META_LEAVES = META + b"leaves"  # canonical list of the hashes of blocks without children, in order seen

# Every table's prefix; none may be a prefix of another (tests hold this).
ALL_PREFIXES = {
    "header": HEADER,
    "body": BODY,
    "number": NUMBER,
    "justification": JUSTIFICATION,
    "trie_node": TRIE_NODE,
    "checkpoint": CHECKPOINT,
    "signing_state": SIGNING_STATE,
    "meta": META,
}


class InvalidKeyError(ValueError):
    """An id that cannot form a database key (wrong length, out of range)."""


def _hash_id(what: str, value: bytes) -> bytes:
    if type(value) is not bytes or len(value) != HASH_LEN:
        raise InvalidKeyError(f"a {what} is a {HASH_LEN}-byte hash")
    return value


def header_key(block_hash: bytes) -> bytes:
    return HEADER + _hash_id("block hash", block_hash)


def body_key(block_hash: bytes) -> bytes:
    return BODY + _hash_id("block hash", block_hash)


def justification_key(block_hash: bytes) -> bytes:
    return JUSTIFICATION + _hash_id("block hash", block_hash)


def number_key(number: int) -> bytes:
    if type(number) is not int or not 0 <= number <= MAX_BLOCK_NUMBER:
        raise InvalidKeyError(f"a block number is an integer in [0, 2^64), not {number!r}")
    return NUMBER + number.to_bytes(8, "big")


def number_from_key(key: bytes) -> int:
    """The block number of a `number_key`."""
    if len(key) != len(NUMBER) + 8 or not key.startswith(NUMBER):
        raise InvalidKeyError("not a block number key")
    return int.from_bytes(key[len(NUMBER) :], "big")


def trie_node_key(node_hash: bytes) -> bytes:
    return TRIE_NODE + _hash_id("trie node hash", node_hash)


def checkpoint_key(blob_hash: bytes) -> bytes:
    return CHECKPOINT + _hash_id("checkpoint hash", blob_hash)


def signing_state_key(public_key: bytes) -> bytes:
    if type(public_key) is not bytes or not 1 <= len(public_key) <= 64:
        raise InvalidKeyError("a validator key is 1 to 64 bytes")
    return SIGNING_STATE + public_key


def meta_key(name: str) -> bytes:
    """A meta pointer by name; the node's own are META_BEST, META_FINALIZED and META_GENESIS."""
    if not name or not name.isascii() or ":" in name:
        raise InvalidKeyError(f"a meta pointer name is plain ascii, not {name!r}")
    return META + name.encode()
