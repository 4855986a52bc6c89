"""Offences errors."""

from runtime.frame import ModuleErrors
from runtime.pallets.indices import OFFENCES

ERRORS = ModuleErrors(OFFENCES, "Offences", [
    "InvalidEquivocationProof",
    "InvalidSignature",
    "UnknownOffender",
    "DuplicateReport",
    "InvalidSetId",
], {
    "InvalidEquivocationProof": "The two messages are not two different ones for one slot, or one round and step.",
    "InvalidSignature": "A signature in the report is not the offender's.",
    "UnknownOffender": "The key does not belong to a bonded validator.",
    "DuplicateReport": "This offence was already reported.",
    "InvalidSetId": "The votes are for a voter set that has not existed yet.",
})
