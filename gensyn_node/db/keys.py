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
| trie node reference counts | b"r" ++ node hash                      | u32 big-endian, only when > 1   |
| state journals             | b"s" ++ u64 number ++ block hash       | nodes a block inserted, removed |
| unfinalized blocks         | b"u" ++ u64 number ++ block hash       | empty                           |
| checkpoint blobs           | b"c" ++ blob hash                      | checkpoint bytes                |
| checkpoint blob records    | b"i" ++ blob hash                      | [size, stored at (ms)]          |
| checkpoints of a job       | b"q" ++ job id ++ blob hash            | [checkpoint index or nil]       |
| jobs of a checkpoint       | b"o" ++ blob hash ++ job id            | empty                           |
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
TRIE_REFCOUNT = b"r"
STATE_JOURNAL = b"s"
UNFINALIZED = b"u"
CHECKPOINT = b"c"
CHECKPOINT_INFO = b"i"
CHECKPOINT_JOB = b"q"
CHECKPOINT_OWNER = b"o"
SIGNING_STATE = b"v"
META = b"meta:"

META_BEST = META + b"best"
META_FINALIZED = META + b"finalized"
META_GENESIS = META + b"genesis"
META_LEAVES = META + b"leaves"  # canonical list of the hashes of blocks without children, in order seen
META_STATE_PRUNING = META + b"state_pruning"
META_BLOCKS_PRUNING = META + b"blocks_pruning"
META_STATE_PRUNED = META + b"state_pruned"  # u64: the oldest canonical block whose state is kept
META_BODIES_PRUNED = META + b"bodies_pruned"  # u64: the newest canonical block whose body is gone

# Every table's prefix; none may be a prefix of another (tests hold this).
ALL_PREFIXES = {
    "header": HEADER,
    "body": BODY,
    "number": NUMBER,
    "justification": JUSTIFICATION,
    "trie_node": TRIE_NODE,
    "trie_refcount": TRIE_REFCOUNT,
    "state_journal": STATE_JOURNAL,
    "unfinalized": UNFINALIZED,
    "checkpoint": CHECKPOINT,
    "checkpoint_info": CHECKPOINT_INFO,
    "checkpoint_job": CHECKPOINT_JOB,
    "checkpoint_owner": CHECKPOINT_OWNER,
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


def trie_refcount_key(node_hash: bytes) -> bytes:
    return TRIE_REFCOUNT + _hash_id("trie node hash", node_hash)


def _numbered(prefix: bytes, number: int, block_hash: bytes) -> bytes:
    return number_key(number).replace(NUMBER, prefix, 1) + _hash_id("block hash", block_hash)


def state_journal_key(number: int, block_hash: bytes) -> bytes:
    return _numbered(STATE_JOURNAL, number, block_hash)


def unfinalized_key(number: int, block_hash: bytes) -> bytes:
    return _numbered(UNFINALIZED, number, block_hash)


def split_numbered_key(key: bytes) -> tuple[int, bytes]:
    """(number, block hash) of a `state_journal_key` or an `unfinalized_key`."""
    if len(key) != 1 + 8 + HASH_LEN:
        raise InvalidKeyError("not a numbered block key")
    return int.from_bytes(key[1:9], "big"), key[9:]


def checkpoint_key(blob_hash: bytes) -> bytes:
    return CHECKPOINT + _hash_id("checkpoint hash", blob_hash)


def checkpoint_info_key(blob_hash: bytes) -> bytes:
    return CHECKPOINT_INFO + _hash_id("checkpoint hash", blob_hash)


def checkpoint_job_key(job_id: bytes, blob_hash: bytes) -> bytes:
    """A job's reference to one of its checkpoints; a prefix scan over the job id lists them."""
    return CHECKPOINT_JOB + _hash_id("job id", job_id) + _hash_id("checkpoint hash", blob_hash)


def checkpoint_owner_key(blob_hash: bytes, job_id: bytes) -> bytes:
    """The reverse reference: a prefix scan over the blob hash lists the jobs that hold it."""
    return CHECKPOINT_OWNER + _hash_id("checkpoint hash", blob_hash) + _hash_id("job id", job_id)


def signing_state_key(public_key: bytes) -> bytes:
    if type(public_key) is not bytes or not 1 <= len(public_key) <= 64:
        raise InvalidKeyError("a validator key is 1 to 64 bytes")
    return SIGNING_STATE + public_key


def meta_key(name: str) -> bytes:
    """A meta pointer by name; the node's own are META_BEST, META_FINALIZED and META_GENESIS."""
    if not name or not name.isascii() or ":" in name:
        raise InvalidKeyError(f"a meta pointer name is plain ascii, not {name!r}")
    return META + name.encode()
