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


def _checks():
    checks = []
    for index, scheme in enumerate((SR25519, ED25519) * 40):
        key = dev_account(["alice", "bob", "charlie"][index % 3], scheme)
        message = b"message %d" % index
        signature = key.sign(message)
        if index % 7 == 0:
            message += b"!"  # a check that must fail
        checks.append((scheme, key.public, message, signature))
    return checks


def test_worker_answers_equal_local_verification():
    from gensyn_node.sigworker import SignatureWorker
    from runtime.crypto import verify_signature

    worker = SignatureWorker()
    try:
        cache = SignatureCache(worker=worker)
        checks = _checks()
        cache.prefetch(checks)
        assert [cache(*c) for c in checks] == [verify_signature(*c) for c in checks]
        assert cache.misses == 0  # every answer came from the worker
        cache.settle()
    finally:
        worker.close()


def test_worker_gone_falls_back_to_local_checks():
    from gensyn_node.sigworker import SignatureWorker
    from runtime.crypto import verify_signature

    worker = SignatureWorker()
    cache = SignatureCache(worker=worker)
    checks = _checks()
    worker._process.kill()
    worker._process.join()
    cache.prefetch(checks)
    assert [cache(*c) for c in checks] == [verify_signature(*c) for c in checks]
    cache.settle()
    worker.close()


def test_import_block_with_the_worker_imports_good_and_rejects_bad_blocks(tmp_path):
    from dataclasses import replace

    import pytest

    from gensyn_node.block_import import BlockImportError, import_block
    from gensyn_node.chain_db import ChainStore
    from gensyn_node.db.kv import MemoryKV
    from gensyn_node.sigworker import SignatureWorker
    from runtime.block import Block, compute_extrinsics_root
    from runtime.genesis import build_genesis
    from tests.chain.test_import import KEYS, build

    genesis, _storage, nodes = build_genesis({"balances": [(k.public, 10**18) for k in KEYS], "spec_version": 1})
    source = ChainStore(MemoryKV())
    source.initialize(genesis, nodes)
    good = build(source, genesis, genesis.hash, txs=3)
    body = list(good.extrinsics)
    tampered = bytearray(body[1])
    tampered[40] ^= 1  # inside the signature
    body[1] = bytes(tampered)
    bad = Block(replace(good.header, extrinsics_root=compute_extrinsics_root(body)), tuple(body))
    worker = SignatureWorker()
    try:
        store = ChainStore(MemoryKV())
        store.initialize(genesis, nodes)
        verify = SignatureCache(worker=worker)
        before = sorted(store.kv.iterate(b""))
        with pytest.raises(BlockImportError, match="BadProof"):
            import_block(store, bad, verify=verify)
        assert sorted(store.kv.iterate(b"")) == before
        assert import_block(store, good, verify=verify).status.value == "best"
        assert verify.misses == 0
    finally:
        worker.close()
