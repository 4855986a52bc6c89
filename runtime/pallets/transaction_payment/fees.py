"""Fee computation and collection (pallet_transaction_payment's `compute_fee` and the
`ChargeTransactionPayment` signed extension)."""

from __future__ import annotations

from runtime.context import BlockContext
from runtime.frame import DispatchError
from runtime.pallets.balances import currency
from runtime.pallets.transaction_payment.events import deposit_fee_paid
from runtime.pallets.transaction_payment.storage import TreasuryAccount
from runtime.params import ChainParameters
from runtime.transaction_validity import InvalidTransaction


def compute_fee(params: ChainParameters, length: int, weight: int, tip: int) -> int:
    """base + length · length_fee + weight · weight_fee / 10^6 + tip (integer, rounded down)."""
    return params.base_fee + length * params.length_fee + weight * params.weight_fee_per_million // 1_000_000 + tip


def compute_priority(fee: int, tip: int, weight: int, length: int) -> int:
    """Tip per unit of block resource, as Substrate does: a tip buys priority."""
    return tip * 1_000_000 // max(weight, 1) + tip // max(length, 1)


def withdraw_fee(ctx: BlockContext, who: bytes, fee: int) -> None:
    """Take the fee from `who` keeping the account alive; raise InvalidTransaction::Payment if
    it cannot pay (such a transaction never enters a block)."""
    try:
        currency.withdraw(ctx, who, fee, keep_alive=True)
    except DispatchError as exc:
        raise InvalidTransaction("Payment", f"cannot pay the fee of {fee}: {exc}") from None


def distribute_fee(ctx: BlockContext, who: bytes, fee: int, tip: int) -> None:
    """Pay the withdrawn fee out: the treasury's share, the rest (with the tip) to the author."""
    treasury_share = (fee - tip) * ctx.params.treasury_percent // 100
    author_share = fee - treasury_share
    if ctx.author is not None and author_share:
        currency.deposit_creating(ctx, ctx.author, author_share)
    if treasury_share:
        currency.deposit_creating(ctx, TreasuryAccount.get(ctx.state), treasury_share)
    deposit_fee_paid(ctx, who, fee, tip)
