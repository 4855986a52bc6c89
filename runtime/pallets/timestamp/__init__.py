"""Timestamp pallet: the block's time, set once per block by its author through an inherent,
within drift bounds of the slot's time."""

from runtime.pallets.timestamp.pallet import PALLET

__all__ = ["PALLET"]
