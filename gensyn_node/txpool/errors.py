"""Why the tx pool refuses a transaction (Substrate's author RPC error codes in brackets)."""

from __future__ import annotations

from runtime.transaction_validity import TransactionValidityError


class PoolError(Exception):
    """Base of the reasons the pool refuses a transaction; `reason` is what the RPC reports."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class AlreadyImported(PoolError):
    """The same transaction (by hash) is already in the pool [1013]."""


class TemporarilyBanned(PoolError):
    """The transaction was found invalid recently and is refused until its ban ends [1012]."""


class PoolFull(PoolError):
    """The pool is at its limits and holds nothing worse to evict [1016 Immediately Dropped]."""


class TooLowPriority(PoolError):
    """A ready transaction provides the same tag with at least this priority [1014]."""

    def __init__(self, old: int, new: int):
        super().__init__(f"Priority is too low: ({old} vs {new})")
        self.old = old
        self.new = new


class CycleDetected(PoolError):
    """The transaction would replace one it depends on [1015]."""


class Invalid(PoolError):
    """Validation rejected the transaction [1010 Invalid / 1011 Unknown Transaction].

    `error` is the `TransactionValidityError`; `kind` and `reason` are copied from it.
    """

    def __init__(self, error: TransactionValidityError):
        super().__init__(error.reason)
        self.error = error
        self.kind = error.kind

    def __str__(self) -> str:
        return str(self.error)
