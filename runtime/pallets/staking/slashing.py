"""Slashing: the entry point the consensus (equivocation evidence) and ML-compute (fraud proofs)
parts call to burn part of a staker's bond. Not a call: those parts check the evidence, then
call `slash` inside their own dispatch, so a failure rolls back with their call.
"""

from __future__ import annotations

from runtime.context import BlockContext
from runtime.pallets.balances import currency
from runtime.pallets.staking import events, storage
from runtime.pallets.staking.errors import ERRORS
from runtime.pallets.staking.ledger import (
    apply_chill,
    apply_reduce,
    get_ledger,
    get_min_validator_bond,
    put_ledger,
)
from runtime.pallets.staking.types import MAX_OFFENCE_REASON_LEN, MAX_OFFENCES_PER_VALIDATOR, PPM


def validate_slash(fraction_ppm: int, reason: bytes) -> None:
    """Verify that the fraction is a share of the bond and the reason fits its record."""
    if not isinstance(fraction_ppm, int) or not 0 <= fraction_ppm <= PPM:
        raise ERRORS("InvalidSlashFraction", f"slash fraction {fraction_ppm!r} ppm is not within 0..={PPM}")
    if len(reason) > MAX_OFFENCE_REASON_LEN:
        raise ERRORS("OffenceReasonTooLong", f"an offence reason is at most {MAX_OFFENCE_REASON_LEN} bytes")


def compute_slash_amount(bonded: int, fraction_ppm: int) -> int:
    """The part of `bonded` that `fraction_ppm` parts per million take (rounded down)."""
    return bonded * fraction_ppm // PPM


def apply_offence_record(ctx: BlockContext, staker: bytes, fraction_ppm: int, amount: int, reason: bytes) -> None:
    """Append the offence to the staker's record, keeping the last MAX_OFFENCES_PER_VALIDATOR."""
    record = {"era": storage.CurrentEra.get(ctx.state), "block": ctx.block_number,
              "fraction_ppm": fraction_ppm, "amount": amount, "reason": bytes(reason)}
    history = storage.Offences.get(ctx.state, staker) + [record]
    storage.Offences.insert(ctx.state, staker, history[-MAX_OFFENCES_PER_VALIDATOR:])


def slash(ctx: BlockContext, validator: bytes, fraction_ppm: int, reason: bytes) -> int:
    """Burn `fraction_ppm`/1e6 of `validator`'s bond (active first, then unlocking chunks),
    record the offence, and chill the validator if its active bond falls below the minimum.
    Returns the amount slashed (0 for an account that is not bonded)."""
    validate_slash(fraction_ppm, reason)
    ledger = get_ledger(ctx.state, validator)
    if ledger is None:
        return 0
    amount = currency.slash_reserved(ctx, validator, compute_slash_amount(ledger.total, fraction_ppm))
    apply_reduce(ledger, amount)
    put_ledger(ctx.state, ledger)
    apply_offence_record(ctx, validator, fraction_ppm, amount, reason)
    events.deposit(ctx, "Slashed", {"staker": validator, "amount": amount})
    if ledger.active < get_min_validator_bond(ctx):
        apply_chill(ctx, validator)
    return amount
