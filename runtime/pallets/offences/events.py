"""Offences events."""

from typing import Any

from runtime.codec.scale import Variant, u8
from runtime.context import BlockContext
from runtime.frame import event_enum
from runtime.pallets.indices import OFFENCES
from runtime.types import AccountId, Balance

EVENTS = event_enum("Offences", [
    Variant("Equivocation", 0, [("offender", AccountId), ("kind", u8), ("slashed", Balance), ("reward", Balance)],
            ("A validator equivocated (kind 0: two votes in one round and step, 1: two blocks for one slot) and was slashed.",)),
])


def deposit(ctx: BlockContext, name: str, payload: Any = None) -> None:
    ctx.deposit_event(OFFENCES, EVENTS, name, payload)
