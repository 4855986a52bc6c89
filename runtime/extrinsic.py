"""Substrate's extrinsic format v4 in SCALE: what clients sign and what block bodies hold.

    Vec<u8>( version: 0x84 signed | 0x04 unsigned
             [signed: MultiAddress signer, MultiSignature, Era, Compact<nonce>, Compact<tip>]
             call: pallet index, call index, SCALE arguments )

The extrinsic's bytes, length prefix included, are kept as submitted; its hash is blake2-256 of
them. The signing payload is call ++ extra ++ additional-signed (spec version, tx version,
genesis hash, the era's birth block hash), blake2-256-hashed when longer than 256 bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from runtime.codec.errors import CodecError
from runtime.codec.scale import decode_compact, encode_compact
from runtime.hashing import blake2_256
from runtime.types import Era, MultiAddress, MultiSignature

EXTRINSIC_VERSION = 4
SIGNED_BIT = 0x80
MAX_EXTRINSIC_BYTES = 4 * 1024 * 1024
_U32 = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class Extrinsic:
    raw: bytes
    hash: bytes
    signer: bytes | None  # 32-byte account id when signed
    scheme: str | None
    signature: bytes | None
    era: tuple[int, int] | None
    nonce: int
    tip: int
    call_bytes: bytes
    call: tuple[int, str, dict[str, Any]]  # pallet index, call name, arguments
    era_bytes: bytes

    @property
    def is_signed(self) -> bool:
        return self.signer is not None

    @property
    def length(self) -> int:
        return len(self.raw)


def decode_extrinsic(raw: bytes, runtime: Any) -> Extrinsic:
    """Decode one extrinsic strictly against `runtime`'s calls; raises CodecError."""
    if not isinstance(raw, (bytes, bytearray)):
        raise CodecError("extrinsic: not bytes")
    raw = bytes(raw)
    if len(raw) > MAX_EXTRINSIC_BYTES:
        raise CodecError(f"extrinsic: {len(raw)} bytes is over the limit")
    try:
        length, pos = decode_compact(raw, 0)
    except CodecError as exc:
        raise CodecError(f"extrinsic: bad length prefix: {exc}") from None
    if length != len(raw) - pos:
        raise CodecError(f"extrinsic: length prefix says {length} bytes, {len(raw) - pos} follow")
    if pos >= len(raw):
        raise CodecError("extrinsic: empty")
    version = raw[pos]
    pos += 1
    if version & 0x7F != EXTRINSIC_VERSION:
        raise CodecError(f"extrinsic: unsupported version {version & 0x7F}")
    signer = scheme = signature = era = None
    nonce = tip = 0
    era_bytes = b""
    try:
        if version & SIGNED_BIT:
            (kind, address), pos = MultiAddress.decode_from(raw, pos)
            if kind != "Id":
                raise CodecError(f"extrinsic: signer must be a MultiAddress::Id, not {kind}")
            signer = address
            (scheme, signature), pos = MultiSignature.decode_from(raw, pos)
            era_start = pos
            era, pos = Era.decode_from(raw, pos)
            era_bytes = raw[era_start:pos]
            nonce, pos = decode_compact(raw, pos)
            tip, pos = decode_compact(raw, pos)
            if nonce > 0xFFFFFFFF or tip >= 1 << 128:
                raise CodecError("extrinsic: nonce or tip out of range")
        call_bytes = raw[pos:]
        call = runtime.decode_call(call_bytes)
    except (IndexError, ValueError) as exc:
        if isinstance(exc, CodecError):
            raise
        raise CodecError(f"extrinsic: malformed: {exc}") from None
    return Extrinsic(raw, blake2_256(raw), signer, scheme, signature, era, nonce, tip, call_bytes, call, era_bytes)


def signing_payload(call_bytes: bytes, era_bytes: bytes, nonce: int, tip: int, spec_version: int,
                    tx_version: int, genesis_hash: bytes, era_block_hash: bytes) -> bytes:
    payload = b"".join((call_bytes, era_bytes, encode_compact(nonce), encode_compact(tip),
                        _U32.pack(spec_version), _U32.pack(tx_version), genesis_hash, era_block_hash))
    return blake2_256(payload) if len(payload) > 256 else payload


def encode_signed(call_bytes: bytes, signer: bytes, scheme: str, signature: bytes,
                  era: tuple[int, int] | None, nonce: int, tip: int) -> bytes:
    body = b"".join((
        bytes((SIGNED_BIT | EXTRINSIC_VERSION,)),
        MultiAddress.encode(("Id", signer)),
        MultiSignature.encode((scheme, signature)),
        Era.encode(era),
        encode_compact(nonce),
        encode_compact(tip),
        call_bytes,
    ))
    return encode_compact(len(body)) + body


def encode_unsigned(call_bytes: bytes) -> bytes:
    body = bytes((EXTRINSIC_VERSION,)) + call_bytes
    return encode_compact(len(body)) + body
