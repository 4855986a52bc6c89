"""A bounded memo of signature checks: the pool revalidates every pending transaction after each
block, and a block from a peer repeats transactions this node already checked; a signature's
validity is a pure function of (scheme, public key, message, signature), so a remembered answer
is the answer."""

from __future__ import annotations

from runtime.crypto import verify_signature
from runtime.hashing import blake2_256


class SignatureCache:
    def __init__(self, capacity: int = 65_536):
        self.capacity = capacity
        self._known: dict[bytes, bool] = {}
        self.hits = 0
        self.misses = 0

    def __call__(self, scheme: str, public: bytes, message: bytes, signature: bytes) -> bool:
        key = blake2_256(scheme.encode() + public + signature + message)
        known = self._known.get(key)
        if known is not None:
            self.hits += 1
            return known
        self.misses += 1
        result = verify_signature(scheme, public, message, signature)
        if len(self._known) >= self.capacity:
            self._known.clear()
        self._known[key] = result
        return result
