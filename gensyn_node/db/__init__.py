"""The chain and state database: one key-value interface (LevelDB, or memory for unit tests), the
one table of key prefixes, and the glue that stores trie nodes in a block's atomic batch."""

from gensyn_node.db.kv import (
    KVStore,
    LevelKV,
    MemoryKV,
    StoreClosedError,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    open_kv,
)

__all__ = [
    "KVStore",
    "LevelKV",
    "MemoryKV",
    "StoreClosedError",
    "StoreCorruptError",
    "StoreError",
    "StoreLockedError",
    "open_kv",
]
