"""The runtime's shared SCALE types, with Substrate's type paths (metadata V14 reads meaning
from them): accounts, addresses, signatures, eras, weights, dispatch results, headers."""

from __future__ import annotations

from typing import Any

from runtime.codec.errors import CodecError
from runtime.codec.scale import (
    H256,
    Enum,
    FixedBytes,
    ScaleType,
    Struct,
    Variant,
    Vec,
    byte_vec,
    compact_u32,
    compact_u64,
    u8,
    u32,
    u64,
    u128,
)

AccountId = FixedBytes(32, ("sp_core", "crypto", "AccountId32"))
Balance = u128
BlockNumber = u32
Nonce = u32

MultiAddress = Enum(
    ("sp_runtime", "multiaddress", "MultiAddress"),
    [
        Variant("Id", 0, [(None, AccountId)]),
        Variant("Index", 1, [(None, compact_u32)]),
        Variant("Raw", 2, [(None, byte_vec)]),
        Variant("Address32", 3, [(None, FixedBytes(32))]),
        Variant("Address20", 4, [(None, FixedBytes(20))]),
    ],
    # Substrate's MultiAddress<AccountId, AccountIndex>: clients read the account type from it.
    params=(("AccountId", AccountId), ("AccountIndex", u32)),
)

MultiSignature = Enum(
    ("sp_runtime", "MultiSignature"),
    [
        Variant("Ed25519", 0, [(None, FixedBytes(64, ("sp_core", "ed25519", "Signature")))]),
        Variant("Sr25519", 1, [(None, FixedBytes(64, ("sp_core", "sr25519", "Signature")))]),
        Variant("Ecdsa", 2, [(None, FixedBytes(65, ("sp_core", "ecdsa", "Signature")))]),
    ],
)


class EraType(ScaleType):
    """Substrate's transaction era: immortal (one zero byte) or mortal (period, phase) in two bytes."""

    path = ("sp_runtime", "generic", "era", "Era")

    def encode(self, value: Any) -> bytes:
        if value is None or value == "Immortal":
            return b"\x00"
        period, phase = value
        if period < 4 or period > 1 << 16 or period & (period - 1) or not 0 <= phase < period:
            raise CodecError(f"Era: invalid mortal era ({period}, {phase})")
        quantize = max(period >> 12, 1)
        encoded = min(15, max(1, period.bit_length() - 2)) | ((phase // quantize) << 4)
        return encoded.to_bytes(2, "little")

    def decode_from(self, data: bytes, pos: int) -> tuple[Any, int]:
        if pos >= len(data):
            raise CodecError("Era: truncated")
        if data[pos] == 0:
            return None, pos + 1
        if pos + 2 > len(data):
            raise CodecError("Era: truncated")
        encoded = int.from_bytes(data[pos : pos + 2], "little")
        period = 2 << (encoded % (1 << 4))
        quantize = max(period >> 12, 1)
        phase = (encoded >> 4) * quantize
        if period < 4 or phase >= period:
            raise CodecError("Era: invalid mortal era")
        return (period, phase), pos + 2


Era = EraType()


def era_birth(era: tuple[int, int] | None, current: int) -> int:
    """The first block at which a transaction of `era` is valid, given block `current` (Substrate)."""
    if era is None:
        return 0
    period, phase = era
    return (max(current, phase) - phase) // period * period + phase


def era_death(era: tuple[int, int] | None, current: int) -> int:
    if era is None:
        return 2**64 - 1
    return era_birth(era, current) + era[0]


def mortal_era(current: int, period: int = 64) -> tuple[int, int]:
    """The era a client builds at block `current`: period rounded to a power of two in [4, 65536]."""
    period = max(4, min(1 << 16, 1 << (max(period, 1) - 1).bit_length()))
    quantize = max(period >> 12, 1)
    phase = current % period // quantize * quantize
    return period, phase


Weight = Struct(("sp_weights", "weight_v2", "Weight"), [("ref_time", compact_u64), ("proof_size", compact_u64)])
DispatchClass = Enum(
    ("frame_support", "dispatch", "DispatchClass"),
    [Variant("Normal", 0), Variant("Operational", 1), Variant("Mandatory", 2)],
)
Pays = Enum(("frame_support", "dispatch", "Pays"), [Variant("Yes", 0), Variant("No", 1)])
DispatchInfo = Struct(
    ("frame_support", "dispatch", "DispatchInfo"),
    [("weight", Weight), ("class", DispatchClass), ("pays_fee", Pays)],
)
ModuleError = Struct(("sp_runtime", "ModuleError"), [("index", u8), ("error", FixedBytes(4))])
TokenError = Enum(
    ("sp_runtime", "TokenError"),
    [
        Variant(n, i)
        for i, n in enumerate(
            ["FundsUnavailable", "OnlyProvider", "BelowMinimum", "CannotCreate", "UnknownAsset", "Frozen",
             "Unsupported", "CannotCreateHold", "NotExpendable", "Blocked"]
        )
    ],
)
ArithmeticError = Enum(
    ("sp_arithmetic", "ArithmeticError"),
    [Variant("Underflow", 0), Variant("Overflow", 1), Variant("DivisionByZero", 2)],
)
DispatchError = Enum(
    ("sp_runtime", "DispatchError"),
    [
        Variant("Other", 0),
        Variant("CannotLookup", 1),
        Variant("BadOrigin", 2),
        Variant("Module", 3, [(None, ModuleError)]),
        Variant("ConsumerRemaining", 4),
        Variant("NoProviders", 5),
        Variant("TooManyConsumers", 6),
        Variant("Token", 7, [(None, TokenError)]),
        Variant("Arithmetic", 8, [(None, ArithmeticError)]),
        Variant("Transactional", 9),
        Variant("Exhausted", 10),
        Variant("Corruption", 11),
        Variant("Unavailable", 12),
        Variant("RootNotAllowed", 13),
    ],
)
Phase = Enum(
    ("frame_system", "Phase"),
    [Variant("ApplyExtrinsic", 0, [(None, u32)]), Variant("Finalization", 1), Variant("Initialization", 2)],
)
AccountData = Struct(
    ("pallet_balances", "types", "AccountData"),
    [("free", Balance), ("reserved", Balance), ("frozen", Balance), ("flags", u128)],
)
AccountInfo = Struct(
    ("frame_system", "AccountInfo"),
    [("nonce", Nonce), ("consumers", u32), ("providers", u32), ("sufficients", u32), ("data", AccountData)],
)
RuntimeVersion = Struct(
    ("sp_version", "RuntimeVersion"),
    [
        ("spec_name", byte_vec),
        ("impl_name", byte_vec),
        ("authoring_version", u32),
        ("spec_version", u32),
        ("impl_version", u32),
        ("apis", Vec(Struct(("ApiId",), [("id", FixedBytes(8)), ("version", u32)]))),
        ("transaction_version", u32),
        ("state_version", u8),
    ],
)
DigestItem = Enum(
    ("sp_runtime", "generic", "digest", "DigestItem"),
    [
        Variant("Other", 0, [(None, byte_vec)]),
        Variant("Consensus", 4, [(None, FixedBytes(4)), (None, byte_vec)]),
        Variant("Seal", 5, [(None, FixedBytes(4)), (None, byte_vec)]),
        Variant("PreRuntime", 6, [(None, FixedBytes(4)), (None, byte_vec)]),
        Variant("RuntimeEnvironmentUpdated", 8),
    ],
)
Digest = Struct(("sp_runtime", "generic", "digest", "Digest"), [("logs", Vec(DigestItem, max_len=64))])
Header = Struct(
    ("sp_runtime", "generic", "header", "Header"),
    [
        ("parent_hash", H256),
        ("number", compact_u32),
        ("state_root", H256),
        ("extrinsics_root", H256),
        ("digest", Digest),
    ],
)
Hash = H256
Moment = u64
