"""Fee computation and collection (pallet_transaction_payment's `compute_fee` and the
`ChargeTransactionPayment` signed extension)."""

from __future__ import annotations

from runtime.context import BlockContext
from runtime.pallets.balances import currency
from runtime.pallets.system.account import AccountRecord
from runtime.pallets.transaction_payment.storage import TreasuryAccount
from runtime.params import ChainParameters
from runtime.transaction_validity import InvalidTransaction


def compute_fee(params: ChainParameters, length: int, weight: int, tip: int) -> int:
    """base + length · length_fee + weight · weight_fee / 10^6 + tip (integer, rounded down)."""
    return params.base_fee + length * params.length_fee + weight * params.weight_fee_per_million // 1_000_000 + tip


def compute_priority(fee: int, tip: int, weight: int, length: int) -> int:
    """Tip per unit of block resource, as Substrate does: a tip buys priority."""
    return tip * 1_000_000 // max(weight, 1) + tip // max(length, 1)


def check_can_pay(ctx: BlockContext, record: AccountRecord, fee: int) -> None:
    """Verify that the account can pay `fee` and stay above the existential deposit (a fee
    never reaps an account); raises InvalidTransaction::Payment otherwise."""
    if record.providers == 0:
        raise InvalidTransaction("Payment", "the signer's account does not exist")
    if record.free < fee or record.total - fee < ctx.params.existential_deposit:
        raise InvalidTransaction("Payment", f"cannot pay the fee of {fee} (free balance {record.free})")


def take_fee(ctx: BlockContext, record: AccountRecord, fee: int, tip: int) -> None:
    """Take the fee out of `record` (the caller writes it) into the block's fee pot; it stays in
    total issuance until `on_finalize` pays it out."""
    check_can_pay(ctx, record, fee)
    record.free -= fee
    ctx.extra["fee_pot"] = ctx.extra.get("fee_pot", 0) + fee
    ctx.extra["tip_pot"] = ctx.extra.get("tip_pot", 0) + tip


def on_finalize(ctx: BlockContext) -> None:
    """Pay the block's fees: the treasury's share of the fees without tips, the rest to the author."""
    fee = ctx.extra.pop("fee_pot", 0)
    tip = ctx.extra.pop("tip_pot", 0)
    if not fee:
        return
    treasury_share = (fee - tip) * ctx.params.treasury_percent // 100
    author_share = fee - treasury_share
    if ctx.author is not None:
        currency.credit_from_pot(ctx, ctx.author, author_share)
    else:
        treasury_share = fee
    if treasury_share:
        currency.credit_from_pot(ctx, TreasuryAccount.get(ctx.state), treasury_share)
