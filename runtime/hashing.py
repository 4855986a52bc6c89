"""Hash functions of the chain: blake2b-256 everywhere, twox (xxhash) only in storage keys.

These are Substrate's `blake2_256`, `blake2_128`, `twox_64`, `twox_128` and the storage-key
hashers built from them, so a key that any Substrate tool computes finds the same value here.
"""

from __future__ import annotations

import hashlib

import xxhash


def blake2_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def blake2_128(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def twox_64(data: bytes) -> bytes:
    return xxhash.xxh64_intdigest(data, seed=0).to_bytes(8, "little")


def twox_128(data: bytes) -> bytes:
    return (
        xxhash.xxh64_intdigest(data, seed=0).to_bytes(8, "little")
        + xxhash.xxh64_intdigest(data, seed=1).to_bytes(8, "little")
    )


def twox_256(data: bytes) -> bytes:
    return b"".join(xxhash.xxh64_intdigest(data, seed=s).to_bytes(8, "little") for s in range(4))


def blake2_128_concat(data: bytes) -> bytes:
    return blake2_128(data) + data


def twox_64_concat(data: bytes) -> bytes:
    return twox_64(data) + data


def identity(data: bytes) -> bytes:
    return data


# Substrate's StorageHasher enum, in metadata order (the index is what metadata V14 carries).
STORAGE_HASHERS = {
    "Blake2_128": blake2_128,
    "Blake2_256": blake2_256,
    "Blake2_128Concat": blake2_128_concat,
    "Twox128": twox_128,
    "Twox256": twox_256,
    "Twox64Concat": twox_64_concat,
    "Identity": identity,
}
