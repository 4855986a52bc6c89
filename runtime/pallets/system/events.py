"""System events: Substrate's field names, so clients read success and failure by name."""

from typing import Any

from runtime.codec.scale import Variant, u32
from runtime.context import BlockContext
from runtime.frame import event_enum
from runtime.pallets.indices import SYSTEM
from runtime.types import AccountId, DispatchError, DispatchInfo, Hash

EVENTS = event_enum("System", [
    Variant("ExtrinsicSuccess", 0, [("dispatch_info", DispatchInfo)], ("An extrinsic completed successfully.",)),
    Variant("ExtrinsicFailed", 1, [("dispatch_error", DispatchError), ("dispatch_info", DispatchInfo)], ("An extrinsic failed.",)),
    Variant("CodeUpdated", 2, [], ("The runtime was upgraded.",)),
    Variant("NewAccount", 3, [("account", AccountId)], ("A new account was created.",)),
    Variant("KilledAccount", 4, [("account", AccountId)], ("An account was reaped.",)),
    Variant("Remarked", 5, [("sender", AccountId), ("hash", Hash)], ("On on-chain remark happened.",)),
    Variant("RuntimeUpgradeScheduled", 6, [("spec_version", u32)], ("A runtime upgrade takes effect from the next block.",)),
])


def deposit(ctx: BlockContext, name: str, payload: Any = None) -> None:
    ctx.deposit_event(SYSTEM, EVENTS, name, payload)
