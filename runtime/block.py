"""Headers and blocks. The header is Substrate's SCALE header, so its hash is what Substrate
clients compute (polkadot.js hashes headers itself to build mortal transactions); the block
envelope in the database and on the wire is canonical msgpack around the header bytes.

Digest: PreRuntime(b"gsyn", slot u64 ++ author AccountId) is put in by the author; Seal(b"gsyn",
ed25519 signature of the pre-seal header hash) is added last and is excluded from what it signs.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace

from runtime.codec import canonical
from runtime.codec.errors import CodecError
from runtime.hashing import blake2_256
from runtime.merkle import hash_leaf, merkle_root
from runtime.types import Header as HeaderType

ENGINE_ID = b"gsyn"
MAX_BLOCK_BYTES = 8 * 1024 * 1024
_PRE = struct.Struct("<Q32s")


@dataclass(frozen=True, slots=True)
class Header:
    parent_hash: bytes
    number: int
    state_root: bytes
    extrinsics_root: bytes
    digest: tuple[tuple[str, bytes, bytes], ...] = ()  # (kind, engine id, data)
    # The hash, computed once: fork choice and finality ask for it again and again. Not an init
    # field, so `replace` (a changed header) never carries the old hash.
    _hash: bytes | None = field(default=None, init=False, compare=False, repr=False)

    def encode(self) -> bytes:
        logs = [(kind, (engine, data)) for kind, engine, data in self.digest]
        return HeaderType.encode({
            "parent_hash": self.parent_hash,
            "number": self.number,
            "state_root": self.state_root,
            "extrinsics_root": self.extrinsics_root,
            "digest": {"logs": logs},
        })

    @classmethod
    def decode(cls, data: bytes) -> Header:
        value = HeaderType.decode(data)
        digest = []
        for kind, payload in value["digest"]["logs"]:
            if kind not in ("PreRuntime", "Seal", "Consensus"):
                raise CodecError(f"header: digest item {kind} is not used by this chain")
            digest.append((kind, payload[0], payload[1]))
        return cls(value["parent_hash"], value["number"], value["state_root"], value["extrinsics_root"], tuple(digest))

    @property
    def hash(self) -> bytes:
        cached = self._hash
        if cached is None:
            cached = blake2_256(self.encode())
            object.__setattr__(self, "_hash", cached)
        return cached

    def pre_seal(self) -> Header:
        """The header without its seal: what the seal signs (by its hash)."""
        return replace(self, digest=tuple(d for d in self.digest if d[0] != "Seal"))

    def seal(self) -> bytes | None:
        last = self.digest[-1] if self.digest else None
        return last[2] if last is not None and last[0] == "Seal" and last[1] == ENGINE_ID else None

    def with_seal(self, signature: bytes) -> Header:
        return replace(self, digest=self.pre_seal().digest + (("Seal", ENGINE_ID, signature),))

    def slot_and_author(self) -> tuple[int, bytes]:
        """The slot and author from the PreRuntime digest; raises CodecError when absent."""
        for kind, engine, data in self.digest:
            if kind == "PreRuntime" and engine == ENGINE_ID:
                if len(data) != _PRE.size:
                    raise CodecError("header: PreRuntime digest has the wrong length")
                slot, author = _PRE.unpack(data)
                return slot, author
        raise CodecError("header: no PreRuntime digest with slot and author")


def pre_runtime_digest(slot: int, author: bytes) -> tuple[str, bytes, bytes]:
    return ("PreRuntime", ENGINE_ID, _PRE.pack(slot, author))


def compute_extrinsics_root(extrinsics: tuple[bytes, ...] | list[bytes]) -> bytes:
    return merkle_root([hash_leaf(xt) for xt in extrinsics])


@dataclass(frozen=True, slots=True)
class Block:
    header: Header
    extrinsics: tuple[bytes, ...]

    def encode(self) -> bytes:
        """The canonical msgpack envelope: [SCALE header, [extrinsic bytes, ...]]."""
        return canonical.encode([self.header.encode(), list(self.extrinsics)])

    @classmethod
    def decode(cls, data: bytes) -> Block:
        value = canonical.decode(data, max_bytes=MAX_BLOCK_BYTES)
        if not isinstance(value, list) or len(value) != 2 or not isinstance(value[0], bytes) \
                or not isinstance(value[1], list) or not all(isinstance(x, bytes) for x in value[1]):
            raise CodecError("block: expected [header bytes, [extrinsic bytes...]]")
        return cls(Header.decode(value[0]), tuple(value[1]))

    @property
    def hash(self) -> bytes:
        return self.header.hash
