"""System pallet: accounts and nonces, block number and parent hash, the block's events, block
randomness, chain parameters and the runtime version in force."""

from runtime.pallets.system.pallet import PALLET

__all__ = ["PALLET"]
