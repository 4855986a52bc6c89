"""Sudo calls: dispatch a call as Root, or hand the key on."""

from __future__ import annotations

from typing import Any

from runtime.context import BlockContext
from runtime.frame import ROOT, Call, DispatchError, ensure_signed
from runtime.pallets.balances.calls import lookup
from runtime.pallets.sudo import storage
from runtime.pallets.sudo.errors import ERRORS
from runtime.pallets.sudo.events import deposit
from runtime.types import MultiAddress


def ensure_sudo(ctx: BlockContext, origin: Any) -> bytes:
    """Verify that the origin is the sudo key."""
    who = ensure_signed(origin)
    if who != storage.Key.get(ctx.state):
        raise ERRORS("RequireSudo")
    return who


def make_calls(call_type: Any, runtime_ref: dict[str, Any]) -> list[Call]:
    """The calls take a `RuntimeCall` argument, so they are made per runtime."""

    def sudo(ctx: BlockContext, origin: Any, call: Any) -> None:
        """Dispatch a call with Root origin; the inner call's failure is reported in `Sudid`."""
        ensure_sudo(ctx, origin)
        runtime = runtime_ref["runtime"]
        pallet_name, (call_name, args) = call
        inner = (runtime.pallets_by_name[pallet_name].index, call_name, args or {})
        ctx.start_layer()
        try:
            runtime.dispatch(ctx, ROOT, inner)
        except DispatchError as exc:
            ctx.rollback_layer()
            deposit(ctx, "Sudid", {"sudo_result": ("Err", exc.error)})
        else:
            ctx.commit_layer()
            deposit(ctx, "Sudid", {"sudo_result": ("Ok", None)})

    def set_key(ctx: BlockContext, origin: Any, new: Any) -> None:
        """Authenticates the current sudo key and sets the given AccountId as the new sudo key."""
        old = ensure_sudo(ctx, origin)
        new_key = lookup(new)
        storage.Key.put(ctx.state, new_key)
        deposit(ctx, "KeyChanged", {"old": old, "new": new_key})

    def sudo_weight(call: Any) -> int:
        runtime = runtime_ref["runtime"]
        pallet_name, (call_name, args) = call
        return 10_000_000 + runtime.pallets_by_name[pallet_name].calls_by_name[call_name].get_weight(args or {})

    return [
        Call("sudo", 0, [("call", call_type)], sudo, weight=sudo_weight, docs="Dispatch a call with Root origin."),
        Call("set_key", 2, [("new", MultiAddress)], set_key, weight=10_000_000, docs="Set a new sudo key."),
    ]
