"""Balances calls (Substrate's indices: transfer_allow_death 0, force_transfer 2,
transfer_keep_alive 3, transfer_all 4)."""

from __future__ import annotations

from typing import Any

from runtime.codec.scale import boolean, compact_u128
from runtime.context import BlockContext
from runtime.frame import Call, DispatchError, ensure_root, ensure_signed
from runtime.pallets.balances import currency
from runtime.types import MultiAddress

TRANSFER_WEIGHT = 50_000_000


def lookup(address: Any) -> bytes:
    """The account a MultiAddress names; only `Id` (and `Address32`) resolve here."""
    kind, value = address
    if kind in ("Id", "Address32"):
        return value
    raise DispatchError(("CannotLookup", None), f"cannot look up a {kind} address")


def transfer_allow_death(ctx: BlockContext, origin: Any, dest: Any, value: int) -> None:
    """Transfer some liquid free balance to another account; the sender may be reaped."""
    currency.transfer(ctx, ensure_signed(origin), lookup(dest), value, keep_alive=False)


def force_transfer(ctx: BlockContext, origin: Any, source: Any, dest: Any, value: int) -> None:
    """Exactly as `transfer_allow_death`, except the origin must be root and the source account
    may be specified."""
    ensure_root(origin)
    currency.transfer(ctx, lookup(source), lookup(dest), value, keep_alive=False)


def transfer_keep_alive(ctx: BlockContext, origin: Any, dest: Any, value: int) -> None:
    """Same as `transfer_allow_death`, but the sender must keep the existential deposit."""
    currency.transfer(ctx, ensure_signed(origin), lookup(dest), value, keep_alive=True)


def transfer_all(ctx: BlockContext, origin: Any, dest: Any, keep_alive: bool) -> None:
    """Transfer the entire transferable balance from the caller account."""
    who = ensure_signed(origin)
    free = currency.free_balance(ctx, who)
    amount = free - ctx.params.existential_deposit if keep_alive else free
    currency.transfer(ctx, who, lookup(dest), max(amount, 0), keep_alive=keep_alive)


CALLS = [
    Call("transfer_allow_death", 0, [("dest", MultiAddress), ("value", compact_u128)], transfer_allow_death, TRANSFER_WEIGHT,
         docs="Transfer some liquid free balance to another account."),
    Call("force_transfer", 2, [("source", MultiAddress), ("dest", MultiAddress), ("value", compact_u128)], force_transfer,
         TRANSFER_WEIGHT, docs="Transfer from any account (Root)."),
    Call("transfer_keep_alive", 3, [("dest", MultiAddress), ("value", compact_u128)], transfer_keep_alive, TRANSFER_WEIGHT,
         docs="Transfer, keeping the sender above the existential deposit."),
    Call("transfer_all", 4, [("dest", MultiAddress), ("keep_alive", boolean)], transfer_all, TRANSFER_WEIGHT,
         docs="Transfer the entire transferable balance from the caller account."),
]
