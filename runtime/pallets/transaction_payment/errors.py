"""Transaction payment has no dispatchable errors (an unpayable fee is an invalid transaction)."""

from runtime.frame import ModuleErrors
from runtime.pallets.indices import TRANSACTION_PAYMENT

ERRORS = ModuleErrors(TRANSACTION_PAYMENT, "TransactionPayment", [])
