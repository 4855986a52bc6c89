"""Timestamp.set: the inherent every block begins with."""

from __future__ import annotations

from typing import Any

from runtime.codec.scale import Compact, u64
from runtime.context import BlockContext
from runtime.frame import Call, ensure_none
from runtime.pallets.timestamp import storage
from runtime.pallets.timestamp.errors import ERRORS


def set_now(ctx: BlockContext, origin: Any, now: int) -> None:
    """Set the current time; must be the block's slot time within the drift bound, and at
    least one slot after the previous block's time."""
    ensure_none(origin)
    state = ctx.state
    if storage.DidUpdate.get(state):
        raise ERRORS("AlreadySet")
    previous = storage.Now.get(state)
    slot_ms = ctx.params.slot_duration_ms
    if previous and now < previous + slot_ms:
        raise ERRORS("TooEarly", f"timestamp {now} is less than one slot after {previous}")
    if abs(now - ctx.slot * slot_ms) > ctx.params.max_timestamp_drift_ms:
        raise ERRORS("TooFarFromSlot", f"timestamp {now} is far from slot {ctx.slot}'s time")
    storage.Now.put(state, now)
    storage.DidUpdate.put(state, True)
    ctx.timestamp = now


CALLS = [Call("set", 0, [("now", Compact(u64))], set_now, weight=1_000_000, pays_fee=False, dispatch_class="Mandatory",
              docs="Set the current time (an inherent).")]
