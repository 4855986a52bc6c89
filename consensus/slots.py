"""Slots and leaders: time is cut into fixed slots; the author of slot s is drawn by stake
weight from the active validator set with hash(randomness, s). An offline author leaves an
empty slot. Pure functions; the clock is injected by the caller."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from runtime.hashing import blake2_256

_U64 = struct.Struct("<Q")


@dataclass(frozen=True, slots=True)
class Authority:
    account: bytes      # the validator's stash account (gets the fees and era rewards)
    session_key: bytes  # ed25519 public key that seals blocks and signs finality votes
    stake: int


def compute_slot(now_ms: int, slot_ms: int) -> int:
    return now_ms // slot_ms


def compute_slot_start_ms(slot: int, slot_ms: int) -> int:
    return slot * slot_ms


def get_slot_leader(authorities: Sequence[Authority], randomness: bytes, slot: int) -> Authority | None:
    """The authority whose stake interval holds hash(randomness, slot) mod total stake.
    Authorities are ordered by account so every node draws from the same line."""
    ordered = sorted((a for a in authorities if a.stake > 0), key=lambda a: a.account)
    total = sum(a.stake for a in ordered)
    if not total:
        return None
    point = int.from_bytes(blake2_256(randomness + _U64.pack(slot)), "little") % total
    for authority in ordered:
        if point < authority.stake:
            return authority
        point -= authority.stake
    return ordered[-1]
