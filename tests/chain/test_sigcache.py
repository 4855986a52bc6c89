"""The node's signature memo answers exactly as the real check does, and remembers."""

from gensyn_node.keyring import dev_account
from gensyn_node.sigcache import SignatureCache
from runtime.crypto import ED25519, SR25519


def test_signature_cache_matches_real_verification_and_remembers():
    cache = SignatureCache(capacity=4)
    for scheme in (SR25519, ED25519):
        key = dev_account("alice", scheme)
        signature = key.sign(b"message")
        assert cache(scheme, key.public, b"message", signature) is True
        assert cache(scheme, key.public, b"message", signature) is True
        assert cache(scheme, key.public, b"other", signature) is False
        assert cache(scheme, key.public, b"other", signature) is False
    assert cache.hits == 4 and cache.misses == 4
    assert len(cache._known) <= 4
