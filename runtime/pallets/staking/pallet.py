"""Staking pallet declaration."""

from runtime.codec.scale import u32
from runtime.frame import Pallet
from runtime.pallets.indices import STAKING
from runtime.pallets.staking import storage
from runtime.pallets.staking.calls import CALLS
from runtime.pallets.staking.eras import on_finalize, on_initialize
from runtime.pallets.staking.errors import ERRORS
from runtime.pallets.staking.events import EVENTS
from runtime.pallets.staking.genesis import genesis_build
from runtime.pallets.staking.types import HISTORY_DEPTH, MAX_UNLOCKING_CHUNKS
from runtime.types import Balance

PALLET = Pallet(
    name="Staking",
    index=STAKING,
    calls=CALLS,
    storage=storage.ITEMS,
    events=EVENTS,
    errors=ERRORS,
    constants=[
        ("BondingDuration", u32, lambda params: params.bonding_duration, "Number of eras that staked funds must remain bonded for."),
        ("EraLength", u32, lambda params: params.era_length, "Number of blocks in an era."),
        ("MaxValidators", u32, lambda params: params.max_validators, "The number of validators elected at each era boundary."),
        ("MinValidatorBond", Balance, lambda params: params.min_validator_bond, "The minimum active bond of a validator."),
        ("EraRewardPerBlock", Balance, lambda params: params.era_reward_per_block, "Minted to a validator for each block it authored."),
        ("MaxUnlockingChunks", u32, lambda params: MAX_UNLOCKING_CHUNKS, "The maximum number of `unlocking` chunks a StakingLedger can have."),
        ("HistoryDepth", u32, lambda params: HISTORY_DEPTH, "Number of eras to keep in history."),
    ],
    on_initialize=on_initialize,
    on_finalize=on_finalize,
    genesis_build=genesis_build,
)
