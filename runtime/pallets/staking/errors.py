"""Staking errors: Substrate's pallet_staking errors in Substrate's order (so a client reads
the same name for the same index), then this chain's own."""

from runtime.frame import ModuleErrors
from runtime.pallets.indices import STAKING

ERRORS = ModuleErrors(STAKING, "Staking", [
    "NotController",
    "NotStash",
    "AlreadyBonded",
    "AlreadyPaired",
    "EmptyTargets",
    "DuplicateIndex",
    "InvalidSlashIndex",
    "InsufficientBond",
    "NoMoreChunks",
    "NoUnlockChunk",
    "FundedTarget",
    "InvalidEraToReward",
    "InvalidNumberOfNominations",
    "NotSortedAndUnique",
    "AlreadyClaimed",
    "InvalidPage",
    "IncorrectHistoryDepth",
    "IncorrectSlashingSpans",
    "BadState",
    "TooManyTargets",
    "BadTarget",
    "CannotChillOther",
    "TooManyNominators",
    "TooManyValidators",
    "CommissionTooLow",
    "BoundNotMet",
    "ControllerDeprecated",
    # this chain's own:
    "DuplicateSessionKey",
    "InvalidSlashFraction",
    "OffenceReasonTooLong",
], {
    "NotController": "Not a controller account.",
    "NotStash": "Not a stash account.",
    "AlreadyBonded": "Stash is already bonded.",
    "AlreadyPaired": "Controller is already paired.",
    "InsufficientBond": "Cannot have a validator with less than the minimum bond, or bond less than the existential deposit.",
    "NoMoreChunks": "Can not schedule more unlock chunks.",
    "ControllerDeprecated": "The controller is the stash: a reward destination `Controller` is deprecated.",
    "DuplicateSessionKey": "The session key is already used by another validator.",
    "InvalidSlashFraction": "A slash fraction must be within 0..=1_000_000 parts per million.",
    "OffenceReasonTooLong": "An offence's reason is longer than 256 bytes.",
})
