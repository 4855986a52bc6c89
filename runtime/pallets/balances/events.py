"""Balances events (Substrate's indices and field names)."""

from typing import Any

from runtime.codec.scale import Variant
from runtime.context import BlockContext
from runtime.frame import event_enum
from runtime.pallets.indices import BALANCES
from runtime.types import AccountId, Balance

_who_amount = [("who", AccountId), ("amount", Balance)]
EVENTS = event_enum("Balances", [
    Variant("Endowed", 0, [("account", AccountId), ("free_balance", Balance)], ("An account was created with some free balance.",)),
    Variant("DustLost", 1, [("account", AccountId), ("amount", Balance)], ("An account was removed whose balance was non-zero but below ExistentialDeposit.",)),
    Variant("Transfer", 2, [("from", AccountId), ("to", AccountId), ("amount", Balance)], ("Transfer succeeded.",)),
    Variant("Reserved", 4, list(_who_amount), ("Some balance was reserved (moved from free to reserved).",)),
    Variant("Unreserved", 5, list(_who_amount), ("Some balance was unreserved (moved from reserved to free).",)),
    Variant("Deposit", 7, list(_who_amount), ("Some amount was deposited (e.g. for transaction fees).",)),
    Variant("Withdraw", 8, list(_who_amount), ("Some amount was withdrawn from the account (e.g. for transaction fees).",)),
    Variant("Slashed", 9, list(_who_amount), ("Some amount was removed from the account (e.g. for misbehavior).",)),
    Variant("Minted", 10, list(_who_amount), ("Some amount was minted into an account.",)),
    Variant("Burned", 11, list(_who_amount), ("Some amount was burned from an account.",)),
])
TRANSFER_INDEX = EVENTS.by_name["Transfer"].index
DEPOSIT_INDEX = EVENTS.by_name["Deposit"].index
WITHDRAW_INDEX = EVENTS.by_name["Withdraw"].index


def deposit(ctx: BlockContext, name: str, payload: Any = None) -> None:
    ctx.deposit_event(BALANCES, EVENTS, name, payload)


def deposit_who_amount(ctx: BlockContext, event_index: int, who: bytes, amount: int) -> None:
    """Hot path of Deposit/Withdraw: fields encoded directly (checked against EVENTS in tests)."""
    ctx.deposit_event_raw(BALANCES, event_index, who + amount.to_bytes(16, "little"))
