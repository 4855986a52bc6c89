"""Offences pallet declaration."""

from runtime.codec.scale import u32
from runtime.frame import Pallet
from runtime.pallets.indices import OFFENCES
from runtime.pallets.offences import storage
from runtime.pallets.offences.calls import CALLS, EQUIVOCATION_SLASH_PPM, REPORTER_REWARD_PPM
from runtime.pallets.offences.errors import ERRORS
from runtime.pallets.offences.events import EVENTS

PALLET = Pallet(
    name="Offences",
    index=OFFENCES,
    calls=CALLS,
    storage=storage.ITEMS,
    events=EVENTS,
    errors=ERRORS,
    constants=[
        ("EquivocationSlashPpm", u32, lambda params: EQUIVOCATION_SLASH_PPM, "Parts per million of the bond an equivocation slashes."),
        ("ReporterRewardPpm", u32, lambda params: REPORTER_REWARD_PPM, "Parts per million of the slashed amount paid to the reporter."),
    ],
)
