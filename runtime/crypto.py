"""Signature checks and addresses: ed25519 (PyNaCl) and sr25519 (schnorrkel bindings), SS58.

Verification only: signing lives in the node's keyring, so the runtime stays pure.
"""

from __future__ import annotations

import hashlib

import nacl.bindings
import nacl.exceptions
import sr25519

from runtime.codec.errors import CodecError

ED25519 = "Ed25519"
SR25519 = "Sr25519"
ECDSA = "Ecdsa"
SS58_PREFIX = 42

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}


def verify_ed25519(public: bytes, message: bytes, signature: bytes) -> bool:
    try:
        nacl.bindings.crypto_sign_open(signature + message, public)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError, TypeError):
        return False
    return True


def verify_sr25519(public: bytes, message: bytes, signature: bytes) -> bool:
    try:
        return bool(sr25519.verify(signature, message, public))
    except (ValueError, TypeError):
        return False


def verify_signature(scheme: str, public: bytes, message: bytes, signature: bytes) -> bool:
    """True iff `signature` by `public` over `message` is valid in `scheme`."""
    if scheme == ED25519:
        return verify_ed25519(public, message, signature)
    if scheme == SR25519:
        return verify_sr25519(public, message, signature)
    return False


def _b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_B58[r])
    pad = len(data) - len(data.lstrip(b"\x00"))
    return "1" * pad + "".join(reversed(out))


def _b58decode(text: str) -> bytes:
    n = 0
    for c in text:
        if c not in _B58_INDEX:
            raise CodecError(f"ss58: invalid base58 character {c!r}")
        n = n * 58 + _B58_INDEX[c]
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    pad = len(text) - len(text.lstrip("1"))
    return b"\x00" * pad + body


def _ss58_checksum(payload: bytes) -> bytes:
    return hashlib.blake2b(b"SS58PRE" + payload, digest_size=64).digest()[:2]


def ss58_encode(account: bytes, prefix: int = SS58_PREFIX) -> str:
    if len(account) != 32 or not 0 <= prefix < 64:
        raise CodecError("ss58: need a 32-byte account and a prefix below 64")
    payload = bytes((prefix,)) + account
    return _b58encode(payload + _ss58_checksum(payload))


def ss58_decode(address: str, prefix: int | None = SS58_PREFIX) -> bytes:
    """The 32-byte account of an SS58 address; raises CodecError on a bad checksum or prefix."""
    raw = _b58decode(address)
    if len(raw) != 35:
        raise CodecError(f"ss58: {address!r} is not a 32-byte account address")
    payload, checksum = raw[:33], raw[33:]
    if _ss58_checksum(payload) != checksum:
        raise CodecError(f"ss58: bad checksum in {address!r}")
    if prefix is not None and payload[0] != prefix:
        raise CodecError(f"ss58: address prefix {payload[0]} is not this chain's {prefix}")
    return payload[1:]
