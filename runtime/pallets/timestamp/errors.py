"""Timestamp errors (a bad timestamp makes the whole block invalid; these name why)."""

from runtime.frame import ModuleErrors
from runtime.pallets.indices import TIMESTAMP

ERRORS = ModuleErrors(TIMESTAMP, "Timestamp", ["AlreadySet", "TooEarly", "TooFarFromSlot", "Missing"], {
    "AlreadySet": "Timestamp must be updated only once in the block.",
    "TooEarly": "Timestamp must increment by at least the slot duration over the previous block.",
    "TooFarFromSlot": "Timestamp must be within the drift bound of its slot's start time.",
    "Missing": "Timestamp must be set in every block.",
})
