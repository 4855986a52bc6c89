"""import_block and the chain store: best chain, forks and reorgs, finality, rejection of bad
blocks with the store untouched, reopening at the committed head."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gensyn_node.block_import import (
    BlockImportError,
    ImportErrorKind,
    ImportStatus,
    execute_chain_for_import,
    execute_for_import,
    import_block,
)
from gensyn_node.chain_db import ChainStore, GenesisMismatch
from gensyn_node.db.kv import MemoryKV
from gensyn_node.keyring import keypair_from_seed
from runtime.block import Block
from runtime.crypto import ED25519
from runtime.executive import BlockBuilder
from runtime.extrinsic import encode_signed, signing_payload
from runtime.genesis import build_genesis
from runtime.pallets.system.account import get_account
from runtime.storage import OverlayState
from runtime.types import Era
from runtime.version import get_runtime

KEYS = [keypair_from_seed(i.to_bytes(32, "little"), ED25519) for i in range(1, 5)]
RUNTIME = get_runtime(1)


@pytest.fixture
def chain():
    header, _storage, nodes = build_genesis({"balances": [(k.public, 10**18) for k in KEYS], "spec_version": 1})
    store = ChainStore(MemoryKV())
    store.initialize(header, nodes)
    return header, nodes, store


def transfer(store, parent, genesis_hash, sender=0, amount=10**12):
    key = KEYS[sender]
    nonce = get_account(OverlayState(store.state_at(parent.hash).get), key.public).nonce
    call = RUNTIME.encode_call("Balances", "transfer_keep_alive", {"dest": ("Id", KEYS[sender + 1].public), "value": amount})
    payload = signing_payload(call, Era.encode(None), nonce, 0, 1, 1, genesis_hash, genesis_hash)
    return encode_signed(call, key.public, ED25519, key.sign(payload), None, nonce, 0)


def build(store, parent, genesis_hash, slot=None, txs=1, author=0):
    builder = BlockBuilder(store.state_at(parent.hash), parent, slot=slot or parent.number + 1,
                           author=KEYS[author].public, timestamp_ms=(slot or parent.number + 1) * 2000)
    for i in range(txs):
        builder.push(transfer(store, parent, genesis_hash, sender=i % 3) if i < 3 else transfer(store, parent, genesis_hash))
    block, _executed = builder.build()
    return block


def test_import_block_extends_best_and_reopens_at_head(tmp_path, chain):
    genesis, nodes, _ = chain
    store = ChainStore.open(str(tmp_path / "db"))
    store.initialize(genesis, nodes)
    parent = genesis
    for _ in range(3):
        block = build(store, parent, genesis.hash)
        result = import_block(store, block)
        assert result.status is ImportStatus.IMPORTED_BEST
        parent = block.header
    assert import_block(store, block).status is ImportStatus.ALREADY_KNOWN
    store.close()
    reopened = ChainStore.open(str(tmp_path / "db"))
    assert reopened.best_hash == parent.hash
    assert reopened.best_header().state_root == parent.state_root
    assert reopened.hash_at(3) == parent.hash
    reopened.close()


def test_import_block_fork_then_reorg_to_longer_chain(chain):
    genesis, _nodes, store = chain
    a1 = build(store, genesis, genesis.hash, slot=1)
    b1 = build(store, genesis, genesis.hash, slot=2, author=1)
    assert import_block(store, a1).status is ImportStatus.IMPORTED_BEST
    assert import_block(store, b1).status is ImportStatus.IMPORTED_FORK
    assert store.best_hash == a1.hash  # first seen wins a tie
    b2 = build(store, b1.header, genesis.hash, slot=3)
    result = import_block(store, b2)
    assert result.status is ImportStatus.IMPORTED_BEST and result.reorg
    assert store.hash_at(1) == b1.hash and store.hash_at(2) == b2.hash


def test_import_block_refuses_fork_below_finalized(chain):
    genesis, _nodes, store = chain
    a1 = build(store, genesis, genesis.hash, slot=1)
    b1 = build(store, genesis, genesis.hash, slot=2, author=1)
    import_block(store, a1)
    store.set_finalized(a1.hash)
    with pytest.raises(BlockImportError, match="finalized") as info:
        import_block(store, b1)
    assert info.value.kind is ImportErrorKind.BELOW_FINALIZED and not info.value.kind.is_punishable
    assert not store.has_block(b1.hash)


@pytest.mark.parametrize("tamper", ["state_root", "extrinsics_root", "bad_signature", "garbage_extrinsic", "number", "parent"])
def test_import_block_rejects_bad_block_and_leaves_store_unchanged(chain, tamper):
    genesis, _nodes, store = chain
    good = build(store, genesis, genesis.hash, txs=2)
    header, body = good.header, list(good.extrinsics)
    if tamper == "state_root":
        header = replace(header, state_root=bytes(32))
    elif tamper == "extrinsics_root":
        header = replace(header, extrinsics_root=bytes(32))
    elif tamper == "bad_signature":
        xt = bytearray(body[1])
        xt[40] ^= 1  # inside the signature
        body[1] = bytes(xt)
    elif tamper == "garbage_extrinsic":
        body[1] = b"\x08\xff\xff"
    elif tamper == "number":
        header = replace(header, number=5)
    elif tamper == "parent":
        header = replace(header, parent_hash=b"\x11" * 32)
    if tamper in ("bad_signature", "garbage_extrinsic"):
        from runtime.block import compute_extrinsics_root
        header = replace(header, extrinsics_root=compute_extrinsics_root(body))
    before = sorted(store.kv.iterate(b""))
    with pytest.raises(BlockImportError) as info:
        import_block(store, Block(header, tuple(body)))
    assert info.value.reason
    # An unknown parent is useless (sync may fetch it), everything else here is invalid.
    expected = ImportErrorKind.UNKNOWN_PARENT if tamper == "parent" else ImportErrorKind.INVALID
    assert info.value.kind is expected and info.value.kind.is_punishable is (tamper != "parent")
    assert sorted(store.kv.iterate(b"")) == before
    assert store.best_hash == genesis.hash


def test_chain_store_refuses_another_chains_database(chain):
    _genesis, _nodes, store = chain
    other, _s, other_nodes = build_genesis({"balances": [(KEYS[0].public, 10**17)], "spec_version": 1})
    with pytest.raises(GenesisMismatch):
        store.initialize(other, other_nodes)


def test_block_envelope_roundtrip_and_rejects_garbage(chain):
    genesis, _nodes, store = chain
    block = build(store, genesis, genesis.hash)
    assert Block.decode(block.encode()) == block
    from runtime.codec.errors import CodecError
    for bad in (b"", b"\x92\x01\x02", block.encode() + b"\x00", block.encode()[:-3]):
        with pytest.raises(CodecError):
            Block.decode(bad)


def test_execute_for_import_writes_nothing_and_import_commits_its_result(chain):
    genesis, _nodes, store = chain
    block = build(store, genesis, genesis.hash, txs=2)
    before = sorted(store.kv.iterate(b""))
    executed = execute_for_import(store, block)
    assert sorted(store.kv.iterate(b"")) == before  # the worker-thread half writes nothing
    result = import_block(store, block, executed=executed)
    assert result.status is ImportStatus.IMPORTED_BEST and store.best_hash == block.hash


def _source_chain(genesis, nodes, count, txs=2):
    """`count` blocks built and committed on a store of their own: a peer's chain to import."""
    source = ChainStore(MemoryKV())
    source.initialize(genesis, nodes)
    parent, blocks = genesis, []
    for _ in range(count):
        block = build(source, parent, genesis.hash, txs=txs)
        import_block(source, block)
        blocks.append(block)
        parent = block.header
    return source, blocks


def test_execute_chain_runs_each_block_on_the_state_the_one_before_leaves_and_writes_nothing(chain):
    genesis, nodes, store = chain
    source, blocks = _source_chain(genesis, nodes, 4)
    before = sorted(store.kv.iterate(b""))
    seen = []

    def seal_check(header, parent, state):
        # The leader rule reads the parent's state: here the state of a block not yet on disk.
        assert state.root == parent.state_root
        seen.append(header.number)

    executed, refused = execute_chain_for_import(store, blocks, seal_check=seal_check, budget_seconds=60)
    assert refused is None and seen == [1, 2, 3, 4]
    assert [e.state_root for e in executed] == [b.header.state_root for b in blocks]
    assert sorted(store.kv.iterate(b"")) == before  # nothing written until the commits
    for block, result in zip(blocks, executed, strict=True):
        assert import_block(store, block, executed=result, seal_check=seal_check,
                            seal_checked=True).status is ImportStatus.IMPORTED_BEST
    assert seen == [1, 2, 3, 4]  # a seal checked in the worker thread is not checked again
    assert store.best_hash == blocks[-1].hash
    assert sorted(store.kv.iterate(b"")) == sorted(source.kv.iterate(b""))
    # A spent budget stops after the block that spent it: one at a time, in order.
    fresh = ChainStore(MemoryKV())
    fresh.initialize(genesis, nodes)
    executed, refused = execute_chain_for_import(fresh, blocks, budget_seconds=0)
    assert refused is None and [e.state_root for e in executed] == [blocks[0].header.state_root]


def test_execute_chain_stops_at_the_first_bad_block_with_its_reason(chain):
    genesis, nodes, store = chain
    _source, blocks = _source_chain(genesis, nodes, 3)
    bad = Block(replace(blocks[1].header, state_root=bytes(32)), blocks[1].extrinsics)
    before = sorted(store.kv.iterate(b""))
    executed, refused = execute_chain_for_import(store, [blocks[0], bad, blocks[2]], budget_seconds=60)
    assert [e.state_root for e in executed] == [blocks[0].header.state_root]
    assert refused is not None and refused.kind is ImportErrorKind.INVALID and "#2" in refused.reason
    assert sorted(store.kv.iterate(b"")) == before
    # A block whose parent is neither stored nor before it in the chain is an unknown parent.
    executed, refused = execute_chain_for_import(store, [blocks[1], blocks[2]], budget_seconds=60)
    assert executed == [] and refused is not None and refused.kind is ImportErrorKind.UNKNOWN_PARENT


def test_execute_chain_reads_a_block_whose_parent_is_stored_from_the_store(chain):
    """Only a block whose parent is the one before it runs on that uncommitted state."""
    genesis, nodes, store = chain
    _source, blocks = _source_chain(genesis, nodes, 1)
    sibling = build(store, genesis, genesis.hash, slot=5, author=1)
    executed, refused = execute_chain_for_import(store, [blocks[0], sibling], budget_seconds=60)
    assert refused is None
    assert [e.state_root for e in executed] == [blocks[0].header.state_root, sibling.header.state_root]


def test_a_seal_checked_result_still_has_its_chaining_checked_at_commit(chain):
    """Finality can move while a block executes off the loop: its commit checks the chaining
    again, even when the seal need not be."""
    genesis, nodes, store = chain
    _source, blocks = _source_chain(genesis, nodes, 1)
    executed = execute_for_import(store, blocks[0])
    rival = build(store, genesis, genesis.hash, slot=5, author=1)
    import_block(store, rival)
    store.set_finalized(rival.hash)
    with pytest.raises(BlockImportError) as info:
        import_block(store, blocks[0], executed=executed, seal_checked=True)
    assert info.value.kind is ImportErrorKind.BELOW_FINALIZED
    assert not store.has_block(blocks[0].hash)


def test_import_block_future_slot_is_ignorable_not_punishable(chain):
    from consensus.verification import FutureSlot

    genesis, _nodes, store = chain
    block = build(store, genesis, genesis.hash)

    def seal_check(header, parent, state):
        raise FutureSlot("slot 99 is in the future")

    with pytest.raises(BlockImportError) as info:
        import_block(store, block, seal_check=seal_check)
    assert info.value.kind is ImportErrorKind.FUTURE_SLOT and not info.value.kind.is_punishable
    assert not store.has_block(block.hash)


def test_the_chain_store_keeps_the_node_cache_it_is_given():
    """An empty NodeCache is falsy (it has a length): the store must still use it, with its
    budget, rather than its own default (this once made `state.py --cache-mb` a no-op)."""
    from runtime.trie import NodeCache

    cache = NodeCache(max_bytes=1 << 20)
    assert len(cache) == 0
    store = ChainStore(MemoryKV(), cache)
    assert store.cache is cache
