"""Solver and verifier registration: stakes reserved in Balances, the part of a solver's stake
that its jobs lock, open work that keeps a role from leaving, and the unbonding delay."""

from __future__ import annotations

from typing import Any

from runtime.context import BlockContext
from runtime.frame import StorageMap, StorageValue
from runtime.pallets.balances import currency
from runtime.pallets.ml_compute import events, storage
from runtime.pallets.ml_compute.agenda import apply_schedule, get_config
from runtime.pallets.ml_compute.errors import ERRORS
from runtime.pallets.ml_compute.types import MAX_WORKERS

ROLES: dict[str, tuple[StorageMap, StorageValue]] = {
    "Solver": (storage.Solvers, storage.SolverSet),
    "Verifier": (storage.Verifiers, storage.VerifierSet),
}


def get_worker(ctx: BlockContext, role: str, who: bytes) -> dict[str, Any] | None:
    return ROLES[role][0].get(ctx.state, who)


def put_worker(ctx: BlockContext, role: str, who: bytes, worker: dict[str, Any]) -> None:
    ROLES[role][0].insert(ctx.state, who, worker)


def get_active_set(ctx: BlockContext, role: str) -> list[bytes]:
    return ROLES[role][1].get(ctx.state)


def get_min_stake(ctx: BlockContext, role: str) -> int:
    config = get_config(ctx)
    floor = config.min_solver_stake if role == "Solver" else config.min_verifier_stake
    return max(floor, ctx.params.existential_deposit)


def apply_register(ctx: BlockContext, who: bytes, role: str, stake: int) -> None:
    """Verify that `who` may join `role` with `stake`, then reserve it and join the draws."""
    members = get_active_set(ctx, role)
    if get_worker(ctx, role, who) is not None:
        raise ERRORS("AlreadyRegistered", f"already a {role.lower()} (or still unbonding)")
    if stake < get_min_stake(ctx, role):
        raise ERRORS("StakeTooLow", f"a {role.lower()} stakes at least {get_min_stake(ctx, role)}")
    if len(members) >= MAX_WORKERS:
        raise ERRORS("TooManyWorkers", f"at most {MAX_WORKERS} {role.lower()}s")
    currency.reserve(ctx, who, stake)  # Balances.InsufficientBalance if not free
    put_worker(ctx, role, who, {"stake": stake, "locked": 0, "open": 0, "unbonding_until": None})
    ROLES[role][1].put(ctx.state, members + [who])
    events.deposit(ctx, "Registered", {"who": who, "role": (role, None), "stake": stake})


def apply_unregister(ctx: BlockContext, who: bytes, role: str) -> None:
    """Leave the draws; the stake frees after the unbonding delay."""
    worker = get_worker(ctx, role, who)
    if worker is None or worker["unbonding_until"] is not None:
        raise ERRORS("NotRegistered", f"not a registered {role.lower()}")
    if worker["open"] or worker["locked"]:
        raise ERRORS("HasOpenWork", f"{worker['open']} open jobs or duties")
    until = ctx.block_number + get_config(ctx).unbonding_delay
    apply_schedule(ctx, until, ("Unbond", ((role, None), who)))
    worker["unbonding_until"] = until
    put_worker(ctx, role, who, worker)
    ROLES[role][1].put(ctx.state, [m for m in get_active_set(ctx, role) if m != who])
    events.deposit(ctx, "Unbonding", {"who": who, "role": (role, None), "until": until})


def on_unbond_due(ctx: BlockContext, role: str, who: bytes) -> None:
    worker = get_worker(ctx, role, who)
    if worker is None or worker["unbonding_until"] != ctx.block_number:
        return
    freed = currency.unreserve(ctx, who, worker["stake"])
    ROLES[role][0].remove(ctx.state, who)
    events.deposit(ctx, "Unbonded", {"who": who, "role": (role, None), "amount": freed})


def apply_slash_stake(ctx: BlockContext, role: str, who: bytes, amount: int, beneficiary: bytes | None,
                      reward_percent: int) -> tuple[int, int]:
    """Take `amount` of a worker's stake: `reward_percent` of it to `beneficiary`, the rest
    burned. Returns (slashed, reward)."""
    worker = get_worker(ctx, role, who)
    if worker is None:
        return 0, 0
    amount = min(amount, worker["stake"])
    slashed, reward = apply_slash_reserved(ctx, who, amount, beneficiary, reward_percent)
    worker["stake"] -= slashed
    worker["locked"] = min(worker["locked"], worker["stake"])
    put_worker(ctx, role, who, worker)
    return slashed, reward


def apply_slash_reserved(ctx: BlockContext, who: bytes, amount: int, beneficiary: bytes | None,
                         reward_percent: int) -> tuple[int, int]:
    """Slash `amount` of `who`'s reserved balance: the reward part moves to `beneficiary`'s free
    balance, the rest is burned (total issuance falls by exactly that)."""
    reward = amount * reward_percent // 100 if beneficiary is not None else 0
    moved = currency.repatriate_reserved(ctx, who, beneficiary, reward) if reward and beneficiary else 0
    burned = currency.slash_reserved(ctx, who, amount - reward)
    return moved + burned, moved


def apply_open(ctx: BlockContext, role: str, who: bytes, delta: int, lock: int = 0) -> None:
    """Count an open job or duty in (delta +1) or out (-1), and lock or unlock stake with it."""
    worker = get_worker(ctx, role, who)
    if worker is None:
        return
    worker["open"] = max(worker["open"] + delta, 0)
    worker["locked"] = max(min(worker["locked"] + lock, worker["stake"]), 0)
    put_worker(ctx, role, who, worker)
