"""Offences calls: report_vote_equivocation 0, report_block_equivocation 1.

Any origin may report: a signed report pays the usual fee (so a bad one costs its sender) and
rewards its signer; an unsigned one (what a node submits on its own) is free, checked by the
pool before it spreads, and rewards the author of the block that includes it. Each call checks the
evidence, refuses a second report of one offence, then punishes (see `apply_punishment`).
"""

from __future__ import annotations

from typing import Any

from runtime.context import BlockContext
from runtime.frame import Call
from runtime.pallets.balances import currency
from runtime.pallets.offences import events, storage
from runtime.pallets.offences.errors import ERRORS
from runtime.pallets.offences.evidence import (
    KIND_BLOCK,
    KIND_VOTE,
    HeaderBytes,
    VoteEquivocation,
    validate_block_equivocation,
    validate_vote_equivocation,
)
from runtime.pallets.staking import slash
from runtime.pallets.staking import storage as staking
from runtime.pallets.staking.ledger import apply_chill
from runtime.pallets.staking.types import PPM
from runtime.pallets.staking.validators import apply_active_set

EQUIVOCATION_SLASH_PPM = 100_000   # 10% of the offender's bond
REPORTER_REWARD_PPM = 100_000      # 10% of what is slashed goes to the reporter; the rest is burned
REPORT_WEIGHT = 200_000_000


def get_reporter(ctx: BlockContext, origin: Any) -> bytes | None:
    """The signer of a signed report, else the block's author."""
    if origin[0] == "Signed":
        return origin[1]
    return ctx.author


def compute_reward(slashed: int) -> int:
    return slashed * REPORTER_REWARD_PPM // PPM


def validate_new_offence(ctx: BlockContext, offence_id: bytes) -> None:
    """Verify that the offence was not reported before."""
    if storage.Reports.contains(ctx.state, offence_id):
        raise ERRORS("DuplicateReport", "this offence was already reported")


def apply_removal(ctx: BlockContext, offender: bytes) -> None:
    """Take the offender out of the active set now (unless it is the last validator, whose
    removal would stop the chain) and out of the next elections."""
    active = staking.ActiveValidators.get(ctx.state)
    remaining = [v for v in active if v[0] != offender]
    if remaining and len(remaining) < len(active):
        apply_active_set(ctx, remaining)
    apply_chill(ctx, offender)


def apply_punishment(ctx: BlockContext, origin: Any, offender: bytes, offence_id: bytes, kind: int) -> None:
    """Slash the offender's bond (burned, less the reporter's reward, which is minted to the
    reporter: total issuance falls by exactly slashed - reward), record the report, remove it."""
    reason = b"equivocation:vote" if kind == KIND_VOTE else b"equivocation:block"
    slashed = slash(ctx, offender, EQUIVOCATION_SLASH_PPM, reason)
    reward = compute_reward(slashed)
    reporter = get_reporter(ctx, origin)
    paid = 0
    if reporter is not None and reporter != offender and reward > 0:
        before = currency.free_balance(ctx, reporter)
        currency.deposit_creating(ctx, reporter, reward)
        paid = currency.free_balance(ctx, reporter) - before
    storage.Reports.insert(ctx.state, offence_id, ctx.block_number)
    apply_removal(ctx, offender)
    events.deposit(ctx, "Equivocation", {"offender": offender, "kind": kind, "slashed": slashed, "reward": paid})


def report_vote_equivocation(ctx: BlockContext, origin: Any, equivocation: dict[str, Any]) -> None:
    """Report two different finality votes by one voter in one set, round and step."""
    offender, offence_id = validate_vote_equivocation(ctx, equivocation)
    validate_new_offence(ctx, offence_id)
    apply_punishment(ctx, origin, offender, offence_id, KIND_VOTE)


def report_block_equivocation(ctx: BlockContext, origin: Any, first: bytes, second: bytes) -> None:
    """Report two different blocks sealed by one author for one slot (SCALE headers)."""
    offender, offence_id = validate_block_equivocation(ctx.state, first, second)
    validate_new_offence(ctx, offence_id)
    apply_punishment(ctx, origin, offender, offence_id, KIND_BLOCK)


CALLS = [
    Call("report_vote_equivocation", 0, [("equivocation", VoteEquivocation)], report_vote_equivocation,
         REPORT_WEIGHT, docs="Report two different finality votes by one voter in one round and step.",
         dispatch_class="Operational", unsigned=True),
    Call("report_block_equivocation", 1, [("first", HeaderBytes), ("second", HeaderBytes)], report_block_equivocation,
         REPORT_WEIGHT, docs="Report two different blocks by one author for one slot.",
         dispatch_class="Operational", unsigned=True),
]
