"""What the rest of the node reads from staking state (pure reads of a block's state): the
elected set with session keys and stakes, the era and its leader randomness, a stash's bond. Consensus calls
`get_active_validators` on a block's state to learn the set that state elected."""

from __future__ import annotations

from typing import Any, Protocol

from runtime.pallets.staking import storage
from runtime.pallets.staking.types import StakingLedger


class StateReader(Protocol):
    """Anything with `get(key) -> value | None`: an OverlayState, a Trie at a block's root."""

    def get(self, key: bytes) -> bytes | None: ...


def get_active_validators(state: StateReader) -> list[tuple[bytes, bytes, int]]:
    """The current era's elected set: (stash account, ed25519 session key, active stake),
    highest stake first, equal stakes in account byte order. Empty before any election."""
    return [(a, k, s) for a, k, s in storage.ActiveValidators.get(state)]  # type: ignore[arg-type]


def get_validator_set_id(state: StateReader) -> int:
    """The id of the active set: it changes exactly when the active set does."""
    return storage.ValidatorSetId.get(state)  # type: ignore[arg-type]


def get_current_era(state: StateReader) -> int:
    return storage.CurrentEra.get(state)  # type: ignore[arg-type]


def get_era_randomness(state: StateReader) -> bytes:
    """The randomness that draws the slot leaders of the state's era (fixed an era before it)."""
    return storage.EraRandomness.get(state)  # type: ignore[arg-type]


def get_era_start_block(state: StateReader, era: int) -> int | None:
    return storage.ErasStartBlock.get(state, era)  # type: ignore[arg-type]


def get_ledger(state: StateReader, stash: bytes) -> StakingLedger | None:
    raw = storage.Ledger.get(state, stash)  # type: ignore[arg-type]
    return None if raw is None else StakingLedger.from_scale(raw)


def get_session_key(state: StateReader, stash: bytes) -> bytes | None:
    return storage.SessionKeys.get(state, stash)  # type: ignore[arg-type]


def get_session_key_owner(state: StateReader, session_key: bytes) -> bytes | None:
    return storage.KeyOwner.get(state, session_key)  # type: ignore[arg-type]


def get_validator_by_session_key(state: StateReader, session_key: bytes) -> bytes | None:
    """The stash that signs with `session_key`: in the current era's set first (a validator may
    have replaced its key for the next era), else the key's registered owner."""
    for account, key, _stake in get_active_validators(state):
        if key == session_key:
            return account
    return get_session_key_owner(state, session_key)


def get_era_reward_points(state: StateReader, era: int) -> dict[bytes, int]:
    return dict(storage.ErasRewardPoints.get(state, era)["individual"])  # type: ignore[arg-type]


def get_offences(state: StateReader, staker: bytes) -> list[dict[str, Any]]:
    return storage.Offences.get(state, staker)  # type: ignore[arg-type]
