"""Transaction validity, as Substrate's `sp_runtime::transaction_validity`.

`validate_transaction` of the executive returns a `ValidTransaction` or raises
`InvalidTransaction`; the tx pool orders and queues by the tags and priority it carries.
"""

from __future__ import annotations

from dataclasses import dataclass

# Substrate's InvalidTransaction variants, by index (the index is what 1010 errors and metadata carry).
INVALID_KINDS = (
    "Call",
    "Payment",
    "Future",
    "Stale",
    "BadProof",
    "AncientBirthBlock",
    "ExhaustsResources",
    "Custom",
    "BadMandatory",
    "MandatoryValidation",
    "BadSigner",
)


@dataclass(frozen=True, slots=True)
class ValidTransaction:
    """What the pool needs to order a valid transaction.

    `requires`/`provides` are opaque tags: a transaction is ready once every tag it requires is
    provided by the chain or by a ready transaction (for nonces: tag = account ++ nonce).
    `longevity` is the number of blocks after which it must be revalidated (its era's end).
    """

    priority: int
    requires: tuple[bytes, ...]
    provides: tuple[bytes, ...]
    longevity: int
    propagate: bool = True


class TransactionValidityError(Exception):
    """Base of the errors that keep a transaction out of the pool and out of a block."""

    kind: str = "Unknown"

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.kind}: {self.reason}"


class InvalidTransaction(TransactionValidityError):
    """The transaction is invalid and will not become valid (e.g. bad signature, stale nonce)."""

    def __init__(self, kind: str, reason: str):
        if kind not in INVALID_KINDS:
            raise ValueError(f"unknown InvalidTransaction kind {kind!r}")
        super().__init__(reason)
        self.kind = kind


class UnknownTransaction(TransactionValidityError):
    """Validity cannot be determined now (e.g. the signer's account does not exist yet)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.kind = "CannotLookup"
