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
from gensyn_node.block_import import BlockImportError
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
        self._wanted: dict[bytes, str | None] = {}  # blocks a vote named that we lack -> who sent it

    def want_block(self, block_hash: bytes, number: int, peer: str | None) -> None:
        """Fetch the block `block_hash` (and its branch down to our finalized block) soon."""
        if len(self._wanted) < MAX_WANTED and not self.node.store.has_block(block_hash):
            self._wanted.setdefault(block_hash, peer)
            self.wake()

    def wake(self) -> None:
        """Something (a block with an unknown parent) says a peer is ahead: look now."""
        self._wakeup.set()

    def get_state(self) -> SyncState:
        best = self.node.store.best_header().number
        self.state.current_block = best
        peer = self.network.best_peer()
        if peer is not None and peer.status is not None:
            self.state.highest_block = max(best, peer.status.best_number)
        else:
            self.state.highest_block = best
        return self.state

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            with trio.move_on_after(IDLE_POLL_SECONDS):
                await self._wakeup.wait()
            self._wakeup = trio.Event()
            peer = self.network.best_peer()
            if peer is not None and peer.status is not None \
                    and peer.status.best_number > self.node.store.best_header().number:
                await self.sync_from(peer.peer_id, peer.status.best_number)
            # Then the forks that votes named and range sync did not bring (canonical nowhere).
            await self._fetch_wanted()

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
        window_start, window_count, last_line = self.clock(), 0, 0.0
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
            imported: list[tuple[Block, bytes | None]] = []
            try:
                for block, justification in blocks:
                    mark = self.clock()
                    try:
                        result = await self.node.import_block_async(block)
                        timings.executing += result.execute_seconds
                        timings.committing += self.clock() - mark - result.execute_seconds
                    except BlockImportError as exc:
                        if exc.kind.is_punishable:
                            self.network.report(peer, PENALTY_BAD_RESPONSE, f"sync: {exc.reason}")
                        log.info("sync stopped peer=%s number=%d reason=%s", peer, block.header.number, exc.reason)
                        return
                    imported.append((block, justification))
                    self._imported += 1
                    window_count += 1
                    self.state.current_block = block.header.number
            finally:
                mark = self.clock()
                justified = self._import_justifications(peer, imported)
                timings.justifying += self.clock() - mark
            if not justified:
                return
            start = next_start
            now = self.clock()
            if now - last_line >= PROGRESS_EVERY_SECONDS:
                rate = window_count / max(now - window_start, 1e-6)
                self.progress(self._line(rate, target))
                window_start, window_count, last_line = now, 0, now

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
        while self._wanted:
            tip, sender = self._wanted.popitem()
            if self.node.store.has_block(tip):
                continue
            peers = [*([sender] if sender in self.network.peers else []),
                     *(p for p in list(self.network.peers) if p != sender)]
            for peer in peers:
                if await self.fetch_branch(peer, tip):
                    break

    async def fetch_branch(self, peer: str, tip: bytes) -> bool:
        """Import the branch that ends at `tip` from `peer` (blocks by range, with the tip named),
        from just above our finalized block; whether we hold the tip afterwards."""
        store = self.node.store
        start = store.finalized_header().number + 1
        while not store.has_block(tip):
            try:
                response = await self.network.request_blocks(peer, start, MAX_BLOCKS_PER_REQUEST, tip)
            except NetworkError as exc:
                log.info("branch request failed peer=%s error=%s", peer, exc)
                return False
            if not response:
                return False  # the peer lacks it too
            try:
                blocks = [(Block.decode(item.block), item.justification) for item in response]
            except CodecError as exc:
                self.network.report(peer, PENALTY_BAD_RESPONSE, f"sync: undecodable block: {exc}")
                return False
            first = blocks[0][0].header
            if not self._chains(blocks) or first.number != start or not store.has_block(first.parent_hash):
                self.network.report(peer, PENALTY_BAD_RESPONSE, "sync: a branch response that does not chain")
                return False
            for block, _justification in blocks:
                if store.has_block(block.header.hash):
                    continue
                try:
                    await self.node.import_block_async(block)
                except BlockImportError as exc:
                    if exc.kind.is_punishable:
                        self.network.report(peer, PENALTY_BAD_RESPONSE, f"sync: {exc.reason}")
                    return False
            start = blocks[-1][0].header.number + 1
        log.info("branch fetched peer=%s tip=0x%s", peer, tip.hex()[:16])
        return True

    def _line(self, rate: float, target: int) -> str:
        store = self.node.store
        return (f"⚙️  Syncing {rate:.1f} bps, target=#{target} ({len(self.network.peers)} peers), "
                f"best: #{store.best_header().number}, finalized #{store.finalized_header().number}")

    @staticmethod
    def _chains(blocks: list[tuple[Block, bytes | None]]) -> bool:
        return all(b.header.parent_hash == a.header.hash and b.header.number == a.header.number + 1
                   for (a, _), (b, _) in pairwise(blocks))
