"""Timestamp pallet declaration and hooks."""

from runtime.context import BlockContext
from runtime.frame import Pallet
from runtime.pallets.indices import TIMESTAMP
from runtime.pallets.timestamp import storage
from runtime.pallets.timestamp.calls import CALLS
from runtime.pallets.timestamp.errors import ERRORS
from runtime.pallets.timestamp.events import EVENTS
from runtime.types import Moment


def on_finalize(ctx: BlockContext) -> None:
    """Verify that the block set its timestamp; forget the flag for the next block."""
    if not storage.DidUpdate.get(ctx.state):
        raise ERRORS("Missing", "the block did not set its timestamp")
    storage.DidUpdate.kill(ctx.state)


PALLET = Pallet(
    name="Timestamp",
    index=TIMESTAMP,
    calls=CALLS,
    storage=storage.ITEMS,
    events=EVENTS,
    errors=ERRORS,
    constants=[("MinimumPeriod", Moment, lambda params: params.slot_duration_ms // 2, "Half the slot duration.")],
    on_finalize=on_finalize,
)
