"""State and block pruning in the chain store: the window of kept states, forks that finality
rules out, the recorded mode, bodies pruning, and the invariant (nothing kept is lost, nothing
unreachable stays) after every step."""

from __future__ import annotations

import pytest

from consensus.fork_choice import ForkChoiceError
from gensyn_node.block_import import import_block
from gensyn_node.chain_db import (
    BLOCKS_PER_PRUNE_STEP,
    ChainStore,
    PruningMismatch,
    StateDiscarded,
)
from gensyn_node.db import keys
from gensyn_node.db.kv import MemoryKV
from gensyn_node.db.pruning import BlocksPruning, PruningModeError, StatePruning
from runtime.genesis import build_genesis
from runtime.pallets.system.storage import Account
from tests.chain.pruning_check import check_pruned_store, positions
from tests.chain.test_import import KEYS, build


def _genesis():
    return build_genesis({"balances": [(k.public, 10**18) for k in KEYS], "spec_version": 1})


def _store(state: str = "3", blocks: str = "archive-canonical", kv=None) -> tuple:
    header, _storage, nodes = _genesis()
    store = ChainStore(kv or MemoryKV(), state_pruning=StatePruning.parse(state),
                       blocks_pruning=BlocksPruning.parse(blocks))
    store.initialize(header, nodes)
    return header, nodes, store


def _extend(store, parent, genesis_hash, count, finalize=True, txs=2, author=0):
    blocks = []
    for _ in range(count):
        block = build(store, parent, genesis_hash, txs=txs, author=author)
        import_block(store, block)
        if finalize:
            store.set_finalized(block.hash)
        blocks.append(block)
        parent = block.header
    return blocks


def test_pruning_keeps_the_window_and_discards_older_states():
    genesis, _nodes, store = _store("3")
    blocks = _extend(store, genesis, genesis.hash, 8)
    for block in blocks[-3:]:
        assert list(store.state_at(block.hash).iter_prefix(Account.prefix))
    for old in [genesis, *[b.header for b in blocks[:-3]]]:
        with pytest.raises(StateDiscarded, match="State already discarded for 0x" + old.hash.hex()):
            store.state_at(old.hash)
        assert store.get_header(old.hash) == old  # headers stay
    sizes = check_pruned_store(store)
    assert sizes["kept_states"] == 3 and sizes["journals"] == 2


def test_pruning_store_holds_little_beyond_the_head_state():
    genesis, _nodes, store = _store("2")
    parent = genesis
    overheads = []
    for _ in range(4):
        parent = _extend(store, parent, genesis.hash, 5)[-1].header
        stored = sum(1 for _ in store.kv.iterate_keys(keys.TRIE_NODE))
        overheads.append(stored - len(positions(store, parent.state_root)))
    check_pruned_store(store)
    # The state itself grows (System.BlockHash); what the window adds on top of it does not.
    assert max(overheads) - min(overheads) <= 3 and max(overheads) < 20, overheads


def test_pruning_unfinalized_blocks_keep_their_states_until_finality():
    genesis, _nodes, store = _store("2")
    blocks = _extend(store, genesis, genesis.hash, 6, finalize=False)
    for header in [genesis, *[b.header for b in blocks]]:
        store.state_at(header.hash)
    check = check_pruned_store(store)
    assert check["pruned"] == 0 and check["journals"] == 6
    store.set_finalized(blocks[3].hash)  # finalizing several at once prunes up to the window
    with pytest.raises(StateDiscarded):
        store.state_at(blocks[1].hash)
    store.state_at(blocks[2].hash)
    store.state_at(blocks[5].hash)
    check_pruned_store(store)


def test_pruning_discards_forks_that_finality_rules_out():
    genesis, _nodes, store = _store("2")
    main = _extend(store, genesis, genesis.hash, 2)
    # Two forks off the finalized head: the same transfers by another author share most nodes.
    ours = _extend(store, main[-1].header, genesis.hash, 3, finalize=False)
    theirs = _extend(store, main[-1].header, genesis.hash, 2, finalize=False, author=1)
    stale = _extend(store, theirs[0].header, genesis.hash, 1, finalize=False, author=2)
    check_pruned_store(store)
    for block in theirs + stale:
        store.state_at(block.hash)  # unfinalized: kept
    store.set_finalized(ours[1].hash)
    for block in theirs + stale:
        assert not store.has_block(block.hash)
        assert store.get_body(block.hash) is None
    assert store.best_hash == ours[-1].hash
    store.state_at(ours[-1].hash)
    check_pruned_store(store)


def test_pruning_finalizing_a_block_off_the_best_chain_makes_it_best():
    genesis, _nodes, store = _store("2")
    longer = _extend(store, genesis, genesis.hash, 3, finalize=False)
    shorter = _extend(store, genesis, genesis.hash, 1, finalize=False, author=1)
    assert store.best_hash == longer[-1].hash
    store.set_finalized(shorter[0].hash)
    assert store.best_hash == shorter[0].hash and store.hash_at(1) == shorter[0].hash
    assert store.hash_at(2) is None
    assert not any(store.has_block(b.hash) for b in longer)
    check_pruned_store(store)


def test_pruning_refuses_to_finalize_off_the_finalized_chain():
    genesis, _nodes, store = _store("2")
    main = _extend(store, genesis, genesis.hash, 1, finalize=False)
    fork = _extend(store, genesis, genesis.hash, 1, finalize=False, author=1)
    store.set_finalized(main[0].hash)
    with pytest.raises(ForkChoiceError, match="below the finalized block"):
        store.set_finalized(genesis.hash)
    assert store.finalized_hash == main[0].hash
    assert not store.has_block(fork[0].hash)


def test_pruning_a_long_finality_jump_runs_in_bounded_steps():
    genesis, _nodes, store = _store("2")
    writes = []
    write = store.kv.write
    store.kv.write = lambda puts, deletes=(): (writes.append(1), write(puts, deletes))  # type: ignore[method-assign]
    blocks = _extend(store, genesis, genesis.hash, 3 * BLOCKS_PER_PRUNE_STEP, finalize=False, txs=1)
    before = len(writes)
    store.set_finalized(blocks[-1].hash)
    assert len(writes) - before >= 3  # the finality pointer with a first step, then more steps
    check_pruned_store(store)


def test_pruning_archive_keeps_every_state():
    genesis, _nodes, store = _store("archive")
    blocks = _extend(store, genesis, genesis.hash, 5)
    for header in [genesis, *[b.header for b in blocks]]:
        assert list(store.state_at(header.hash).iter_prefix(Account.prefix))
    assert not list(store.kv.iterate(keys.STATE_JOURNAL))


def test_pruning_mode_is_recorded_and_another_kind_is_refused(tmp_path):
    path = str(tmp_path / "db")
    header, nodes, store = _store("4", kv=ChainStore.open(path).kv)
    store.close()
    with pytest.raises(PruningMismatch) as info:
        ChainStore.open(path, state_pruning=StatePruning.parse("archive"))
    message = str(info.value)
    assert "\n" not in message and "--state-pruning 4" in message and "archive" in message
    with pytest.raises(PruningMismatch, match="--blocks-pruning archive-canonical"):
        ChainStore.open(path, blocks_pruning=BlocksPruning.parse("archive"))
    # The store is not left locked by a refused open; another window of the same kind is fine.
    reopened = ChainStore.open(path, state_pruning=StatePruning.parse("8"))
    reopened.initialize(header, nodes)
    assert reopened.state_pruning.window == 8
    reopened.close()
    recorded = ChainStore.open(path)  # no mode asked: the recorded one
    assert recorded.state_pruning.window == 8
    recorded.close()


def test_pruning_archive_database_refuses_a_pruned_mode(tmp_path):
    path = str(tmp_path / "db")
    _store("archive", kv=ChainStore.open(path).kv)[2].close()
    with pytest.raises(PruningMismatch, match="created with --state-pruning archive"):
        ChainStore.open(path, state_pruning=StatePruning.parse("256"))


def test_pruning_database_from_before_pruning_is_an_archive(tmp_path):
    path = str(tmp_path / "db")
    _store("archive", kv=ChainStore.open(path).kv)[2].close()
    legacy = ChainStore.open(path)
    legacy.kv.write({}, [keys.META_STATE_PRUNING, keys.META_BLOCKS_PRUNING, keys.META_STATE_PRUNED])
    legacy.close()
    assert ChainStore.open(path).state_pruning.is_archive
    with pytest.raises(PruningMismatch):
        ChainStore.open(path, state_pruning=StatePruning.parse("256"))


@pytest.mark.parametrize("text", ["", "0", "-1", "ten", "archive-canonical", "1e3", str(2**32)])
def test_pruning_mode_rejects_bad_state_values(text):
    with pytest.raises(PruningModeError):
        StatePruning.parse(text)


@pytest.mark.parametrize("text", ["", "0", "all", "canonical"])
def test_pruning_mode_rejects_bad_blocks_values(text):
    with pytest.raises(PruningModeError):
        BlocksPruning.parse(text)


def test_blocks_pruning_window_drops_old_bodies_and_keeps_headers():
    genesis, _nodes, store = _store("archive", blocks="2")
    blocks = _extend(store, genesis, genesis.hash, 5)
    for block in blocks[:3]:
        assert store.get_body(block.hash) is None
        assert store.get_header(block.hash) == block.header
        assert store.get_block(block.hash) is None
    for block in blocks[3:]:
        assert store.get_block(block.hash) == block


def test_blocks_pruning_archive_keeps_fork_bodies_but_not_their_states():
    genesis, _nodes, store = _store("2", blocks="archive")
    main = _extend(store, genesis, genesis.hash, 1, finalize=False)
    fork = _extend(store, genesis, genesis.hash, 1, finalize=False, author=1)
    store.set_finalized(main[0].hash)
    assert store.get_block(fork[0].hash) == fork[0]
    with pytest.raises(StateDiscarded):
        store.state_at(fork[0].hash)
    check_pruned_store(store)


def test_node_filter_built_from_leveldb_knows_every_stored_node(tmp_path):
    """The filter NodeCounts builds by scanning a LevelDB store has no false negative (a node it
    called absent would be written over its count), and rejects most nodes the store lacks."""
    from gensyn_node.db.kv import LevelKV
    from gensyn_node.db.state_db import NodeCounts
    from runtime.hashing import blake2_256

    kv = LevelKV(str(tmp_path / "db"))
    _header, nodes, store = _store(kv=kv)
    counts = NodeCounts(kv)
    counts.load()
    stored = [k[len(keys.TRIE_NODE):] for k in kv.iterate_keys(keys.TRIE_NODE)]
    assert sorted(stored) == sorted(nodes)
    assert counts.may_hold(stored).all()
    absent = [blake2_256(i.to_bytes(4, "big")) for i in range(2000)]
    assert counts.may_hold(absent).sum() < 40
    store.close()


def test_node_counts_loaded_at_open_serve_the_first_commit(tmp_path):
    """load_node_counts does the first commit's scan ahead (a node calls it at startup): the
    first commit then reads no node keys, and an archive store has nothing to load."""
    from gensyn_node.db.kv import LevelKV

    path = str(tmp_path / "db")
    header, _nodes, store = _store(kv=LevelKV(path))
    store.close()
    store = ChainStore(LevelKV(path))
    store.load_node_counts()
    assert store._counts._bits is not None
    scans = []
    original = store.kv.iterate_keys
    store.kv.iterate_keys = lambda prefix: scans.append(prefix) or original(prefix)  # type: ignore[method-assign]
    _extend(store, header, header.hash, 2)
    assert scans == []
    store.close()
    archive = ChainStore(MemoryKV(), state_pruning=StatePruning.parse("archive"))
    archive.load_node_counts()
    assert archive._counts._bits is None
