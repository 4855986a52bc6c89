"""Fork choice and finality in the chain store: set_finalized checks ancestry, makes the
finalized branch canonical, never reverts; leaves are tracked; the signing record is
monotonic and survives a reopen."""

from __future__ import annotations

import pytest

from consensus.fork_choice import ForkChoiceError, is_descendant
from consensus.signing import DoubleSignRefused
from gensyn_node.block_import import import_block
from gensyn_node.chain_db import ChainStore
from gensyn_node.db.kv import MemoryKV
from gensyn_node.signing_record import KVSigningRecord
from runtime.genesis import build_genesis
from tests.chain.test_import import KEYS, build


@pytest.fixture
def chain():
    header, _storage, nodes = build_genesis({"balances": [(k.public, 10**18) for k in KEYS]})
    store = ChainStore(MemoryKV())
    store.initialize(header, nodes)
    return header, nodes, store


def _grow(store, parent, genesis_hash, n, slot0, author=0):
    blocks = []
    for i in range(n):
        block = build(store, parent, genesis_hash, slot=slot0 + i, txs=0, author=author)
        import_block(store, block)
        blocks.append(block)
        parent = block.header
    return blocks


def test_set_finalized_on_a_fork_makes_it_canonical(chain):
    genesis, _nodes, store = chain
    a = _grow(store, genesis, genesis.hash, 3, slot0=1)            # a1..a3 best
    b = _grow(store, genesis, genesis.hash, 2, slot0=10, author=1)  # b1, b2 shorter fork
    assert store.best_hash == a[-1].hash
    assert set(store.leaf_hashes()) == {a[-1].hash, b[-1].hash}
    changed = store.set_finalized(b[0].hash, b"just")
    assert changed and store.best_hash == b[-1].hash
    assert store.hash_at(1) == b[0].hash and store.hash_at(2) == b[1].hash and store.hash_at(3) is None
    assert store.finalized_hash == b[0].hash and store.get_justification(b[0].hash) == b"just"
    assert store.leaf_hashes() == [b[-1].hash]  # the a-fork no longer contains the finalized block


def test_set_finalized_refuses_to_revert_and_changes_nothing(chain):
    genesis, _nodes, store = chain
    a = _grow(store, genesis, genesis.hash, 2, slot0=1)
    b = _grow(store, genesis, genesis.hash, 1, slot0=10, author=1)
    store.set_finalized(a[1].hash)
    before = sorted(store.kv.iterate(b""))
    for bad in (b[0].hash, a[0].hash, genesis.hash, bytes(32)):
        with pytest.raises(ForkChoiceError):
            store.set_finalized(bad)
    assert sorted(store.kv.iterate(b"")) == before


def test_is_descendant_walks_forks(chain):
    genesis, _nodes, store = chain
    a = _grow(store, genesis, genesis.hash, 2, slot0=1)
    b = _grow(store, a[0].header, genesis.hash, 2, slot0=10, author=1)
    assert is_descendant(store, b[1].header, a[0].header)
    assert not is_descendant(store, b[1].header, a[1].header)
    assert is_descendant(store, a[1].header, genesis)


def test_signing_record_is_monotonic_and_durable(tmp_path):
    store = ChainStore.open(str(tmp_path / "db"))
    record = KVSigningRecord(store.kv)
    key = b"\x07" * 32
    a, b, e = (b"\xaa" * 32, 5), (b"\xbb" * 32, 5), (b"\xee" * 32, 1)
    record.record_slot(key, 5)
    with pytest.raises(DoubleSignRefused):
        record.record_slot(key, 5)
    record.record_vote(key, 0, 3, 0, a, e)
    record.record_vote(key, 0, 3, 0, a, e)  # the same vote again: allowed (same signature)
    with pytest.raises(DoubleSignRefused):
        record.record_vote(key, 0, 3, 0, b, e)  # another prevote in round 3: an equivocation
    record.record_vote(key, 0, 3, 1, b, e)
    with pytest.raises(DoubleSignRefused):
        record.record_vote(key, 0, 2, 1, a, e)
    store.close()
    record = KVSigningRecord(ChainStore.open(str(tmp_path / "db")).kv)
    last = record.get_vote_record(key)
    assert (last.set_id, last.round, last.estimate, last.prevote, last.precommit) == (0, 3, e, a, b)
    with pytest.raises(DoubleSignRefused):
        record.record_slot(key, 4)
    with pytest.raises(DoubleSignRefused):
        record.record_vote(key, 0, 3, 1, a, e)
    record.record_slot(key, 6)
    record.record_vote(key, 1, 1, 0, a, e)
    assert record.get_vote_record(key).round == 1 and record.get_vote_record(key).precommit is None
    assert record.get_vote_record(b"\x08" * 32) is None


def test_signing_record_keeps_the_previous_rounds_targets(tmp_path):
    """A restarted voter re-issues its votes of the round before its last one too (only it
    resends them), so the record keeps their targets, across a reopen."""
    store = ChainStore.open(str(tmp_path / "db"))
    record = KVSigningRecord(store.kv)
    key = b"\x07" * 32
    a, b, e = (b"\xaa" * 32, 5), (b"\xbb" * 32, 6), (b"\xee" * 32, 1)
    record.record_vote(key, 0, 3, 0, a, e)
    record.record_vote(key, 0, 3, 1, b, e)
    record.record_vote(key, 0, 4, 0, b, e)
    store.close()
    record = KVSigningRecord(ChainStore.open(str(tmp_path / "db")).kv)
    last = record.get_vote_record(key)
    assert (last.round, last.prevote, last.previous_prevote, last.previous_precommit) == (4, b, a, b)
    record.record_vote(key, 0, 6, 0, b, e)  # round 5 skipped (joined a later round): nothing to re-issue
    last = record.get_vote_record(key)
    assert (last.round, last.previous_prevote, last.previous_precommit) == (6, None, None)


def test_signing_record_reads_a_record_without_the_previous_round():
    from gensyn_node.db import keys
    from runtime.codec import canonical

    kv = MemoryKV()
    a, e = [b"\xaa" * 32, 5], [b"\xee" * 32, 1]
    kv.write({keys.signing_state_key(b"\x01" * 32): canonical.encode([9, [0, 3, e, a, None]])})
    last = KVSigningRecord(kv).get_vote_record(b"\x01" * 32)
    assert (last.round, last.prevote, last.previous_prevote, last.previous_precommit) == (3, tuple(a), None, None)


def test_signing_record_reads_the_slot_only_record():
    kv = MemoryKV()
    from gensyn_node.db import keys

    kv.write({keys.signing_state_key(b"\x01" * 32): (9).to_bytes(8, "big")})
    record = KVSigningRecord(kv)
    with pytest.raises(DoubleSignRefused):
        record.record_slot(b"\x01" * 32, 9)
    record.record_vote(b"\x01" * 32, 0, 1, 0, (b"\x02" * 32, 1), (b"\x02" * 32, 1))
    record.record_slot(b"\x01" * 32, 10)
    assert record.get_vote_record(b"\x01" * 32).prevote == (b"\x02" * 32, 1)
