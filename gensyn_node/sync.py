"""Sync: a node that is behind (new, restarted, partitioned) downloads the blocks it misses by
range from the peer with the highest best block, verifies and imports them through the node's
one `import_block` (execution off the event loop), and hands each block's justification to the
node. While syncing it reports progress as Substrate's informant does:
`⚙️ Syncing 412.3 bps, target=#2000 (3 peers), best: #1200, finalized #1100`.

The first block asked for is the one after our best; when the peer's chain forked off ours
below that, the first answer does not chain and the request moves back (doubling the step,
never below our finalized block) until it meets a block we hold.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

import trio

from consensus.finality_messages import JustificationError, SkipsSetChange
from gensyn_node.block_import import BlockImportError, ImportResult, ImportStatus
from p2p.messages import MAX_BLOCKS_PER_REQUEST, SyncedBlock
from p2p.network import Network, NetworkError
from p2p.reputation import PENALTY_BAD_RESPONSE
from runtime.block import Block
from runtime.codec.errors import CodecError

if TYPE_CHECKING:
    from gensyn_node.service import Node

log = logging.getLogger(__name__)
PROGRESS_EVERY_SECONDS = 2.0
IDLE_POLL_SECONDS = 1.0
MAX_WANTED = 64  # blocks named by votes that we lack, fetched one branch at a time
VOTE_FETCH_DELAY_SECONDS = 1.0  # see want_voted_block
MAX_HELD = 64  # gossip blocks whose parent we lack, kept until it arrives
MAX_STALE = 1024  # blocks known to be on forks below our finalized block, not fetched again
MAJOR_SYNC_BLOCKS = 5  # further behind the best peer than this, we are major-syncing (Substrate's figure)


@dataclass
class SyncState:
    """`system_syncState`: where sync started, where we are, the highest block a peer has."""

    starting_block: int = 0
    current_block: int = 0
    highest_block: int = 0
    is_syncing: bool = False


@dataclass
class SyncTimings:
    """Where a sync's wall time went (seconds), logged when it ends: waiting for responses,
    decoding them, executing blocks off the loop, committing them, their justifications."""

    waiting: float = 0.0
    decoding: float = 0.0
    executing: float = 0.0
    committing: float = 0.0
    justifying: float = 0.0

    def as_log(self) -> str:
        return " ".join(f"{name}_s={value:.3f}" for name, value in vars(self).items())


class _Ahead:
    """One blocks-by-range request running while the previous range imports."""

    def __init__(self, nursery: trio.Nursery, network: Network, peer: str, start: int, count: int):
        self.start = start
        self._done = trio.Event()
        self._result: list[SyncedBlock] | NetworkError = NetworkError("not answered")
        nursery.start_soon(self._run, network, peer, start, count)

    async def _run(self, network: Network, peer: str, start: int, count: int) -> None:
        try:
            self._result = await network.request_blocks(peer, start, count)
        except NetworkError as exc:
            self._result = exc
        finally:
            self._done.set()

    async def get(self) -> list[SyncedBlock]:
        await self._done.wait()
        if isinstance(self._result, NetworkError):
            raise self._result
        return self._result


class _Progress:
    """The `Syncing N bps` line, at most every PROGRESS_EVERY_SECONDS, over the blocks counted
    since the last line."""

    def __init__(self, sync: ChainSync, target: int, *, first_at_once: bool = False):
        self.sync, self.target = sync, target
        self.window_start = sync.clock()
        self.last_line = 0.0 if first_at_once else self.window_start
        self.count = 0

    def add(self, blocks: int) -> None:
        self.count += blocks
        now = self.sync.clock()
        if now - self.last_line >= PROGRESS_EVERY_SECONDS:
            rate = self.count / max(now - self.window_start, 1e-6)
            self.sync.progress(self.sync._line(rate, self.target))
            self.window_start, self.count, self.last_line = now, 0, now


class ChainSync:
    def __init__(self, node: Node, network: Network, progress: Callable[[str], None],
                 clock: Callable[[], float] = time.monotonic):
        self.node = node
        self.network = network
        self.progress = progress
        self.clock = clock
        self.state = SyncState()
        self._wakeup = trio.Event()
        self._imported = 0
        self.timings = SyncTimings()
        # blocks that a vote or a gossip block named and we lack -> (who sent it, its number,
        # when to ask for it)
        self._wanted: dict[bytes, tuple[str | None, int, float]] = {}
        self._held: dict[bytes, tuple[Block, str]] = {}  # gossip blocks whose parent we lack -> the sender
        self._stale: dict[bytes, None] = {}  # blocks of forks off below our finalized block (oldest first)
        self._held_ready = trio.Event()

    def want_block(self, block_hash: bytes, number: int, peer: str | None, delay: float = 0.0) -> None:
        """Fetch the block `block_hash` (and as much of its branch as we lack): soon, or once
        `delay` seconds have passed without it arriving otherwise."""
        if block_hash in self._stale or self.node.store.has_block(block_hash):
            return
        due = self.clock() + delay
        known = self._wanted.get(block_hash)
        if known is not None:
            if due < known[2]:
                self._wanted[block_hash] = (known[0], number, due)
        elif len(self._wanted) < MAX_WANTED:
            self._wanted[block_hash] = (peer, number, due)
        if not delay:
            self.wake()

    def want_voted_block(self, block_hash: bytes, number: int, peer: str | None) -> None:
        """A vote names a block we lack. Usually it is on its way by gossip: a vote outruns its
        block, which each hop imports before relaying, so at 8 validators a third of all blocks
        came twice, by gossip and by a branch fetch. Fetch it only if it has not come in a while
        (a fork we never saw, say across a healed partition, must still be fetched)."""
        self.want_block(block_hash, number, peer, VOTE_FETCH_DELAY_SECONDS)

    def hold(self, block: Block, peer: str) -> None:
        """A gossip block whose parent we lack: keep it, and let sync look now. Once the parent
        is imported (by range sync, or by the branch fetch of the newest held block) the block
        is imported at once, instead of waiting for the next request: a node one block behind
        would else stay behind whenever a request takes longer than a slot."""
        if block.header.number <= self.node.store.finalized_header().number:
            return
        if block.header.parent_hash in self._stale:
            self._mark_stale([block.header.hash])  # a stale validator building on its own fork
            return
        if len(self._held) >= MAX_HELD:
            oldest = min(self._held, key=lambda h: self._held[h][0].header.number)
            del self._held[oldest]
        self._held[block.header.hash] = (block, peer)
        self.wake()

    def _mark_stale(self, hashes: list[bytes]) -> None:
        for block_hash in hashes:
            self._stale[block_hash] = None
        while len(self._stale) > MAX_STALE:
            del self._stale[next(iter(self._stale))]

    def _want_newest_held(self) -> None:
        waiting = [(block, peer) for block, peer in self._held.values()
                   if not self.node.store.has_block(block.header.parent_hash)]
        if waiting:
            block, peer = max(waiting, key=lambda item: item[0].header.number)
            self.want_block(block.header.hash, block.header.number, peer)

    async def import_held(self) -> int:
        """Import the held blocks whose parent we now hold (parents first); how many."""
        store, imported = self.node.store, 0
        while True:
            finalized = store.finalized_header().number
            for stale in [h for h, (block, _) in self._held.items() if block.header.number <= finalized]:
                del self._held[stale]  # finality ruled it out (or sync already brought it)
            ready = sorted(((block, peer) for block, peer in self._held.values()
                            if store.has_block(block.header.parent_hash)), key=lambda item: item[0].header.number)
            if not ready:
                return imported
            for block, peer in ready:
                # (the other task, held-import loop or sync pass, may have taken it meanwhile)
                if self._held.pop(block.header.hash, None) is None or store.has_block(block.header.hash):
                    continue
                try:
                    await self.node.import_block_async(block)
                    imported += 1
                except BlockImportError as exc:
                    if exc.kind.is_punishable:
                        self.network.report(peer, PENALTY_BAD_RESPONSE, f"gossip: {exc.reason}")
                    log.info("held block refused number=%d peer=%s reason=%s", block.header.number, peer, exc.reason)
                except Exception:  # an edge: as in the gossip validator, one block must not stop the node
                    log.exception("held block import failed number=%d peer=%s", block.header.number, peer)

    def wake(self) -> None:
        """Something (a block with an unknown parent) says a peer is ahead: look now."""
        self._wakeup.set()

    def is_major_syncing(self) -> bool:
        """Whether a peer's best block is more than `MAJOR_SYNC_BLOCKS` above ours. A validator
        does not author then (Substrate's sync oracle): a block built on a best that is far
        behind only forks the chain, and sync must back out of that fork again."""
        peer = self.network.best_peer()
        return peer is not None and peer.status is not None \
            and peer.status.best_number > self.node.store.best_header().number + MAJOR_SYNC_BLOCKS

    def get_state(self) -> SyncState:
        best = self.node.store.best_header().number
        self.state.current_block = best
        peer = self.network.best_peer()
        if peer is not None and peer.status is not None:
            self.state.highest_block = max(best, peer.status.best_number)
        else:
            self.state.highest_block = best
        return self.state

    def on_imported(self) -> None:
        """A block was imported outside sync (gossip): held blocks may wait for it. They are
        imported by sync's own task, never inside the gossip validator, which must answer fast
        (the library reads a peer's messages one at a time behind it)."""
        if self._held:
            self._held_ready.set()

    async def _import_held_loop(self) -> None:
        while True:
            await self._held_ready.wait()
            self._held_ready = trio.Event()
            await self.import_held()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._import_held_loop)
            task_status.started()
            await self._run()

    async def _run(self) -> None:
        while True:
            try:
                await self._step()
            except Exception:  # an edge: one failed pass must not stop sync (or the node with it)
                log.exception("sync pass failed")

    async def _step(self) -> None:
        """One pass: wait for a wake-up (or a second), range sync, then held and named blocks."""
        with trio.move_on_after(IDLE_POLL_SECONDS):
            await self._wakeup.wait()
        self._wakeup = trio.Event()
        peer = self.network.best_peer()
        if peer is not None and peer.status is not None \
                and peer.status.best_number > self.node.store.best_header().number:
            await self.sync_from(peer.peer_id, peer.status.best_number)
        await self.import_held()
        # Then the forks that votes named and range sync did not bring (canonical nowhere),
        # and the branch of the newest block still held: one request, not one a block.
        self._want_newest_held()
        await self._fetch_wanted()
        await self.import_held()

    async def sync_from(self, peer: str, target: int) -> int:
        """Import the peer's chain up to `target`; the number of blocks imported."""
        best = self.node.store.best_header().number
        self.state = SyncState(best, best, target, True)
        self._imported = 0
        self.timings = SyncTimings()
        started = self.clock()
        try:
            async with trio.open_nursery() as nursery:
                await self._sync_ranges(nursery, peer, target)
                nursery.cancel_scope.cancel()  # a request still ahead is not needed any more
        finally:
            self.state.is_syncing = False
            if self._imported:
                log.info("sync done peer=%s imported=%d best=%d total_s=%.3f %s", peer, self._imported,
                         self.node.store.best_header().number, self.clock() - started, self.timings.as_log())
        return self._imported

    async def _sync_ranges(self, nursery: trio.Nursery, peer: str, target: int) -> None:
        store = self.node.store
        start = store.best_header().number + 1
        step = 1
        progress = _Progress(self, target, first_at_once=True)
        ahead: _Ahead | None = None
        timings = self.timings
        while start <= target:
            mark = self.clock()
            try:
                if ahead is not None and ahead.start == start:
                    response = await ahead.get()
                else:
                    response = await self.network.request_blocks(peer, start, min(MAX_BLOCKS_PER_REQUEST, target - start + 1))
            except NetworkError as exc:
                log.info("sync request failed peer=%s start=%d error=%s", peer, start, exc)
                return
            ahead = None
            timings.waiting += self.clock() - mark
            if not response:
                return
            mark = self.clock()
            try:
                blocks = [(Block.decode(item.block), item.justification) for item in response]
            except CodecError as exc:
                self.network.report(peer, PENALTY_BAD_RESPONSE, f"sync: undecodable block: {exc}")
                return
            finally:
                timings.decoding += self.clock() - mark
            if not self._chains(blocks):
                self.network.report(peer, PENALTY_BAD_RESPONSE, "sync: blocks in a response do not chain")
                return
            first = blocks[0][0].header
            if first.number != start:
                self.network.report(peer, PENALTY_BAD_RESPONSE, f"sync: asked for #{start}, got #{first.number}")
                return
            if not store.has_block(first.parent_hash):
                # The peer's chain forked off ours below `start`: step back towards finalized.
                floor = store.finalized_header().number + 1
                if start <= floor:
                    self.network.report(peer, PENALTY_BAD_RESPONSE,
                                        "sync: the peer's chain does not contain our finalized block")
                    return
                start = max(floor, start - step)
                step *= 2
                continue
            next_start = blocks[-1][0].header.number + 1
            if next_start <= target:  # ask for the next range while this one imports
                ahead = _Ahead(nursery, self.network, peer, next_start,
                               min(MAX_BLOCKS_PER_REQUEST, target - next_start + 1))
            imported, complete = await self._import_blocks(peer, blocks)
            self._imported += len(imported)
            if imported:
                self.state.current_block = imported[-1][0].header.number
            mark = self.clock()
            justified = self._import_justifications(peer, imported)  # those of a partial range too
            timings.justifying += self.clock() - mark
            if not (complete and justified):
                return
            start = next_start
            progress.add(len(imported))

    async def _import_blocks(self, peer: str, blocks: list[tuple[Block, bytes | None]],
                             ) -> tuple[list[tuple[Block, bytes | None]], bool]:
        """A response's blocks through `Node.import_chain_async`: those newly imported, with
        their justifications, and whether none was refused. A block refused as invalid costs
        the peer; one refused as useless (a fork below finality, a slot early) does not."""
        justifications = {block.header.hash: data for block, data in blocks}
        imported: list[tuple[Block, bytes | None]] = []
        timings = self.timings
        reported = 0  # known blocks included: the refused one is the next

        def on_imported(block: Block, result: ImportResult) -> None:
            nonlocal reported
            reported += 1
            if result.status is not ImportStatus.ALREADY_KNOWN:
                timings.executing += result.execute_seconds
                timings.committing += result.seconds
                imported.append((block, justifications[block.header.hash]))

        try:
            await self.node.import_chain_async([block for block, _ in blocks], on_imported)
        except BlockImportError as exc:
            if exc.kind.is_punishable:
                self.network.report(peer, PENALTY_BAD_RESPONSE, f"sync: {exc.reason}")
            number = blocks[0][0].header.number + reported
            log.info("sync stopped peer=%s number=%d reason=%s", peer, number, exc.reason)
            return imported, False
        return imported, True

    def _import_justifications(self, peer: str, imported: list[tuple[Block, bytes | None]]) -> bool:
        """Finalize what the justifications of a range prove. The last one finalizes every block
        before it, so it is enough, unless the range changes the voter set: then the old set's
        justification of the change must come first, and they are imported in order. False (the
        peer scored down) when one does not prove its block final."""
        justified = [(block, data) for block, data in imported if data is not None]
        if not justified:
            return True
        try:
            self._import_justification(*justified[-1])
            return True
        except SkipsSetChange:
            pass
        except JustificationError as exc:
            return self._refuse_justification(peer, justified[-1][0], exc)
        for block, data in justified:
            try:
                self._import_justification(block, data)
            except JustificationError as exc:
                return self._refuse_justification(peer, block, exc)
        return True

    def _import_justification(self, block: Block, data: bytes) -> None:
        self.node.import_justification(block.header.hash, data)

    def _refuse_justification(self, peer: str, block: Block, exc: JustificationError) -> bool:
        self.network.report(peer, PENALTY_BAD_RESPONSE, f"sync: justification of #{block.header.number}: {exc}")
        return False

    async def _fetch_wanted(self) -> None:
        """The branches that votes and gossip blocks named, newest first. One far above our best
        is left to range sync (which brings justifications along); a peer that fails a request
        is not asked again in this pass, so a dead connection costs one timeout, not one a tip."""
        store = self.node.store
        unreachable: set[str] = set()
        while due := [block_hash for block_hash, wish in self._wanted.items() if wish[2] <= self.clock()]:
            tip = due[-1]
            sender, number, _due = self._wanted.pop(tip)
            if store.has_block(tip) or number > store.best_header().number + MAJOR_SYNC_BLOCKS:
                continue
            peers = [*([sender] if sender in self.network.peers else []),
                     *(p for p in list(self.network.peers) if p != sender)]
            for peer in peers:
                if peer in unreachable:
                    continue
                try:
                    if await self.fetch_branch(peer, tip, number) or tip in self._stale:
                        break
                except NetworkError as exc:
                    log.info("branch request failed peer=%s error=%s", peer, exc)
                    unreachable.add(peer)

    async def fetch_branch(self, peer: str, tip: bytes, number: int) -> bool:
        """Import the branch that ends at `tip` (block #`number`) from `peer` (blocks by range,
        with the tip named). The first request covers the last range below the tip; while its
        first block's parent is unknown to us the start steps back (doubling, never below our
        finalized block), as range sync does. Whether we hold the tip afterwards; NetworkError
        when a request fails."""
        store = self.node.store
        floor = store.finalized_header().number + 1
        if number < floor:
            return False  # at or below our finality: not a branch we could ever take
        start = max(floor, number - MAX_BLOCKS_PER_REQUEST + 1)
        step = MAX_BLOCKS_PER_REQUEST
        progress = _Progress(self, number)
        while not store.has_block(tip):
            response = await self.network.request_blocks(peer, start, MAX_BLOCKS_PER_REQUEST, tip)
            if not response:
                return False  # the peer lacks it too
            try:
                blocks = [(Block.decode(item.block), item.justification) for item in response]
            except CodecError as exc:
                self.network.report(peer, PENALTY_BAD_RESPONSE, f"sync: undecodable block: {exc}")
                return False
            first = blocks[0][0].header
            if not self._chains(blocks) or first.number != start:
                self.network.report(peer, PENALTY_BAD_RESPONSE, "sync: a branch response that does not chain")
                return False
            if not store.has_block(first.parent_hash):
                if start <= floor:
                    # It forks off below our finalized block: a stale validator's (it built on
                    # a head that lost to finality while it caught up), useless, not invalid.
                    log.info("stale branch ignored peer=%s tip=0x%s number=%d: it does not contain our "
                             "finalized block", peer, tip.hex()[:16], number)
                    self._mark_stale([tip, *(block.header.hash for block, _ in blocks)])
                    return False
                start, step = max(floor, start - step), step * 2
                continue
            imported, complete = await self._import_blocks(peer, blocks)
            if not (self._import_justifications(peer, imported) and complete):
                return False
            progress.add(len(imported))
            start = blocks[-1][0].header.number + 1
        log.info("branch fetched peer=%s tip=0x%s number=%d", peer, tip.hex()[:16], number)
        return True

    def _line(self, rate: float, target: int) -> str:
        store = self.node.store
        return (f"⚙️  Syncing {rate:.1f} bps, target=#{target} ({len(self.network.peers)} peers), "
                f"best: #{store.best_header().number}, finalized #{store.finalized_header().number}")

    @staticmethod
    def _chains(blocks: list[tuple[Block, bytes | None]]) -> bool:
        return all(b.header.parent_hash == a.header.hash and b.header.number == a.header.number + 1
                   for (a, _), (b, _) in pairwise(blocks))
