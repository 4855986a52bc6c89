"""The bond of one stash: reading and writing its ledger, and the steps that move money in and
out of it (bond, unbond, withdraw, slash, kill). Every step checks first and writes after, so a
failed call never leaves half a bond behind.

The bond is reserved in Balances. Bonding adds a consumer reference to the stash (Substrate's
`inc_consumers`), so Balances never reaps an account that still has a ledger.
"""

from __future__ import annotations

from runtime.context import BlockContext
from runtime.frame import ArithmeticOverflow
from runtime.pallets.balances import currency
from runtime.pallets.staking import events, storage
from runtime.pallets.staking.types import StakingLedger, UnlockChunk
from runtime.pallets.system.account import get_account, put_account
from runtime.storage import OverlayState

MAX_BALANCE = (1 << 128) - 1


# --- reads -----------------------------------------------------------------------------------------


def get_ledger(state: OverlayState, stash: bytes) -> StakingLedger | None:
    raw = storage.Ledger.get(state, stash)
    return None if raw is None else StakingLedger.from_scale(raw)


def get_min_validator_bond(ctx: BlockContext) -> int:
    value = storage.MinValidatorBond.get(ctx.state)
    return ctx.params.min_validator_bond if value is None else value


def get_validator_count(ctx: BlockContext) -> int:
    value = storage.ValidatorCount.get(ctx.state)
    return ctx.params.max_validators if value is None else value


def is_validator(state: OverlayState, stash: bytes) -> bool:
    return storage.Validators.contains(state, stash)


def compute_unbond_era(ctx: BlockContext) -> int:
    """The era at which value unbonded now becomes withdrawable."""
    return storage.CurrentEra.get(ctx.state) + ctx.params.bonding_duration


def compute_checked_add(a: int, b: int) -> int:
    """a + b as a Balance; raises ArithmeticOverflow past u128."""
    total = a + b
    if total > MAX_BALANCE:
        raise ArithmeticOverflow("staked balance would overflow")
    return total


# --- writes ----------------------------------------------------------------------------------------


def put_ledger(state: OverlayState, ledger: StakingLedger) -> None:
    storage.Ledger.insert(state, ledger.stash, ledger.to_scale())


def _change_consumers(state: OverlayState, who: bytes, delta: int) -> None:
    record = get_account(state, who)
    record.consumers = max(record.consumers + delta, 0)
    put_account(state, who, record)


def apply_bond(ctx: BlockContext, stash: bytes, value: int, payee: object) -> None:
    """Reserve `value` and open the stash's ledger (the caller has checked it is not bonded)."""
    currency.reserve(ctx, stash, value)
    _change_consumers(ctx.state, stash, +1)
    storage.Bonded.insert(ctx.state, stash, stash)
    storage.Payee.insert(ctx.state, stash, payee)
    put_ledger(ctx.state, StakingLedger(stash, value, value, []))
    events.deposit(ctx, "Bonded", {"stash": stash, "amount": value})


def apply_bond_extra(ctx: BlockContext, ledger: StakingLedger, extra: int, emit: bool = True) -> None:
    """Reserve `extra` more of the stash's free balance and add it to the active bond."""
    total = compute_checked_add(ledger.total, extra)
    active = compute_checked_add(ledger.active, extra)
    currency.reserve(ctx, ledger.stash, extra)
    ledger.total, ledger.active = total, active
    put_ledger(ctx.state, ledger)
    if emit:
        events.deposit(ctx, "Bonded", {"stash": ledger.stash, "amount": extra})


def apply_unbond(ctx: BlockContext, ledger: StakingLedger, value: int, era: int) -> None:
    """Move `value` from active into the chunk unlocking at `era` (merged with the last chunk
    when that one unlocks at the same era)."""
    ledger.active -= value
    if ledger.unlocking and ledger.unlocking[-1].era == era:
        ledger.unlocking[-1].value += value
    else:
        ledger.unlocking.append(UnlockChunk(value, era))
    put_ledger(ctx.state, ledger)
    events.deposit(ctx, "Unbonded", {"stash": ledger.stash, "amount": value})


def compute_withdrawable(ledger: StakingLedger, current_era: int) -> tuple[int, list[UnlockChunk]]:
    """(the value of the chunks unlocked by `current_era`, the chunks still locked)."""
    unlocked = sum(c.value for c in ledger.unlocking if c.era <= current_era)
    return unlocked, [c for c in ledger.unlocking if c.era > current_era]


def apply_withdraw(ctx: BlockContext, ledger: StakingLedger, amount: int, remaining: list[UnlockChunk]) -> None:
    """Unreserve `amount` of unlocked chunks and keep the `remaining` ones."""
    currency.unreserve(ctx, ledger.stash, amount)
    ledger.total -= amount
    ledger.unlocking = remaining
    put_ledger(ctx.state, ledger)
    if amount:
        events.deposit(ctx, "Withdrawn", {"stash": ledger.stash, "amount": amount})


def apply_kill_stash(ctx: BlockContext, ledger: StakingLedger) -> None:
    """Unreserve everything the ledger holds and forget the stash (Substrate's `kill_stash`)."""
    stash, state = ledger.stash, ctx.state
    freed = currency.unreserve(ctx, stash, ledger.total)
    apply_chill(ctx, stash)
    key = storage.SessionKeys.get(state, stash)
    if key is not None:
        storage.KeyOwner.remove(state, key)
        storage.SessionKeys.remove(state, stash)
    for item in (storage.Bonded, storage.Ledger, storage.Payee):
        item.remove(state, stash)
    _change_consumers(state, stash, -1)
    if freed:
        events.deposit(ctx, "Withdrawn", {"stash": stash, "amount": freed})


def apply_chill(ctx: BlockContext, stash: bytes) -> None:
    """Stop `stash` from being a validator candidate (from the next election on)."""
    if is_validator(ctx.state, stash):
        storage.Validators.remove(ctx.state, stash)
        events.deposit(ctx, "Chilled", {"stash": stash})


def apply_reduce(ledger: StakingLedger, amount: int) -> None:
    """Take `amount` off the ledger: active first, then the chunks closest to unlocking."""
    from_active = min(amount, ledger.active)
    ledger.active -= from_active
    left = amount - from_active
    for chunk in ledger.unlocking:
        taken = min(left, chunk.value)
        chunk.value -= taken
        left -= taken
    ledger.unlocking = [c for c in ledger.unlocking if c.value]
    ledger.total -= amount - left

