"""Staking pallet: bonds reserved in Balances, validator candidates with their ed25519 session
keys, eras of `era_length` blocks, the election of the active set at each era boundary (top N
by active bond above a minimum), era rewards by authored blocks, and `slash` for the consensus
and ML-compute parts.

Consensus reads `get_active_validators(state)`, `get_validator_set_id(state)`,
`get_current_era(state)` and `get_era_randomness(state)`."""

from runtime.pallets.staking.api import (
    get_active_validators,
    get_current_era,
    get_era_randomness,
    get_validator_set_id,
)
from runtime.pallets.staking.pallet import PALLET
from runtime.pallets.staking.slashing import slash

__all__ = ["PALLET", "get_active_validators", "get_current_era", "get_era_randomness", "get_validator_set_id", "slash"]
