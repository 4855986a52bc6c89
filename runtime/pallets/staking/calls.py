"""Staking calls, with Substrate's indices: bond 0, bond_extra 1, unbond 2, withdraw_unbonded 3,
validate 4, chill 6, set_payee 7, set_validator_count 9, force_new_era 13.

The controller is the stash (Substrate's current model). `validate` also takes the ed25519
session key that seals blocks and signs finality votes (in Substrate that key lives in the
session pallet). Each call checks its origin, then every condition, and only then writes.
"""

from __future__ import annotations

from typing import Any

from runtime.codec.scale import compact_u32, compact_u128, u32
from runtime.context import BlockContext
from runtime.frame import Call, ensure_root, ensure_signed
from runtime.pallets.balances import currency
from runtime.pallets.staking import events, storage
from runtime.pallets.staking.errors import ERRORS
from runtime.pallets.staking.ledger import (
    apply_bond,
    apply_bond_extra,
    apply_chill,
    apply_kill_stash,
    apply_unbond,
    apply_withdraw,
    compute_unbond_era,
    compute_withdrawable,
    get_ledger,
    get_min_validator_bond,
    is_validator,
)
from runtime.pallets.staking.types import (
    MAX_UNLOCKING_CHUNKS,
    RewardDestination,
    SessionKey,
    StakingLedger,
    ValidatorPrefs,
)
from runtime.pallets.staking.validators import apply_validate, validate_session_key_free

BOND_WEIGHT = 100_000_000
UNBOND_WEIGHT = 100_000_000
VALIDATE_WEIGHT = 80_000_000
SMALL_WEIGHT = 30_000_000


def get_own_ledger(ctx: BlockContext, stash: bytes, error: str = "NotController") -> StakingLedger:
    """Verify that `stash` is bonded; return its ledger."""
    ledger = get_ledger(ctx.state, stash)
    if ledger is None:
        raise ERRORS(error, "the account is not bonded")
    return ledger


def bond(ctx: BlockContext, origin: Any, value: int, payee: Any) -> None:
    """Take the origin account as a stash and lock up `value` of its balance (reserved)."""
    stash = ensure_signed(origin)
    # Verify that the stash is not bonded yet.
    if storage.Bonded.contains(ctx.state, stash):
        raise ERRORS("AlreadyBonded", "the stash is already bonded")
    if storage.Ledger.contains(ctx.state, stash):
        raise ERRORS("AlreadyPaired", "the account already controls a ledger")
    # Verify that the bond is at least the existential deposit.
    if value < ctx.params.existential_deposit:
        raise ERRORS("InsufficientBond", "a bond must be at least the existential deposit")
    apply_bond(ctx, stash, value, payee)  # Balances.InsufficientBalance if `value` is not free


def bond_extra(ctx: BlockContext, origin: Any, max_additional: int) -> None:
    """Add up to `max_additional` of the stash's free balance to its active bond."""
    stash = ensure_signed(origin)
    ledger = get_own_ledger(ctx, stash, "NotStash")
    extra = min(max_additional, currency.free_balance(ctx, stash))
    # Verify that the active bond stays at least the existential deposit.
    if ledger.active + extra < ctx.params.existential_deposit:
        raise ERRORS("InsufficientBond", "the active bond would be below the existential deposit")
    if extra:
        apply_bond_extra(ctx, ledger, extra)


def unbond(ctx: BlockContext, origin: Any, value: int) -> None:
    """Schedule up to `value` of the active bond to unlock `bonding_duration` eras from now."""
    stash = ensure_signed(origin)
    ledger = get_own_ledger(ctx, stash)
    value = min(value, ledger.active)
    if value == 0:
        return
    if ledger.active - value < ctx.params.existential_deposit:
        value = ledger.active  # no dust left in the staking system
    # Verify that a validator keeps the minimum validator bond active (it must chill first).
    min_active = get_min_validator_bond(ctx) if is_validator(ctx.state, stash) else 0
    if ledger.active - value < min_active:
        raise ERRORS("InsufficientBond", "a validator must keep the minimum bond; chill first")
    era = compute_unbond_era(ctx)
    # Verify that there is room for one more unlocking chunk.
    merges = bool(ledger.unlocking) and ledger.unlocking[-1].era == era
    if not merges and len(ledger.unlocking) >= MAX_UNLOCKING_CHUNKS:
        raise ERRORS("NoMoreChunks", f"at most {MAX_UNLOCKING_CHUNKS} unlocking chunks")
    apply_unbond(ctx, ledger, value, era)


def withdraw_unbonded(ctx: BlockContext, origin: Any, num_slashing_spans: int) -> None:
    """Free the unlocking chunks whose era has come; forget the stash when nothing is left."""
    stash = ensure_signed(origin)
    ledger = get_own_ledger(ctx, stash)
    amount, remaining = compute_withdrawable(ledger, storage.CurrentEra.get(ctx.state))
    if not remaining and ledger.active < ctx.params.existential_deposit:
        apply_kill_stash(ctx, ledger)
    else:
        apply_withdraw(ctx, ledger, amount, remaining)


def validate(ctx: BlockContext, origin: Any, prefs: dict[str, Any], session_key: bytes) -> None:
    """Declare the stash a validator candidate with `prefs` and the ed25519 `session_key`."""
    stash = ensure_signed(origin)
    ledger = get_own_ledger(ctx, stash)
    # Verify that the active bond is at least the minimum validator bond.
    if ledger.active < get_min_validator_bond(ctx):
        raise ERRORS("InsufficientBond", "the active bond is below the minimum validator bond")
    validate_session_key_free(ctx.state, stash, session_key)
    apply_validate(ctx, stash, prefs, session_key)


def chill(ctx: BlockContext, origin: Any) -> None:
    """Stop being a validator candidate from the next election on."""
    stash = ensure_signed(origin)
    get_own_ledger(ctx, stash)
    apply_chill(ctx, stash)


def set_payee(ctx: BlockContext, origin: Any, payee: Any) -> None:
    """Choose where era rewards go."""
    stash = ensure_signed(origin)
    get_own_ledger(ctx, stash)
    # Verify that the destination is not the deprecated `Controller` (the stash is its own controller).
    if payee == "Controller" or (isinstance(payee, tuple) and payee[0] == "Controller"):
        raise ERRORS("ControllerDeprecated", "use Stash: the stash is its own controller")
    storage.Payee.insert(ctx.state, stash, payee)


def set_validator_count(ctx: BlockContext, origin: Any, new: int) -> None:
    """Set the number of validators the next elections choose (Root)."""
    ensure_root(origin)
    storage.ValidatorCount.put(ctx.state, new)


def force_new_era(ctx: BlockContext, origin: Any) -> None:
    """Start a new era (pay, elect) at the next block instead of the next era boundary (Root)."""
    ensure_root(origin)
    storage.ForceEra.put(ctx.state, ("ForceNew", None))
    events.deposit(ctx, "ForceEra", {"mode": ("ForceNew", None)})


CALLS = [
    Call("bond", 0, [("value", compact_u128), ("payee", RewardDestination)], bond, BOND_WEIGHT,
         docs="Take the origin account as a stash and lock up `value` of its balance."),
    Call("bond_extra", 1, [("max_additional", compact_u128)], bond_extra, BOND_WEIGHT,
         docs="Add some extra amount that have appeared in the stash `free_balance` into the balance up for staking."),
    Call("unbond", 2, [("value", compact_u128)], unbond, UNBOND_WEIGHT,
         docs="Schedule a portion of the stash to be unlocked ready for transfer out after the bond period ends."),
    Call("withdraw_unbonded", 3, [("num_slashing_spans", u32)], withdraw_unbonded, UNBOND_WEIGHT,
         docs="Remove any unlocked chunks from the `unlocking` queue from our management."),
    Call("validate", 4, [("prefs", ValidatorPrefs), ("session_key", SessionKey)], validate, VALIDATE_WEIGHT,
         docs="Declare the desire to validate for the origin controller, with its ed25519 session key."),
    Call("chill", 6, [], chill, SMALL_WEIGHT, docs="Declare no desire to either validate or nominate."),
    Call("set_payee", 7, [("payee", RewardDestination)], set_payee, SMALL_WEIGHT,
         docs="(Re-)set the payment target for a controller."),
    Call("set_validator_count", 9, [("new", compact_u32)], set_validator_count, SMALL_WEIGHT,
         docs="Sets the ideal number of validators (Root)."),
    Call("force_new_era", 13, [], force_new_era, SMALL_WEIGHT,
         docs="Force there to be a new era at the end of the next block (Root)."),
]
