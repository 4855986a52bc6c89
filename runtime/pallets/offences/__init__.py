"""Offences pallet: equivocation reports (two blocks for one slot, two votes in one finality
round and step, by one validator). Any node may submit one, unsigned or signed; the runtime
checks both signatures, refuses a second report of one offence, slashes the offender's bond
through staking's `slash` (a share to the reporter, the rest burned) and removes it from the
active set at once."""

from runtime.pallets.offences.pallet import PALLET

__all__ = ["PALLET"]
