"""The agenda: timers by block. A job, dispute or unbonding that must act at block b puts an
item under b; `on_initialize` of b takes them. An item whose owner moved on (its timer no
longer b) is skipped, so a timer is never cancelled, only superseded."""

from __future__ import annotations

from typing import Any

from runtime.context import BlockContext
from runtime.pallets.ml_compute import storage
from runtime.pallets.ml_compute.errors import ERRORS
from runtime.pallets.ml_compute.types import MAX_AGENDA_ITEMS, MlConfig


def get_config(ctx: BlockContext) -> MlConfig:
    """The pallet's config (cached for the block: it only changes at genesis or upgrade)."""
    cached = ctx.extra.get("ml_compute.config")
    if cached is None:
        raw = storage.Config.get(ctx.state)
        cached = ctx.extra["ml_compute.config"] = MlConfig() if raw is None else MlConfig.from_scale(raw)
    return cached


MAX_AGENDA_SHIFT = 64


def apply_schedule(ctx: BlockContext, block: int, item: Any) -> int:
    """Put `item` on the agenda of `block` (a later block than this one), or of the first
    block after it with room; returns the block it went to."""
    for at in range(max(block, ctx.block_number + 1), max(block, ctx.block_number + 1) + MAX_AGENDA_SHIFT):
        items = storage.Agenda.get(ctx.state, at)
        if len(items) < MAX_AGENDA_ITEMS:
            storage.Agenda.insert(ctx.state, at, items + [item])
            return at
    raise ERRORS("AgendaFull", f"blocks {block}.. already have {MAX_AGENDA_ITEMS} timers each")


def take_due(ctx: BlockContext) -> list[Any]:
    """The items due in this block, removed from the agenda."""
    items = storage.Agenda.get(ctx.state, ctx.block_number)
    if items:
        storage.Agenda.remove(ctx.state, ctx.block_number)
    return items
