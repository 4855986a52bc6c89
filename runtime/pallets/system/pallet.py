"""System pallet declaration and hooks."""

from __future__ import annotations

from runtime.codec.scale import u16
from runtime.context import BlockContext
from runtime.crypto import SS58_PREFIX
from runtime.frame import Pallet
from runtime.pallets.indices import SYSTEM
from runtime.pallets.system import storage
from runtime.pallets.system.calls import CALLS
from runtime.pallets.system.errors import ERRORS
from runtime.pallets.system.events import EVENTS
from runtime.types import BlockNumber

# How many recent block hashes System.BlockHash keeps (block 0's is kept for ever).
BLOCK_HASH_COUNT = 2400


def on_initialize(ctx: BlockContext) -> None:
    """Record the block's number and its parent's hash; forget last block's events."""
    state = ctx.state
    storage.Number.put(state, ctx.block_number)
    storage.ParentHash.put(state, ctx.parent_hash)
    if ctx.block_number > 0:
        storage.BlockHash.insert(state, ctx.block_number - 1, ctx.parent_hash)
    storage.Events.kill(state)
    storage.EventCount.kill(state)


PALLET = Pallet(
    name="System",
    index=SYSTEM,
    calls=CALLS,
    storage=storage.ITEMS,
    events=EVENTS,
    errors=ERRORS,
    constants=[
        ("BlockHashCount", BlockNumber, lambda params: BLOCK_HASH_COUNT, "Maximum number of block number to block hash mappings to keep."),
        ("SS58Prefix", u16, lambda params: SS58_PREFIX, "The designated SS58 prefix of this chain."),
    ],
    on_initialize=on_initialize,
)
