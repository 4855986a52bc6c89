"""Best-first iteration over the ready queue: what the block author takes, in that order."""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping

from gensyn_node.txpool.base import PoolTx


class ReadyIterator(Iterator[PoolTx]):
    """Ready transactions best first, each after all that provide its required tags.

    Substrate's BestIterator: among the available transactions the highest priority comes first,
    then the oldest. The author may, before asking for the next one, `skip(hash)` the
    transaction just yielded (not included: too big, exhausts the block) so that its dependants
    are not offered, or call `TxPool.report_invalid(hash, error)`, which does the same and also
    removes and bans it. Transactions that leave the pool meanwhile are not yielded; it reads
    the pool live, so it is not meant to outlive a block import.
    """

    __slots__ = ("_heap", "_last", "_ready", "_required_by", "_waiting", "_yielded")

    def __init__(self, ready: Mapping[bytes, PoolTx], required_by: Mapping[bytes, set[bytes]]):
        self._ready = ready  # the pool's own ready map and tag -> dependants index, read live
        self._required_by = required_by
        self._heap = [
            (-tx.valid.priority, tx.inserted_at, tx.hash) for tx in ready.values() if not tx.valid.requires
        ]
        heapq.heapify(self._heap)
        self._waiting: dict[bytes, int] = {}  # dependant -> required tags not yet yielded
        self._yielded: set[bytes] = set()
        self._last: PoolTx | None = None

    def __iter__(self) -> ReadyIterator:
        return self

    def __next__(self) -> PoolTx:
        if self._last is not None:
            self._unlock_dependants(self._last)
            self._last = None
        while self._heap:
            tx_hash = heapq.heappop(self._heap)[2]
            tx = self._ready.get(tx_hash)
            if tx is None or tx_hash in self._yielded:
                continue
            self._yielded.add(tx_hash)
            self._last = tx
            return tx
        raise StopIteration

    def skip(self, tx_hash: bytes) -> None:
        """Do not offer the dependants of the transaction just yielded."""
        if self._last is not None and self._last.hash == tx_hash:
            self._last = None

    def _unlock_dependants(self, tx: PoolTx) -> None:
        # Unlocking waits for the next call, so that a transaction the author reported invalid
        # (gone from the pool by then) releases nothing.
        required_by = self._required_by
        if not required_by or self._ready.get(tx.hash) is not tx:
            return
        for tag in tx.valid.provides:
            for dep_hash in required_by.get(tag, ()):
                dep = self._ready.get(dep_hash)
                if dep is None:
                    continue
                left = self._waiting.get(dep_hash, len(dep.valid.requires)) - 1
                if left > 0:
                    self._waiting[dep_hash] = left
                    continue
                self._waiting.pop(dep_hash, None)
                heapq.heappush(self._heap, (-dep.valid.priority, dep.inserted_at, dep_hash))
