"""Staking storage items: Substrate's names and hashers where Substrate has the item; the
elected set with session keys and stakes (`ActiveValidators`) is this chain's own, because the
session keys that seal blocks and sign finality votes are given with `validate`."""

from runtime.codec.scale import Vec, u32, u64
from runtime.frame import StorageMap, StorageValue
from runtime.pallets.staking.types import (
    ActiveEraInfo,
    ActiveValidator,
    EraIndex,
    EraRewardPoints,
    Forcing,
    OffenceRecord,
    RewardDestination,
    SessionKey,
    StakingLedgerType,
    ValidatorPrefs,
)
from runtime.types import AccountId, Balance, BlockNumber, Hash

_by_account = [("Twox64Concat", AccountId)]
_by_era = [("Twox64Concat", EraIndex)]

Bonded = StorageMap("Bonded", _by_account, AccountId, docs="Map from all locked \"stash\" accounts to the controller account.")
Ledger = StorageMap("Ledger", [("Blake2_128Concat", AccountId)], StakingLedgerType,
                    docs="Map from all (unlocked) \"controller\" accounts to the info regarding the staking.")
Payee = StorageMap("Payee", _by_account, RewardDestination, docs="Where the reward payment should be made. Keyed by stash.")
Validators = StorageMap("Validators", _by_account, ValidatorPrefs, docs="The map from (wannabe) validator stash key to the preferences of that validator.")
SessionKeys = StorageMap("SessionKeys", _by_account, SessionKey, docs="The ed25519 session key of each validator stash (blocks seals, finality votes).")
KeyOwner = StorageMap("KeyOwner", [("Twox64Concat", SessionKey)], AccountId, docs="The stash that owns each session key.")
ValidatorCount = StorageValue("ValidatorCount", u32, docs="The ideal number of active validators (the chain's max_validators when unset).")
MinValidatorBond = StorageValue("MinValidatorBond", Balance, docs="The minimum active bond to become and remain a validator (the chain's min_validator_bond when unset).")
CurrentEra = StorageValue("CurrentEra", EraIndex, default=0, docs="The current era index (the era of the last election).")
ActiveEra = StorageValue("ActiveEra", ActiveEraInfo, docs="The active era information: its index and start time.")
ErasStartBlock = StorageMap("ErasStartBlock", _by_era, BlockNumber, docs="The block at which each of the last HistoryDepth eras started.")
ActiveValidators = StorageValue("ActiveValidators", Vec(ActiveValidator), default=[],
                                docs="The elected set of the current era: (stash, session key, active stake), highest stake first.")
ValidatorSetId = StorageValue("ValidatorSetId", u64, default=0,
                              docs="Counts the changes of `ActiveValidators`: the id of the finality voter set it holds.")
ErasRewardPoints = StorageMap("ErasRewardPoints", _by_era, EraRewardPoints, default={"total": 0, "individual": []},
                              docs="Rewards points (one per authored block) of each validator, for the last HistoryDepth eras.")
ForceEra = StorageValue("ForceEra", Forcing, default=("NotForcing", None), docs="Mode of era forcing.")
Offences = StorageMap("Offences", _by_account, Vec(OffenceRecord), default=[],
                      docs="The last offences each staker was slashed for, oldest first.")
EraRandomness = StorageValue("EraRandomness", Hash, default=bytes(32),
                             docs="Draws the slot leaders of the current era: fixed at the start of the previous era "
                                  "(from the seals of the era before it), or seeded by genesis for eras 0 and 1.")
NextEraRandomness = StorageValue("NextEraRandomness", Hash, default=bytes(32),
                                 docs="The randomness of the next era, fixed when the current era started from the "
                                      "previous era's seals: no block of the current era can change it.")
RandomnessUnderConstruction = StorageValue(
    "RandomnessUnderConstruction", Hash, default=bytes(32),
    docs="Running hash of the current era's sealed block hashes (each block mixes its parent's); at the era boundary "
         "it becomes the randomness of the era after the next.")

ITEMS = [Bonded, Ledger, Payee, Validators, SessionKeys, KeyOwner, ValidatorCount, MinValidatorBond, CurrentEra,
         ActiveEra, ErasStartBlock, ActiveValidators, ValidatorSetId, ErasRewardPoints, ForceEra, Offences,
         EraRandomness, NextEraRandomness, RandomnessUnderConstruction]
