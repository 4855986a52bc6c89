"""Eras: reward points for block authors, and the era boundary — pay the ended era's rewards by
authored blocks, start the next era and store its elected set.

An era boundary is a block whose number is a multiple of `era_length` (or the block after a
`force_new_era`). Its `on_initialize` pays era e, sets CurrentEra = ActiveEra = e + 1 and
`ActiveValidators` to the new election and rotates the era randomness (randomness.py: the
seals of era e fix the leaders of era e + 2); the block's own author point counts for era e + 1.
Unlocking chunks need no processing: they become withdrawable as CurrentEra reaches their era.
The runtime stores the set at once; consensus enacts it only in a block the old set finalized.
"""

from __future__ import annotations

from typing import Any

from runtime.context import BlockContext
from runtime.frame import ArithmeticOverflow
from runtime.pallets.balances import currency
from runtime.pallets.staking import events, storage
from runtime.pallets.staking.ledger import MAX_BALANCE, apply_bond_extra, compute_checked_add, get_ledger
from runtime.pallets.staking.randomness import apply_mix_parent, apply_rotate_randomness
from runtime.pallets.staking.types import HISTORY_DEPTH
from runtime.pallets.staking.validators import apply_active_set, elect_validators
from runtime.pallets.system.account import account_exists

MAX_U32 = (1 << 32) - 1
NEW_ERA_FLAG = "staking.new_era"


# --- reward points -------------------------------------------------------------------------------


def compute_added_point(points: dict[str, Any], author: bytes) -> dict[str, Any]:
    """EraRewardPoints with one more point for `author` (individual kept sorted by account)."""
    total = points["total"] + 1
    if total > MAX_U32:
        raise ArithmeticOverflow("era reward points would overflow")
    individual = dict(points["individual"])
    individual[author] = individual.get(author, 0) + 1
    return {"total": total, "individual": sorted(individual.items())}


def apply_author_point(ctx: BlockContext) -> None:
    """One reward point to the block's author, if it is a bonded stash."""
    author = ctx.author
    if author is None or not storage.Bonded.contains(ctx.state, author):
        return
    era = storage.CurrentEra.get(ctx.state)
    points = compute_added_point(storage.ErasRewardPoints.get(ctx.state, era), author)
    storage.ErasRewardPoints.insert(ctx.state, era, points)


# --- rewards -------------------------------------------------------------------------------------


def compute_reward(ctx: BlockContext, points: int) -> int:
    reward = points * ctx.params.era_reward_per_block
    if reward > MAX_BALANCE:
        raise ArithmeticOverflow("era reward would overflow")
    return reward


def is_payable(ctx: BlockContext, who: bytes, amount: int) -> bool:
    """Whether minting `amount` to `who` lands (a new account needs the existential deposit)."""
    return amount > 0 and (account_exists(ctx.state, who) or amount >= ctx.params.existential_deposit)


def apply_reward(ctx: BlockContext, stash: bytes, amount: int) -> int:
    """Mint `amount` to the stash's payee; returns what was minted."""
    dest: Any = storage.Payee.get(ctx.state, stash) or ("Stash", None)
    kind = dest if isinstance(dest, str) else dest[0]
    if kind == "None":
        return 0
    beneficiary: bytes = dest[1] if kind == "Account" else stash
    if not is_payable(ctx, beneficiary, amount):
        return 0
    currency.deposit_creating(ctx, beneficiary, amount)
    ledger = get_ledger(ctx.state, stash)
    if kind == "Staked" and ledger is not None:
        apply_bond_extra(ctx, ledger, amount, emit=False)
    events.deposit(ctx, "Rewarded", {"stash": stash, "dest": dest, "amount": amount})
    return amount


def apply_era_payout(ctx: BlockContext, era: int) -> None:
    """Pay every author of era `era` `era_reward_per_block` per authored block."""
    paid = unpaid = 0
    for stash, points in storage.ErasRewardPoints.get(ctx.state, era)["individual"]:
        reward = compute_reward(ctx, points)
        minted = apply_reward(ctx, stash, reward)
        paid = compute_checked_add(paid, minted)
        unpaid = compute_checked_add(unpaid, reward - minted)
    events.deposit(ctx, "EraPaid", {"era_index": era, "validator_payout": paid, "remainder": unpaid})


# --- the era boundary ----------------------------------------------------------------------------


def is_era_boundary(ctx: BlockContext) -> bool:
    if ctx.block_number > 0 and ctx.block_number % ctx.params.era_length == 0:
        return True
    return storage.ForceEra.get(ctx.state)[0] == "ForceNew"


def apply_prune_history(ctx: BlockContext, new_era: int) -> None:
    """Forget the per-era records older than HISTORY_DEPTH eras."""
    old = new_era - HISTORY_DEPTH
    if old >= 0:
        storage.ErasRewardPoints.remove(ctx.state, old)
        storage.ErasStartBlock.remove(ctx.state, old)


def apply_election(ctx: BlockContext) -> None:
    """Store the newly elected set; with no eligible candidate the current set stays."""
    elected = elect_validators(ctx)
    if not elected:
        events.deposit(ctx, "StakingElectionFailed")
        return
    apply_active_set(ctx, elected)
    events.deposit(ctx, "StakersElected")


def apply_new_era(ctx: BlockContext) -> None:
    """Close the current era (pay it) and open the next one with a new election."""
    state = ctx.state
    era = storage.CurrentEra.get(state)
    if era >= MAX_U32:
        raise ArithmeticOverflow("era index would overflow")
    apply_era_payout(ctx, era)
    new_era = era + 1
    storage.CurrentEra.put(state, new_era)
    storage.ActiveEra.put(state, {"index": new_era, "start": None})
    storage.ErasStartBlock.insert(state, new_era, ctx.block_number)
    if storage.ForceEra.get(state)[0] == "ForceNew":
        storage.ForceEra.kill(state)
    apply_rotate_randomness(ctx, new_era)
    apply_election(ctx)
    apply_prune_history(ctx, new_era)
    ctx.extra[NEW_ERA_FLAG] = True
    events.deposit(ctx, "NewEra", {"era_index": new_era, "start_block": ctx.block_number})


# --- hooks ---------------------------------------------------------------------------------------


def on_initialize(ctx: BlockContext) -> None:
    apply_mix_parent(ctx)
    if is_era_boundary(ctx):
        apply_new_era(ctx)
    apply_author_point(ctx)


def on_finalize(ctx: BlockContext) -> None:
    """Record the start time of an era that began in this block (the timestamp is set by then)."""
    if ctx.extra.get(NEW_ERA_FLAG) and ctx.timestamp is not None:
        storage.ActiveEra.put(ctx.state, {"index": storage.CurrentEra.get(ctx.state), "start": ctx.timestamp})
