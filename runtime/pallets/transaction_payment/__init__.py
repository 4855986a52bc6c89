"""Transaction payment: a fee from the call's weight plus its length, plus an optional tip that
raises priority; fees go to the block author, a share to the treasury account."""

from runtime.pallets.transaction_payment.pallet import PALLET

__all__ = ["PALLET"]
