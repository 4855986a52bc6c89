"""Transaction payment pallet declaration."""

from runtime.codec.scale import u128
from runtime.frame import Pallet
from runtime.pallets.indices import TRANSACTION_PAYMENT
from runtime.pallets.transaction_payment import storage
from runtime.pallets.transaction_payment.errors import ERRORS
from runtime.pallets.transaction_payment.events import EVENTS
from runtime.pallets.transaction_payment.fees import on_finalize

PALLET = Pallet(
    name="TransactionPayment",
    index=TRANSACTION_PAYMENT,
    storage=storage.ITEMS,
    events=EVENTS,
    errors=ERRORS,
    constants=[
        ("BaseFee", u128, lambda params: params.base_fee, "The fee every transaction pays."),
        ("LengthFee", u128, lambda params: params.length_fee, "The fee per byte of a transaction."),
    ],
    on_finalize=on_finalize,
)
