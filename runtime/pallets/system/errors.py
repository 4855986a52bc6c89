"""System errors."""

from runtime.frame import ModuleErrors
from runtime.pallets.indices import SYSTEM

ERRORS = ModuleErrors(SYSTEM, "System", [
    "InvalidSpecName",
    "SpecVersionNeedsToIncrease",
    "FailedToExtractRuntimeVersion",
    "NonDefaultComposite",
    "NonZeroRefCount",
    "CallFiltered",
], {
    "SpecVersionNeedsToIncrease": "The new spec_version is not greater than the one in force.",
    "FailedToExtractRuntimeVersion": "No runtime of that spec_version is compiled into this node.",
    "NonZeroRefCount": "The account still has consumers.",
})
