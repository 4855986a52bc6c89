"""The node's side of the finality gadget: the chain access it needs over the chain store
(headers, best and finalized, the voter set at a block, finalizing with a justification), and
the gadget's construction with the node's key, signing record and clock.

Data path step: votes come in by gossip (`Node.on_gossip_vote`), justifications by sync
(`Node.import_justification`); the gadget's outgoing votes go out through `broadcast`; a block
it finalizes is written with its justification by `ChainStore.set_finalized`, then the node
notifies RPC subscribers and transaction watchers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from consensus.authorities import get_voter_set
from consensus.finality import Equivocation, FinalityConfig, FinalityGadget
from consensus.finality_messages import VoterSet
from consensus.signing import Signer, SigningRecord
from gensyn_node.chain_db import BestChange, ChainStore
from runtime.block import Header

log = logging.getLogger(__name__)
VOTER_SET_CACHE = 4096


class StoreFinalityChain:
    """`consensus.finality.FinalityChain` over the node's chain store."""

    def __init__(self, store: ChainStore, on_finalized: Callable[[Header, BestChange | None], None]):
        self.store = store
        self.on_finalized = on_finalized
        self._voter_sets: dict[bytes, VoterSet] = {}

    def get_header(self, block_hash: bytes) -> Header | None:
        return self.store.get_header(block_hash)

    def hash_at(self, number: int) -> bytes | None:
        return self.store.hash_at(number)

    def best_header(self) -> Header:
        return self.store.best_header()

    def finalized_header(self) -> Header:
        return self.store.finalized_header()

    def get_voter_set(self, block_hash: bytes) -> VoterSet:
        voters = self._voter_sets.get(block_hash)
        if voters is None:
            voters = get_voter_set(self.store.state_at(block_hash))
            if len(self._voter_sets) >= VOTER_SET_CACHE:
                self._voter_sets.clear()
            self._voter_sets[block_hash] = voters
        return voters

    def finalize(self, block_hash: bytes, justification: bytes) -> None:
        change = self.store.set_finalized(block_hash, justification)
        self.on_finalized(self.store.require_header(block_hash), change)


def make_gadget(store: ChainStore, slot_ms: int, now_ms: int, broadcast: Callable[[bytes], None],
                on_finalized: Callable[[Header, BestChange | None], None], signer: Signer | None, record: SigningRecord,
                on_equivocation: Callable[[Equivocation], None] | None = None,
                on_unknown_target: Callable[[bytes, int], None] | None = None) -> FinalityGadget:
    """The gadget with timeouts in slots: precommit after 2 slots, an idle round after 5,
    votes resent every 2 slots."""
    config = FinalityConfig(genesis_hash=store.genesis_hash, precommit_wait_ms=2 * slot_ms,
                            idle_round_ms=5 * slot_ms, rebroadcast_ms=2 * slot_ms)
    chain = StoreFinalityChain(store, on_finalized)
    return FinalityGadget(chain, config, broadcast, now_ms, signer=signer, record=record,
                          on_equivocation=on_equivocation, on_unknown_target=on_unknown_target)
