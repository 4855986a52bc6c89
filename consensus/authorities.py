"""The validator set consensus works with, read from a state (the staking pallet's elected set)
together with the randomness that draws slot leaders: the era's, fixed an era ahead from the
seals of the era before (runtime/pallets/staking/randomness.py), never the parent's hash, so
every fork through the same era start draws the same leaders."""

from __future__ import annotations

from consensus.finality_messages import VoterSet
from consensus.slots import Authority
from runtime.pallets.staking import get_active_validators, get_era_randomness, get_validator_set_id
from runtime.storage import OverlayState
from runtime.trie import Trie


def get_authorities(state: Trie | OverlayState) -> list[Authority]:
    overlay = state if isinstance(state, OverlayState) else OverlayState(state.get, state.iter_prefix)
    return [Authority(account, key, stake) for account, key, stake in get_active_validators(overlay)]


def get_voter_set(state: Trie | OverlayState) -> VoterSet:
    """The finality voters a state elects: the active set's session keys and stakes, with the
    set's id. A key listed twice (never, by the staking pallet's checks) counts once."""
    voters: dict[bytes, int] = {}
    for authority in get_authorities(state):
        if authority.stake > 0:
            voters.setdefault(authority.session_key, authority.stake)
    return VoterSet(get_validator_set_id(state), tuple(voters.items()))


def get_randomness(state: Trie | OverlayState) -> bytes:
    """The randomness that draws the leaders of the slots after `state`'s block."""
    return get_era_randomness(state)
