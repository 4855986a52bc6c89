"""Staking events (Substrate's indices and field names; NewEra is this chain's own)."""

from typing import Any

from runtime.codec.scale import Variant, u32
from runtime.context import BlockContext
from runtime.frame import event_enum
from runtime.pallets.indices import STAKING
from runtime.pallets.staking.types import EraIndex, Forcing, RewardDestination, SessionKey, ValidatorPrefs
from runtime.types import AccountId, Balance

EVENTS = event_enum("Staking", [
    Variant("EraPaid", 0, [("era_index", EraIndex), ("validator_payout", Balance), ("remainder", Balance)],
            ("The era payout has been set; the first balance is the validator-payout; the second is the remainder from the maximum amount of reward.",)),
    Variant("Rewarded", 1, [("stash", AccountId), ("dest", RewardDestination), ("amount", Balance)],
            ("The nominator has been rewarded by this amount to this destination.",)),
    Variant("Slashed", 2, [("staker", AccountId), ("amount", Balance)],
            ("A staker (validator or nominator) has been slashed by the given amount.",)),
    Variant("StakersElected", 5, [], ("A new set of stakers was elected.",)),
    Variant("Bonded", 6, [("stash", AccountId), ("amount", Balance)], ("An account has bonded this amount.",)),
    Variant("Unbonded", 7, [("stash", AccountId), ("amount", Balance)], ("An account has unbonded this amount.",)),
    Variant("Withdrawn", 8, [("stash", AccountId), ("amount", Balance)],
            ("An account has called `withdraw_unbonded` and removed unbonding chunks worth `Balance` from the unlocking queue.",)),
    Variant("StakingElectionFailed", 10, [], ("The election failed. No new era is planned.",)),
    Variant("Chilled", 11, [("stash", AccountId)], ("An account has stopped participating as either a validator or nominator.",)),
    Variant("ValidatorPrefsSet", 13, [("stash", AccountId), ("prefs", ValidatorPrefs)], ("A validator has set their preferences.",)),
    Variant("ForceEra", 16, [("mode", Forcing)], ("A new force era mode was set.",)),
    Variant("NewEra", 32, [("era_index", EraIndex), ("start_block", u32)], ("A new era started and its validator set was stored.",)),
    Variant("SessionKeySet", 33, [("stash", AccountId), ("session_key", SessionKey)], ("A validator set its ed25519 session key.",)),
])


def deposit(ctx: BlockContext, name: str, payload: Any = None) -> None:
    ctx.deposit_event(STAKING, EVENTS, name, payload)
