"""Chain parameters: what a chain spec sets and the pallets read (Substrate's `Config` constants).

They live in genesis storage (`System.ChainParameters`) so that every node executing a block
reads the same values, and metadata publishes them as constants.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from runtime.codec.scale import Struct, u8, u32, u64, u128

ChainParametersType = Struct(
    ("gensyn_runtime", "ChainParameters"),
    [
        ("existential_deposit", u128),
        ("slot_duration_ms", u64),
        ("era_length", u32),
        ("bonding_duration", u32),
        ("max_validators", u32),
        ("min_validator_bond", u128),
        ("base_fee", u128),
        ("length_fee", u128),
        ("weight_fee_per_million", u128),
        ("treasury_percent", u8),
        ("max_block_weight", u64),
        ("max_block_length", u32),
        ("max_timestamp_drift_ms", u64),
        ("era_reward_per_block", u128),
    ],
)


class InvalidParameters(ValueError):
    """A chain spec asked for parameters the runtime cannot run with."""


@dataclass(frozen=True, slots=True)
class ChainParameters:
    existential_deposit: int = 10**10
    slot_duration_ms: int = 2000
    era_length: int = 100
    bonding_duration: int = 2
    max_validators: int = 16
    min_validator_bond: int = 10**12
    base_fee: int = 10**8
    length_fee: int = 10**6
    weight_fee_per_million: int = 10**6
    treasury_percent: int = 20
    max_block_weight: int = 2 * 10**12
    max_block_length: int = 5 * 1024 * 1024
    max_timestamp_drift_ms: int = 30_000
    era_reward_per_block: int = 10**12

    def validate(self) -> None:
        """Verify that every parameter is in a range the runtime supports."""
        if self.slot_duration_ms < 100:
            raise InvalidParameters("slot_duration_ms must be at least 100")
        if self.era_length < 1 or self.max_validators < 1:
            raise InvalidParameters("era_length and max_validators must be positive")
        # A validator must stay slashable for at least the era it validated in.
        if self.bonding_duration < 1:
            raise InvalidParameters("bonding_duration must be at least 1 era")
        if not 0 <= self.treasury_percent <= 100:
            raise InvalidParameters("treasury_percent must be within 0..100")
        for f in fields(self):
            if getattr(self, f.name) < 0:
                raise InvalidParameters(f"{f.name} must not be negative")

    def to_scale(self) -> bytes:
        return ChainParametersType.encode(asdict(self))

    @classmethod
    def from_scale(cls, data: bytes) -> ChainParameters:
        return cls(**ChainParametersType.decode(data))
