"""Sudo pallet: one key may dispatch any call as Root (the dev chain's governance)."""

from runtime.pallets.sudo.pallet import make_pallet

__all__ = ["make_pallet"]
