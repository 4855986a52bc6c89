"""Balances errors, in Substrate's order."""

from runtime.frame import ModuleErrors
from runtime.pallets.indices import BALANCES

ERRORS = ModuleErrors(BALANCES, "Balances", [
    "VestingBalance",
    "LiquidityRestrictions",
    "InsufficientBalance",
    "ExistentialDeposit",
    "Expendability",
    "ExistingVestingSchedule",
    "DeadAccount",
    "TooManyReserves",
    "TooManyHolds",
    "TooManyFreezes",
    "IssuanceDeactivated",
    "DeltaZero",
], {
    "InsufficientBalance": "Balance too low to send value.",
    "ExistentialDeposit": "Value too low to create account due to existential deposit.",
    "Expendability": "Transfer/payment would kill account.",
    "DeadAccount": "Beneficiary account must pre-exist.",
})
