"""Keys that sign: accounts (sr25519 or ed25519), validators' session keys (ed25519), and
Substrate's well-known dev accounts (//Alice, //Bob, ...) derived from the dev phrase."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import nacl.bindings
import sr25519

from runtime.codec.scale import encode_compact
from runtime.crypto import ED25519, SR25519, ss58_encode

# The mini-secret of Substrate's dev phrase "bottom drive obey lake curtain smoke basket hold
# race lonely fit walk" (BIP39 entropy through PBKDF2-SHA512, as substrate-bip39 computes it).
DEV_SEED = bytes.fromhex("fac7959dbfe72f052e5a0c3c8d6530f202b02fd8f9f5ca3580ec8deb7797479e")
DEV_NAMES = ("alice", "bob", "charlie", "dave", "eve", "ferdie")


class KeyError_(ValueError):
    """A key URI or seed that cannot be parsed."""


@dataclass(frozen=True, slots=True)
class Keypair:
    scheme: str
    public: bytes
    secret: bytes  # sr25519: 64-byte secret key; ed25519: 64-byte libsodium secret (seed ++ public)

    def sign(self, message: bytes) -> bytes:
        if self.scheme == SR25519:
            return sr25519.sign((self.public, self.secret), message)
        return nacl.bindings.crypto_sign(message, self.secret)[:64]

    @property
    def address(self) -> str:
        return ss58_encode(self.public)


def _chain_code(junction: str) -> bytes:
    code = int(junction).to_bytes(8, "little") if junction.isdigit() else encode_compact(len(junction.encode())) + junction.encode()
    if len(code) > 32:
        code = hashlib.blake2b(code, digest_size=32).digest()
    return code.ljust(32, b"\x00")


def keypair_from_seed(seed: bytes, scheme: str = SR25519) -> Keypair:
    if len(seed) != 32:
        raise KeyError_("a seed is 32 bytes")
    if scheme == SR25519:
        public, secret = sr25519.pair_from_seed(seed)
        return Keypair(SR25519, bytes(public), bytes(secret))
    if scheme == ED25519:
        public, secret = nacl.bindings.crypto_sign_seed_keypair(seed)
        return Keypair(ED25519, public, secret)
    raise KeyError_(f"unknown scheme {scheme!r}")


def keypair_from_uri(uri: str, scheme: str = SR25519) -> Keypair:
    """`//Alice`, `0x<32-byte seed hex>`, or `0x<seed>//Hard//Junctions` (hard derivation only)."""
    uri = uri.strip()
    base, _, path = uri.partition("//")
    seed = DEV_SEED if base == "" else _parse_seed(base)
    junctions = [j for j in path.split("//") if j] if path else []
    if any("/" in j for j in junctions):
        raise KeyError_("soft derivation (/) is not supported; use hard junctions (//)")
    if scheme == ED25519:
        for j in junctions:
            seed = hashlib.blake2b(encode_compact(11) + b"Ed25519HDKD" + seed + _chain_code(j), digest_size=32).digest()
        return keypair_from_seed(seed, ED25519)
    if scheme != SR25519:
        raise KeyError_(f"unknown scheme {scheme!r}")
    public, secret = sr25519.pair_from_seed(seed)
    for j in junctions:
        _cc, public, secret = sr25519.hard_derive_keypair((_chain_code(j), public, secret), b"")
    return Keypair(SR25519, bytes(public), bytes(secret))


def _parse_seed(text: str) -> bytes:
    try:
        seed = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise KeyError_("a secret is //Name or 0x followed by a 32-byte hex seed") from None
    if len(seed) != 32:
        raise KeyError_("a hex seed is 32 bytes (64 hex digits)")
    return seed


def dev_account(name: str, scheme: str = SR25519) -> Keypair:
    """One of Substrate's well-known dev accounts by name (alice, bob, ...)."""
    return keypair_from_uri("//" + name.capitalize(), scheme)


def generate_seed() -> bytes:
    return os.urandom(32)
