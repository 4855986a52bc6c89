"""Staking's SCALE types (Substrate's pallet_staking layouts where Substrate has the type) and
the in-memory ledger the calls work on.

Types → constants → containers, as the consensus specs order them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runtime.codec.errors import CodecError
from runtime.codec.scale import (
    Bytes,
    Compact,
    Enum,
    FixedBytes,
    Option,
    Struct,
    Tuple,
    Variant,
    Vec,
    boolean,
    compact_u32,
    compact_u128,
    u32,
    u64,
)
from runtime.types import AccountId, Balance

# --- constants -----------------------------------------------------------------------------------

PERBILL = 1_000_000_000
PPM = 1_000_000
MAX_UNLOCKING_CHUNKS = 32
HISTORY_DEPTH = 84
MAX_OFFENCES_PER_VALIDATOR = 32
MAX_OFFENCE_REASON_LEN = 256
EraIndex = u32

# --- SCALE types ---------------------------------------------------------------------------------


class CompactPerbill(Compact):
    """`#[codec(compact)] Perbill`: a compact u32 that may not exceed one billion (100%). Its
    bytes are Compact<u32>'s, so metadata may describe it as that."""

    def __init__(self) -> None:
        super().__init__(u32)

    def encode(self, value: int) -> bytes:
        if isinstance(value, int) and value > PERBILL:
            raise CodecError(f"Perbill: {value} is above {PERBILL}")
        return super().encode(value)

    def decode_from(self, data: bytes, pos: int) -> tuple[int, int]:
        value, pos = super().decode_from(data, pos)
        if value > PERBILL:
            raise CodecError(f"Perbill: {value} is above {PERBILL}")
        return value, pos

    def name(self) -> str:
        return "Compact<Perbill>"


SessionKey = FixedBytes(32, ("sp_core", "ed25519", "Public"))

UnlockChunkType = Struct(("pallet_staking", "UnlockChunk"), [("value", compact_u128), ("era", compact_u32)])
StakingLedgerType = Struct(
    ("pallet_staking", "StakingLedger"),
    [
        ("stash", AccountId),
        ("total", compact_u128),
        ("active", compact_u128),
        ("unlocking", Vec(UnlockChunkType, max_len=MAX_UNLOCKING_CHUNKS)),
        ("legacy_claimed_rewards", Vec(EraIndex, max_len=HISTORY_DEPTH)),
    ],
)
ValidatorPrefs = Struct(("pallet_staking", "ValidatorPrefs"), [("commission", CompactPerbill()), ("blocked", boolean)])
RewardDestination = Enum(
    ("pallet_staking", "RewardDestination"),
    [
        Variant("Staked", 0),
        Variant("Stash", 1),
        Variant("Controller", 2),
        Variant("Account", 3, [(None, AccountId)]),
        Variant("None", 4),
    ],
)
ActiveEraInfo = Struct(("pallet_staking", "ActiveEraInfo"), [("index", EraIndex), ("start", Option(u64))])
# Substrate's BTreeMap<AccountId, u32> is a Vec of pairs sorted by key.
EraRewardPoints = Struct(
    ("pallet_staking", "EraRewardPoints"),
    [("total", u32), ("individual", Vec(Tuple(AccountId, u32)))],
)
Forcing = Enum(
    ("pallet_staking", "Forcing"),
    [Variant("NotForcing", 0), Variant("ForceNew", 1), Variant("ForceNone", 2), Variant("ForceAlways", 3)],
)
# One member of the elected set: (stash, ed25519 session key, active bonded stake).
ActiveValidator = Tuple(AccountId, SessionKey, Balance)
OffenceRecord = Struct(
    ("gensyn_runtime", "staking", "OffenceRecord"),
    [
        ("era", EraIndex),
        ("block", u32),
        ("fraction_ppm", u32),
        ("amount", Balance),
        ("reason", Bytes(max_len=MAX_OFFENCE_REASON_LEN)),
    ],
)

# --- containers ----------------------------------------------------------------------------------


@dataclass(slots=True)
class UnlockChunk:
    value: int
    era: int


@dataclass(slots=True)
class StakingLedger:
    """A stash's bond: `total` is reserved in Balances, `active` counts for elections, the
    unlocking chunks wait for their era before `withdraw_unbonded` frees them."""

    stash: bytes
    total: int
    active: int
    unlocking: list[UnlockChunk] = field(default_factory=list)

    def to_scale(self) -> dict[str, Any]:
        return {
            "stash": self.stash,
            "total": self.total,
            "active": self.active,
            "unlocking": [{"value": c.value, "era": c.era} for c in self.unlocking],
            "legacy_claimed_rewards": [],
        }

    @classmethod
    def from_scale(cls, value: dict[str, Any]) -> StakingLedger:
        chunks = [UnlockChunk(c["value"], c["era"]) for c in value["unlocking"]]
        return cls(value["stash"], value["total"], value["active"], chunks)

    def unlocking_total(self) -> int:
        return sum(c.value for c in self.unlocking)
