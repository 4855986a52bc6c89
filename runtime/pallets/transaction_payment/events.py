"""Transaction payment events."""

from runtime.codec.scale import Variant
from runtime.context import BlockContext
from runtime.frame import event_enum
from runtime.pallets.indices import TRANSACTION_PAYMENT
from runtime.types import AccountId, Balance

EVENTS = event_enum("TransactionPayment", [
    Variant("TransactionFeePaid", 0, [("who", AccountId), ("actual_fee", Balance), ("tip", Balance)],
            ("A transaction fee `actual_fee`, of which `tip` was added to the minimum inclusion fee, has been paid by `who`.",)),
])
FEE_PAID_INDEX = 0


def deposit_fee_paid(ctx: BlockContext, who: bytes, fee: int, tip: int) -> None:
    ctx.deposit_event_raw(TRANSACTION_PAYMENT, FEE_PAID_INDEX, who + fee.to_bytes(16, "little") + tip.to_bytes(16, "little"))
