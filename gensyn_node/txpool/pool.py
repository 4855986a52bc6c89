"""The tx pool proper: admission, ready/future queues, limits, bans, pruning and revalidation.

See `gensyn_node.txpool` for the model and the status events.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

from gensyn_node.txpool.base import (
    DROPPED,
    FUTURE,
    HEAP_SLACK,
    INVALID,
    MAX_BANNED,
    READY,
    USURPED,
    BlockRef,
    Event,
    EventCallback,
    HashFn,
    PoolTx,
    PruneResult,
    ValidateFn,
    compute_normalized_validity,
    describe_removal,
    iter_heap_sorted,
    validate_provides_tags,
)
from gensyn_node.txpool.errors import (
    AlreadyImported,
    CycleDetected,
    Invalid,
    PoolError,
    PoolFull,
    TemporarilyBanned,
    TooLowPriority,
)
from gensyn_node.txpool.ready import ReadyIterator
from runtime.transaction_validity import InvalidTransaction, TransactionValidityError, ValidTransaction

logger = logging.getLogger(__name__)

HeapEntry = tuple[int, int, int, PoolTx]  # (priority, inserted_at, tiebreak, tx): worst first


def iter_live_sorted(heap: list[HeapEntry], live: dict[bytes, PoolTx]) -> Iterator[PoolTx]:
    """The live transactions of a lazy-deletion heap, worst first, without reordering it.

    Stale entries on top (the evicted: they were the worst) are popped for good first, so that
    evicting from a full pool stays O(log n) a victim instead of re-skipping all earlier ones.
    """
    while heap and live.get(heap[0][3].hash) is not heap[0][3]:
        heapq.heappop(heap)
    for entry in iter_heap_sorted(heap):
        tx = entry[3]
        if live.get(tx.hash) is tx:
            yield tx


class TxPool:
    """Ready and future queues of validated transactions, bounded, with bans and revalidation."""

    def __init__(
        self,
        validate: ValidateFn,
        hash_fn: HashFn,
        *,
        max_count: int = 8192,
        max_bytes: int = 20 * 1024 * 1024,
        ban_seconds: float = 1800,
        clock: Callable[[], float] = time.monotonic,
    ):
        if max_count <= 0 or max_bytes <= 0 or ban_seconds < 0:
            raise ValueError("max_count and max_bytes must be positive, ban_seconds not negative")
        self._validate = validate
        self._hash_fn = hash_fn
        self._max_count = max_count
        self._max_bytes = max_bytes
        self._ban_seconds = ban_seconds
        self._clock = clock
        self._callbacks: list[EventCallback] = []
        self._banned: dict[bytes, float] = {}  # hash -> ban end, in ban order
        self._seq = itertools.count()
        self._tiebreak = itertools.count()
        self._reset()

    def _reset(self) -> None:
        self._ready: dict[bytes, PoolTx] = {}
        self._future: dict[bytes, PoolTx] = {}
        self._provided: dict[bytes, bytes] = {}  # tag -> hash of the ready tx providing it
        self._required_by: dict[bytes, set[bytes]] = {}  # tag -> ready txs requiring it
        self._missing: dict[bytes, set[bytes]] = {}  # future tx -> tags it still waits for
        self._wanted: dict[bytes, set[bytes]] = {}  # tag -> future txs waiting for it
        self._ready_heap: list[HeapEntry] = []  # worst first, for eviction
        self._future_heap: list[HeapEntry] = []
        self._bytes = 0

    # -- reading --------------------------------------------------------------------------------

    def ready(self) -> ReadyIterator:
        """Ready transactions best first, respecting dependencies (see `ReadyIterator`)."""
        return ReadyIterator(self._ready, self._required_by)

    def pending(self) -> list[PoolTx]:
        """Every pooled transaction: the ready ones in `ready()` order, then the future ones."""
        return list(self.ready()) + sorted(self._future.values(), key=lambda tx: tx.inserted_at)

    def status(self) -> dict[str, int]:
        return {"ready": len(self._ready), "future": len(self._future), "bytes": self._bytes}

    def get(self, tx_hash: bytes) -> PoolTx | None:
        return self._ready.get(tx_hash) or self._future.get(tx_hash)

    def is_banned(self, tx_hash: bytes) -> bool:
        end = self._banned.get(tx_hash)
        if end is None:
            return False
        if end > self._clock():
            return True
        del self._banned[tx_hash]
        return False

    def __len__(self) -> int:
        return len(self._ready) + len(self._future)

    def __contains__(self, tx_hash: object) -> bool:
        return tx_hash in self._ready or tx_hash in self._future

    def on_event(self, callback: EventCallback) -> Callable[[], None]:
        """Call `callback(tx_hash, status, detail)` on every status change; returns an unsubscriber."""
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback)

    # -- submission -----------------------------------------------------------------------------

    def submit(self, data: bytes, at: BlockRef, at_number: int) -> tuple[bytes, str]:
        """Validate `data` at block `at` (number `at_number`) and queue it: ("ready"|"future").

        Raises AlreadyImported, TemporarilyBanned, Invalid (banned when InvalidTransaction),
        TooLowPriority, CycleDetected or PoolFull; a refused submission changes nothing but the
        ban list.
        """
        tx_hash = self._hash_fn(data)
        self._validate_not_known(tx_hash)
        valid = self._validate_new(tx_hash, data, at)
        tx = PoolTx(tx_hash, data, valid, next(self._seq), at_number + valid.longevity)
        events: list[Event] = []
        status = self._admit(tx, events)
        self._emit(events)
        return tx_hash, status

    def submit_many(
        self, datas: Iterable[bytes], at: BlockRef, at_number: int
    ) -> list[tuple[bytes, str] | PoolError]:
        """Submit each in turn; a refusal is returned in its place instead of raised."""
        results: list[tuple[bytes, str] | PoolError] = []
        for data in datas:
            try:
                results.append(self.submit(data, at, at_number))
            except PoolError as err:
                results.append(err)
        return results

    def _validate_not_known(self, tx_hash: bytes) -> None:
        if self._banned and self.is_banned(tx_hash):
            raise TemporarilyBanned("the transaction is temporarily banned")
        if tx_hash in self._ready or tx_hash in self._future:
            raise AlreadyImported("the transaction is already in the pool")

    def _validate_new(self, tx_hash: bytes, data: bytes, at: BlockRef) -> ValidTransaction:
        try:
            valid = self._validate(data, at)
            validate_provides_tags(valid)
        except TransactionValidityError as err:
            if isinstance(err, InvalidTransaction):
                self._ban((tx_hash,))
            raise Invalid(err) from err
        return compute_normalized_validity(valid)

    def _admit(self, tx: PoolTx, events: list[Event]) -> str:
        """Plan everything that may refuse the newcomer first, then change the queues."""
        is_ready = self._is_satisfied(tx.valid.requires)
        replaced = self._plan_replacement(tx) if is_ready else []
        victims = self._plan_eviction(tx, is_ready, replaced)
        for victim in victims:
            self._discard(victim.hash, DROPPED, "evicted: the pool is full", events)
        self._bytes += len(tx.data)
        if is_ready:
            self._enter_ready(tx, replaced, events)
            self._promote(tx.valid.provides, events)
            return READY
        self._insert_future(tx)
        events.append((tx.hash, FUTURE, None))
        return FUTURE

    def _is_satisfied(self, requires: tuple[bytes, ...]) -> bool:
        provided = self._provided
        for tag in requires:
            if tag not in provided:
                return False
        return True

    def _plan_replacement(self, tx: PoolTx) -> list[PoolTx]:
        """The ready transactions `tx` would replace; raises if it may not replace them."""
        provided = self._provided
        hashes = {provided[tag] for tag in tx.valid.provides if tag in provided}
        if not hashes:
            return []
        replaced = sorted((self._ready[h] for h in hashes), key=lambda old: old.inserted_at)
        old_priority = sum(old.valid.priority for old in replaced)
        if old_priority >= tx.valid.priority:
            raise TooLowPriority(old_priority, tx.valid.priority)
        if hashes & self._get_ancestors(tx):
            raise CycleDetected("the transaction would replace one it depends on")
        return replaced

    def _get_ancestors(self, tx: PoolTx) -> set[bytes]:
        """Hashes of the ready transactions `tx` depends on, directly or not."""
        seen: set[bytes] = set()
        stack = list(tx.valid.requires)
        while stack:
            provider = self._provided.get(stack.pop())
            if provider is None or provider in seen:
                continue
            seen.add(provider)
            stack.extend(self._ready[provider].valid.requires)
        return seen

    def _plan_eviction(self, tx: PoolTx, is_ready: bool, replaced: list[PoolTx]) -> list[PoolTx]:
        """The transactions to evict so that `tx` fits; raises PoolFull when it cannot fit."""
        excess_count = len(self) + 1 - len(replaced) - self._max_count
        excess_bytes = self._bytes + len(tx.data) - sum(len(old.data) for old in replaced) - self._max_bytes
        if excess_count <= 0 and excess_bytes <= 0:
            return []
        if len(tx.data) > self._max_bytes:
            raise PoolFull("the transaction is larger than the pool")
        protected = {old.hash for old in replaced}
        if is_ready:
            protected |= self._get_ancestors(tx)
        victims: list[PoolTx] = []
        for victim in self._iter_eviction_candidates(tx, is_ready):
            if victim.hash in protected:
                continue
            protected.add(victim.hash)
            victims.append(victim)
            excess_count -= 1
            excess_bytes -= len(victim.data)
            if excess_count <= 0 and excess_bytes <= 0:
                return victims
        raise PoolFull("the pool is full and holds no transaction worse than this one")

    def _iter_eviction_candidates(self, tx: PoolTx, is_ready: bool) -> Iterator[PoolTx]:
        """Worst first: future ones (any of them for a ready newcomer, since they cost their
        senders nothing; only lower priorities for a future one), then lower-priority ready ones
        for a ready newcomer; among equal priorities the oldest first, as Substrate's limits."""
        priority = tx.valid.priority
        for victim in iter_live_sorted(self._future_heap, self._future):
            if not is_ready and victim.valid.priority >= priority:
                return
            yield victim
        if not is_ready:
            return
        for victim in iter_live_sorted(self._ready_heap, self._ready):
            if victim.valid.priority >= priority:
                return
            yield victim

    # -- queue mechanics ------------------------------------------------------------------------

    def _enter_ready(self, tx: PoolTx, replaced: list[PoolTx], events: list[Event]) -> None:
        """Put `tx` in ready in place of `replaced`; their dependants that `tx` does not serve
        go back to future."""
        for old in replaced:
            if self._take(old.hash) is not None:
                events.append((old.hash, USURPED, tx.hash))
        self._insert_ready(tx)
        events.append((tx.hash, READY, None))
        lost = [tag for old in replaced for tag in old.valid.provides if tag not in self._provided]
        if lost:
            self._demote(lost, events)

    def _promote(self, tags: Iterable[bytes], events: list[Event]) -> None:
        """Move to ready the future transactions that the newly provided `tags` complete, and
        those that they complete in turn (iteratively: a filled gap may release a long chain)."""
        if not self._wanted:
            return
        pending = list(tags)
        candidates: list[tuple[int, int, bytes]] = []
        while True:
            for tag in pending:
                for tx_hash in self._wanted.pop(tag, ()):
                    missing = self._missing[tx_hash]
                    missing.discard(tag)
                    if not missing:
                        tx = self._future[tx_hash]
                        heapq.heappush(candidates, (-tx.valid.priority, tx.inserted_at, tx_hash))
            if not candidates:
                return
            # The best candidate first, so that it wins a race for a tag against a worse one.
            tx = self._future.get(heapq.heappop(candidates)[2])
            pending = self._try_promote(tx, events) if tx is not None else []

    def _try_promote(self, tx: PoolTx, events: list[Event]) -> tuple[bytes, ...]:
        self._remove_future(tx)
        if not self._is_satisfied(tx.valid.requires):
            self._insert_future(tx)  # a tag it had counted as provided was lost meanwhile
            return ()
        try:
            replaced = self._plan_replacement(tx)
        except PoolError as err:
            self._bytes -= len(tx.data)
            events.append((tx.hash, DROPPED, err.reason))
            return ()
        self._enter_ready(tx, replaced, events)
        return tx.valid.provides

    def _demote(self, lost_tags: Iterable[bytes], events: list[Event]) -> None:
        """Move back to future the ready transactions that required a tag nobody provides now."""
        work = list(lost_tags)
        while work:
            for tx_hash in list(self._required_by.get(work.pop(), ())):
                tx = self._ready[tx_hash]
                self._remove_ready(tx)
                work.extend(tag for tag in tx.valid.provides if tag not in self._provided)
                self._insert_future(tx)
                events.append((tx_hash, FUTURE, None))

    def _discard(self, tx_hash: bytes, status: str, reason: str, events: list[Event]) -> PoolTx | None:
        """Remove a transaction for good, its ready dependants going back to future."""
        tx = self._take(tx_hash)
        if tx is None:
            return None
        events.append((tx_hash, status, reason))
        lost = [tag for tag in tx.valid.provides if tag not in self._provided]
        if lost:
            self._demote(lost, events)
        return tx

    def _take(self, tx_hash: bytes) -> PoolTx | None:
        """Remove a transaction from whichever queue holds it (dependants untouched)."""
        tx = self._ready.get(tx_hash)
        if tx is not None:
            self._remove_ready(tx)
        else:
            tx = self._future.get(tx_hash)
            if tx is None:
                return None
            self._remove_future(tx)
        self._bytes -= len(tx.data)
        return tx

    def _insert_ready(self, tx: PoolTx) -> None:
        tx_hash = tx.hash
        self._ready[tx_hash] = tx
        for tag in tx.valid.provides:
            self._provided[tag] = tx_hash
        for tag in tx.valid.requires:
            dependants = self._required_by.get(tag)
            if dependants is None:
                self._required_by[tag] = {tx_hash}
            else:
                dependants.add(tx_hash)
        self._push(self._ready_heap, self._ready, tx)

    def _remove_ready(self, tx: PoolTx) -> None:
        tx_hash = tx.hash
        del self._ready[tx_hash]
        for tag in tx.valid.provides:
            if self._provided.get(tag) == tx_hash:
                del self._provided[tag]
        for tag in tx.valid.requires:
            dependants = self._required_by.get(tag)
            if dependants is not None:
                dependants.discard(tx_hash)
                if not dependants:
                    del self._required_by[tag]

    def _insert_future(self, tx: PoolTx) -> None:
        missing = {tag for tag in tx.valid.requires if tag not in self._provided}
        self._future[tx.hash] = tx
        self._missing[tx.hash] = missing
        for tag in missing:
            self._wanted.setdefault(tag, set()).add(tx.hash)
        self._push(self._future_heap, self._future, tx)

    def _remove_future(self, tx: PoolTx) -> None:
        del self._future[tx.hash]
        for tag in self._missing.pop(tx.hash, ()):
            waiting = self._wanted.get(tag)
            if waiting is not None:
                waiting.discard(tx.hash)
                if not waiting:
                    del self._wanted[tag]

    def _push(self, heap: list[HeapEntry], live: dict[bytes, PoolTx], tx: PoolTx) -> None:
        """Add to an eviction heap; entries of transactions that left are skipped and, once
        they pile up, dropped by rebuilding the heap from the live queue."""
        heapq.heappush(heap, (tx.valid.priority, tx.inserted_at, next(self._tiebreak), tx))
        if len(heap) > 2 * len(live) + HEAP_SLACK:
            heap[:] = [(t.valid.priority, t.inserted_at, next(self._tiebreak), t) for t in live.values()]
            heapq.heapify(heap)

    # -- invalid transactions and bans ----------------------------------------------------------

    def remove_invalid(self, hashes: Iterable[bytes], reason: str = "reported invalid") -> list[PoolTx]:
        """Remove and ban these transactions; their ready dependants go back to future."""
        hashes = list(hashes)
        self._ban(hashes)
        events: list[Event] = []
        removed = [tx for h in hashes if (tx := self._discard(h, INVALID, reason, events)) is not None]
        self._emit(events)
        if removed:
            logger.info("txpool removed invalid count=%d reason=%s", len(removed), reason)
        return removed

    def report_invalid(self, tx_hash: bytes, error: TransactionValidityError | str) -> PoolTx | None:
        """The author found `tx_hash` failing: remove and ban it (see `remove_invalid`)."""
        removed = self.remove_invalid((tx_hash,), reason=str(error))
        return removed[0] if removed else None

    def _ban(self, hashes: Iterable[bytes]) -> None:
        if self._ban_seconds <= 0:
            return
        now = self._clock()
        banned = self._banned
        for tx_hash in hashes:
            banned.pop(tx_hash, None)  # re-insert so that the dict stays in ban-end order
            banned[tx_hash] = now + self._ban_seconds
        for oldest in list(itertools.islice(banned, max(0, len(banned) - MAX_BANNED))):
            del banned[oldest]
        while banned:
            oldest = next(iter(banned))
            if banned[oldest] > now:
                break
            del banned[oldest]

    def _unban(self, hashes: Iterable[bytes]) -> None:
        for tx_hash in hashes:
            self._banned.pop(tx_hash, None)

    # -- chain events ---------------------------------------------------------------------------

    def on_block_imported(self, included: Sequence[bytes], at: BlockRef, at_number: int) -> PruneResult:
        """A new best block `at` (number `at_number`) included the extrinsics `included`.

        Prunes (and bans, so that gossip does not bring them back) the included ones, drops the
        expired ones (valid_till < at_number), revalidates every other one against `at` and
        rebuilds the queues from the fresh validities in insertion order (valid_till only ever
        shrinks: the longevity given at admission still binds).
        """
        in_block = self._prune(included)
        before = {h: READY for h in self._ready} | {h: FUTURE for h in self._future}
        survivors, dropped, events = self._revalidate_all(at, at_number)
        # Status changes are reported once, from the difference below; removals as they happened.
        removals = [event for event in self._rebuild(survivors) if event[1] in (USURPED, DROPPED)]
        events.extend(removals)
        dropped.extend((tx_hash, describe_removal(status, detail)) for tx_hash, status, detail in removals)
        promoted = []
        for tx in survivors:
            after = READY if tx.hash in self._ready else FUTURE if tx.hash in self._future else None
            if after is not None and after != before[tx.hash]:
                events.append((tx.hash, after, None))
                if after == READY:
                    promoted.append(tx.hash)
        self._emit(events)
        logger.debug(
            "txpool block number=%d in_block=%d dropped=%d ready=%d future=%d",
            at_number,
            len(in_block),
            len(dropped),
            len(self._ready),
            len(self._future),
        )
        return PruneResult(tuple(in_block), tuple(dropped), tuple(promoted))

    def _prune(self, included: Sequence[bytes]) -> list[bytes]:
        in_block = [h for h in included if self._take(h) is not None]
        self._ban(included)
        return in_block

    def _revalidate_all(
        self, at: BlockRef, at_number: int
    ) -> tuple[list[PoolTx], list[tuple[bytes, str]], list[Event]]:
        survivors: list[PoolTx] = []
        dropped: list[tuple[bytes, str]] = []
        events: list[Event] = []
        for tx in sorted(
            itertools.chain(self._ready.values(), self._future.values()), key=lambda t: t.inserted_at
        ):
            if tx.valid_till < at_number:
                reason = f"expired: valid till block {tx.valid_till}"
                self._ban((tx.hash,))
                dropped.append((tx.hash, reason))
                events.append((tx.hash, DROPPED, reason))
                continue
            try:
                valid = self._validate(tx.data, at)
                validate_provides_tags(valid)
            except TransactionValidityError as err:
                if isinstance(err, InvalidTransaction):
                    self._ban((tx.hash,))
                dropped.append((tx.hash, str(err)))
                events.append((tx.hash, INVALID, str(err)))
                continue
            valid = compute_normalized_validity(valid)
            # Revalidation never extends a life: the longevity given at admission still binds.
            valid_till = min(tx.valid_till, at_number + valid.longevity)
            survivors.append(PoolTx(tx.hash, tx.data, valid, tx.inserted_at, valid_till))
        return survivors, dropped, events

    def _rebuild(self, survivors: list[PoolTx]) -> list[Event]:
        """Queue the revalidated transactions afresh; limits cannot be exceeded (none is new)."""
        self._reset()
        events: list[Event] = []
        for tx in survivors:
            self._bytes += len(tx.data)
            if not self._is_satisfied(tx.valid.requires):
                self._insert_future(tx)
                continue
            try:
                replaced = self._plan_replacement(tx)
            except PoolError as err:
                self._bytes -= len(tx.data)
                events.append((tx.hash, DROPPED, err.reason))
                continue
            self._enter_ready(tx, replaced, events)
            self._promote(tx.valid.provides, events)
        return events

    def on_reorg(self, retracted: Sequence[bytes], at: BlockRef, at_number: int,
                 enacted: Sequence[bytes] = ()) -> list[tuple[bytes, str]]:
        """The best chain switched branches to the new best block `at`: resubmit the
        transactions of the retracted blocks.

        The retracted transactions' inclusion bans are lifted, the hashes of the enacted blocks'
        extrinsics (every block of the new branch, not only its tip) are pruned and the rest of
        the pool is revalidated against `at` (one `on_block_imported`); then the retracted
        transactions are resubmitted, and those invalid on the new branch (included there too:
        stale) are ignored. Returns the accepted (hash, status). The enacted ones must be pruned
        here, not after: revalidated first, a pooled transaction that the new branch included
        below its tip fails as stale and would be reported invalid instead of in a block.
        """
        self._unban(self._hash_fn(data) for data in retracted)
        self.on_block_imported(enacted, at, at_number)
        accepted: list[tuple[bytes, str]] = []
        for data in retracted:
            try:
                accepted.append(self.submit(data, at, at_number))
            except PoolError as err:
                logger.debug("txpool reorg resubmission refused reason=%s", err.reason)
        return accepted

    # -- events ---------------------------------------------------------------------------------

    def _emit(self, events: list[Event]) -> None:
        if not self._callbacks or not events:
            return
        for callback in list(self._callbacks):
            for tx_hash, status, detail in events:
                try:
                    callback(tx_hash, status, detail)
                except Exception:  # an edge: one broken watcher must not break the pool
                    logger.warning("txpool event callback failed status=%s", status, exc_info=True)
