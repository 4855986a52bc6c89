"""Types, statuses and pure helpers of the tx pool (see `gensyn_node.txpool`)."""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeAlias

from runtime.transaction_validity import InvalidTransaction, ValidTransaction

BlockRef: TypeAlias = Any  # opaque to the pool: the node passes the best block hash
ValidateFn: TypeAlias = Callable[[bytes, BlockRef], ValidTransaction]
HashFn: TypeAlias = Callable[[bytes], bytes]
EventDetail: TypeAlias = bytes | str | None
EventCallback: TypeAlias = Callable[[bytes, str, EventDetail], None]
Event: TypeAlias = tuple[bytes, str, EventDetail]

READY = "ready"
FUTURE = "future"
USURPED = "usurped"
DROPPED = "dropped"
INVALID = "invalid"

# The ban list is bounded so that a flood of distinct invalid transactions cannot grow it
# forever (Substrate's PoolRotator does the same); the oldest bans go first.
MAX_BANNED = 65_536
# Lazy-deletion heaps are rebuilt when stale entries outnumber live ones by this much.
HEAP_SLACK = 64


@dataclass(frozen=True, slots=True)
class PoolTx:
    """A validated transaction in the pool."""

    hash: bytes
    data: bytes
    valid: ValidTransaction
    inserted_at: int  # insertion sequence: older first among equal priorities
    valid_till: int  # last block number at which it may still be included


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What a block import did to the pool."""

    in_block: tuple[bytes, ...]  # pooled transactions that the block included
    dropped: tuple[tuple[bytes, str], ...]  # (hash, reason): invalid now, expired or usurped
    promoted: tuple[bytes, ...]  # future before the block, ready after it


def compute_normalized_validity(valid: ValidTransaction) -> ValidTransaction:
    """Drop repeated tags, so that a tag counts once when dependencies are counted."""
    requires, provides = valid.requires, valid.provides
    if len(set(requires)) == len(requires) and len(set(provides)) == len(provides):
        return valid
    return dataclasses.replace(
        valid, requires=tuple(dict.fromkeys(requires)), provides=tuple(dict.fromkeys(provides))
    )


def validate_provides_tags(valid: ValidTransaction) -> None:
    """Verify that the transaction provides a tag: one that provides none cannot be ordered."""
    if not valid.provides:
        raise InvalidTransaction("Custom", "the transaction provides no tags")


def describe_removal(status: str, detail: EventDetail) -> str:
    if status == USURPED and isinstance(detail, bytes):
        return f"usurped by 0x{detail.hex()}"
    return str(detail)


def iter_heap_sorted(heap: list[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """Yield a binary heap's entries in order without changing it (best-first over its tree)."""
    if not heap:
        return
    frontier = [(heap[0], 0)]
    size = len(heap)
    while frontier:
        entry, index = heapq.heappop(frontier)
        yield entry
        for child in (2 * index + 1, 2 * index + 2):
            if child < size:
                heapq.heappush(frontier, (heap[child], child))
