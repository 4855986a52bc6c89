"""A byzantine validator for integration tests: the real node (`gensyn-node run` with the same
flags, its real service, LevelDB and network) whose `Node` misbehaves once the network runs
(its finalized chain has reached --misbehave-after, 8 by default) and it votes in step with the
others (it prevoted in the gadget's current round within the last two slots: a node that lags
the others' rounds sends votes they ignore as old):

1. in its next slot it seals two different blocks (the honest one and a twin with another
   timestamp) and gossips both; the twin never enters its own store;
2. at once (or, if its round has moved on, at its next prevote) it signs a second, different
   prevote beside its honest one of the round and gossips both: the first is recorded in its
   signing record as always; the second, for the target's parent, is signed without the record
   (the one signature it must not be able to make) and resent whenever the first is.
   The block comes first because its report takes the node out of the active set (no more
   slots) as soon as it lands, while it stays a voter until that block is finalized.

It also keeps equivocation reports out of its own pool, so that evidence against it only ever
lands in an honest author's block (whose author is the reporter paid). Everything else is the
honest node.

    python -m tests.integration.byzantine_node [--misbehave-after N] run <gensyn-node run flags>
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import trio

from consensus.authoring import find_slot_author
from consensus.finality_messages import Vote, decode_message
from gensyn_node import service
from gensyn_node.block_import import ImportResult
from gensyn_node.cli.dispatch import main as cli_main
from p2p.reputation import Verdict as PeerVerdict
from runtime.block import Block
from runtime.codec.errors import CodecError
from runtime.codec.scale import decode_compact
from runtime.executive import BlockBuilder
from runtime.finality_vote import PREVOTE
from runtime.pallets.indices import OFFENCES

log = logging.getLogger(__name__)
UNSIGNED_V4 = 0x04
DEFAULT_MISBEHAVE_AFTER = 8


def is_offence_report(data: bytes) -> bool:
    """Whether `data` is an unsigned Offences call (what nodes submit as equivocation reports)."""
    try:
        _length, pos = decode_compact(data, 0)
    except (CodecError, IndexError):
        return False
    return len(data) > pos + 1 and data[pos] == UNSIGNED_V4 and data[pos + 1] == OFFENCES


class ByzantineNode(service.Node):
    misbehave_after = DEFAULT_MISBEHAVE_AFTER

    def __init__(self, config: service.NodeConfig, clock: Callable[[], float] = time.time):
        super().__init__(config, clock)
        self.double_vote: tuple[bytes, bytes] | None = None  # (our prevote, its conflicting twin), encoded
        self.double_block_slot: int | None = None
        self._last_prevote: tuple[Vote, bytes, int] | None = None  # our latest prevote, encoded, cast at (ms)
        self._twins_send, self._twins_receive = trio.open_memory_channel[Block](8)

    def _is_network_running(self) -> bool:
        return self.store.finalized_header().number >= self.misbehave_after

    # --- two prevotes in one round ---------------------------------------------------------------

    def _publish_vote(self, data: bytes) -> None:
        super()._publish_vote(data)
        vote = self._own_prevote(data)
        if vote is not None and (self._last_prevote is None or vote.round > self._last_prevote[0].round):
            self._last_prevote = (vote, data, self._now_ms())  # just cast, not a resend
            if self.double_block_slot is not None:
                self._double_vote()
        if self.double_vote is not None and data == self.double_vote[0]:
            super()._publish_vote(self.double_vote[1])  # each time the gadget (re)sends the first

    def _is_voting(self) -> bool:
        """Whether we vote in step with the others: we prevoted in the gadget's current round within
        the last two slots, and the latest round another voter was seen in is that round or the one
        before it (the others keep votes up to `future_rounds` ahead of theirs). An author enters
        the next round on its own block, before the others have it, so at authoring time it is
        usually one round ahead. (A node that lags, just started or catching up through later
        rounds, sends votes that the others ignore as old.)"""
        last, gadget = self._last_prevote, self.gadget
        key = self.config.session_key
        if last is None or key is None or last[0].round != gadget.round or self._now_ms() - last[2] > 2 * self.slot_ms:
            return False
        others = [r for voter, r in gadget.sightings.items() if voter != key.public]
        return bool(others) and gadget.round - 1 <= max(others) <= gadget.round

    def _double_vote(self) -> None:
        """Sign and gossip a twin of our current round's prevote (once)."""
        if self.double_vote is not None or not self._is_voting() or self._last_prevote is None:
            return
        vote, data, _at = self._last_prevote
        twin = self._sign_twin(vote)
        if twin is not None:
            self.double_vote = (data, twin)
            super()._publish_vote(twin)

    def _own_prevote(self, data: bytes) -> Vote | None:
        key = self.config.session_key
        vote = decode_message(data)
        if key is None or not isinstance(vote, Vote) or vote.step != PREVOTE or vote.voter != key.public:
            return None
        return vote

    def _sign_twin(self, vote: Vote) -> bytes | None:
        """Another prevote for the same set and round, for the target's parent, signed with our
        key past the signing record (which would refuse it)."""
        key = self.config.session_key
        target = self.store.get_header(vote.target_hash)
        if key is None or target is None or target.number == 0:
            return None
        unsigned = Vote(vote.set_id, vote.round, PREVOTE, target.parent_hash, target.number - 1, key.public, b"")
        twin = Vote(unsigned.set_id, unsigned.round, PREVOTE, unsigned.target_hash, unsigned.target_number,
                    key.public, key.sign(unsigned.payload(self.store.genesis_hash)))
        log.warning("byzantine: double prevote set=%d round=%d targets=#%d,#%d", vote.set_id, vote.round,
                    vote.target_number, twin.target_number)
        return twin.encode()

    # --- two blocks for one slot -----------------------------------------------------------------

    def try_author(self, slot: int) -> ImportResult | None:
        result = super().try_author(slot)
        if result is not None and self.double_block_slot is None and self._is_network_running() and self._is_voting():
            block = self.store.get_block(result.block_hash)
            twin = self._seal_twin(block, slot) if block is not None else None
            if block is not None and twin is not None:
                self.double_block_slot = slot
                self._twins_send.send_nowait(twin)
                log.warning("byzantine: double block slot=%d number=%d hashes=0x%s,0x%s", slot, block.header.number,
                            block.header.hash.hex()[:16], twin.header.hash.hex()[:16])
                self._double_vote()
        return result

    def _seal_twin(self, block: Block, slot: int) -> Block | None:
        """Another block for `slot` on the same parent (a timestamp 1 ms later), sealed with our
        key past the signing record, never imported here."""
        key = self.config.session_key
        parent = self.store.get_header(block.header.parent_hash)
        if key is None or parent is None:
            return None
        state = self.store.state_at(parent.hash)
        author = find_slot_author(state, slot, key.public)
        if author is None:
            return None
        unsealed, _executed = BlockBuilder(state, parent, slot, author, slot * self.slot_ms + 1).build()
        return Block(unsealed.header.with_seal(key.sign(unsealed.header.hash)), unsealed.extrinsics)

    async def run_authoring(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._publish_twins)
            await nursery.start(super().run_authoring)
            task_status.started()

    async def _publish_twins(self) -> None:
        async for twin in self._twins_receive:
            if self.network is not None:
                await self.network.publish_block(twin.encode())

    # --- no evidence against itself ----------------------------------------------------------------

    def _submit_report(self, kind: str, encode: Callable[[Any], bytes]) -> None:
        log.info("byzantine: equivocation report withheld kind=%s", kind)

    async def on_gossip_transactions(self, batch: list[bytes], peer: str) -> PeerVerdict:
        kept = [data for data in batch if not is_offence_report(data)]
        if not kept:
            return PeerVerdict.IGNORE
        return await super().on_gossip_transactions(kept, peer)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--misbehave-after" in args[:-1]:
        at = args.index("--misbehave-after")
        ByzantineNode.misbehave_after = int(args[at + 1])
        del args[at: at + 2]
    service.Node = ByzantineNode  # type: ignore[misc]  # what `gensyn-node run` builds
    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
