"""Sudo events."""

from typing import Any

from runtime.codec.scale import Enum, Option, Variant, unit
from runtime.context import BlockContext
from runtime.frame import event_enum
from runtime.pallets.indices import SUDO
from runtime.types import AccountId, DispatchError

DispatchResult = Enum(("Result",), [Variant("Ok", 0, [(None, unit)]), Variant("Err", 1, [(None, DispatchError)])])

EVENTS = event_enum("Sudo", [
    Variant("Sudid", 0, [("sudo_result", DispatchResult)], ("A sudo call just took place.",)),
    Variant("KeyChanged", 1, [("old", Option(AccountId)), ("new", AccountId)], ("The sudo key has been updated.",)),
])


def deposit(ctx: BlockContext, name: str, payload: Any = None) -> None:
    ctx.deposit_event(SUDO, EVENTS, name, payload)
