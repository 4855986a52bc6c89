"""The gadget wired into the node (in process, real LevelDB, a controlled clock): a dev chain
finalizes each block through it, justifications verify against the stored voter set, bad
votes and justifications are refused with the store unchanged, and a restarted validator
resumes voting from its signing record."""

from __future__ import annotations

import pytest

from consensus.authorities import get_voter_set
from consensus.finality_messages import JustificationError, decode_justification, verify_justification
from gensyn_node.chain_spec import dev_spec
from gensyn_node.keyring import dev_account
from gensyn_node.service import Node, NodeConfig
from runtime.crypto import ED25519

ALICE_SESSION = dev_account("alice", ED25519)


class Clock:
    def __init__(self):
        self.now = 1_000.0

    def __call__(self):
        return self.now


def open_node(path, clock):
    config = NodeConfig(spec=dev_spec(), base_path=str(path), validator=True, session_key=ALICE_SESSION,
                        rpc_enabled=False)
    return Node(config, clock=clock)


def author(node, clock, count):
    for _ in range(count):
        clock.now += node.slot_ms / 1000
        assert node.try_author(int(clock.now * 1000) // node.slot_ms) is not None


def test_node_finalizes_each_block_with_a_verifiable_justification(tmp_path):
    clock = Clock()
    node = open_node(tmp_path, clock)
    finalized = node.finalized_head.subscribe()
    author(node, clock, 3)
    store = node.store
    assert store.finalized_hash == store.best_hash and store.best_header().number == 3
    for number in (1, 2, 3):
        header = store.require_header(store.hash_at(number))
        justification = decode_justification(store.get_justification(header.hash))
        parent_voters = get_voter_set(store.state_at(header.parent_hash))
        verify_justification(justification, header, parent_voters, store.genesis_hash, store)
        assert finalized.receive_nowait().number == number
    node.close()


def test_node_refuses_bad_votes_and_justifications_and_keeps_its_store(tmp_path):
    clock = Clock()
    node = open_node(tmp_path, clock)
    author(node, clock, 2)
    store = node.store
    before = sorted(store.kv.iterate(b""))
    assert node.on_gossip_vote(b"\x01\x02garbage", peer="p").kind == "reject"
    tip = store.best_hash
    for data in (b"", b"\x93\x01\x02\x03", store.get_justification(store.hash_at(1))):
        with pytest.raises(JustificationError):
            node.import_justification(tip, data)
    assert sorted(store.kv.iterate(b"")) == before
    node.close()


def test_node_restarted_validator_resumes_and_finalizes_on(tmp_path):
    clock = Clock()
    node = open_node(tmp_path, clock)
    author(node, clock, 3)
    node.close()
    node = open_node(tmp_path, clock)
    assert node.store.finalized_header().number == 3
    author(node, clock, 2)
    assert node.store.finalized_header().number == 5
    node.close()



def test_a_syncing_node_imports_blocks_then_their_justifications(tmp_path):
    """The sync seam: a non-validator imports a validator's blocks, then their justifications
    through Node.import_justification, and finalizes exactly what the validator did; a
    justification for a block it lacks, or a second time, changes nothing."""
    clock = Clock()
    validator = open_node(tmp_path / "validator", clock)
    author(validator, clock, 4)
    follower = Node(NodeConfig(spec=dev_spec(), base_path=str(tmp_path / "follower"), rpc_enabled=False),
                    clock=clock)
    source = validator.store
    last = source.require_header(source.hash_at(4))
    with pytest.raises(JustificationError, match="unknown block"):
        follower.import_justification(last.hash, source.get_justification(last.hash))
    for number in (1, 2, 3, 4):
        follower.import_block(source.get_block(source.hash_at(number)))
    assert follower.store.finalized_header().number == 0  # blocks alone finalize nothing here
    assert follower.import_justification(last.hash, source.get_justification(last.hash))
    assert follower.store.finalized_hash == last.hash
    assert not follower.import_justification(last.hash, source.get_justification(last.hash))
    assert follower.store.get_justification(last.hash) == source.get_justification(last.hash)
    validator.close()
    follower.close()

# --- equivocations seen by the node become reports in its pool, then slashes on chain ----------------

def open_local_node(path, clock):
    config = NodeConfig(spec=dev_spec(validators=4), base_path=str(path), validator=True, session_key=ALICE_SESSION,
                        rpc_enabled=False)
    return Node(config, clock=clock)


def author_until_included(node, clock, tx_hash, limit=60):
    for _ in range(limit):
        clock.now += node.slot_ms / 1000
        result = node.try_author(int(clock.now * 1000) // node.slot_ms)
        if result is not None and tx_hash not in {tx.hash for tx in node.pool.ready()}:
            return node.store.best_header()
    raise AssertionError("the report was never included")


def bob_bond(node):
    from runtime.pallets.staking.api import get_ledger

    _best, state = node.best_state()
    return get_ledger(state, dev_account("bob").public).total


def bobs_next_slot(node, clock):
    """The next slot bob leads on top of the node's best block: (slot, parent, its state, bob's
    block for that slot, sealed by bob with a fresh signing record)."""
    from consensus.authoring import author_block, find_slot_author
    from tests.consensus.finality_harness import MemoryRecord

    bob = dev_account("bob", ED25519)
    parent, state = node.best_state()
    slot = int(clock.now * 1000) // node.slot_ms + 1
    while find_slot_author(state, slot, bob.public) is None:
        slot += 1
    block = author_block(state, parent, slot, node.slot_ms, dev_account("bob").public, bob, MemoryRecord(), []).block
    return slot, parent, state, block


def test_node_reports_a_double_vote_and_the_offender_is_slashed(tmp_path):
    from consensus.finality_messages import Vote
    from runtime.finality_vote import PREVOTE
    from runtime.pallets.staking.api import get_active_validators

    clock = Clock()
    node = open_local_node(tmp_path, clock)
    bob = dev_account("bob", ED25519)
    genesis = node.store.genesis_hash
    votes = []
    for target in (b"\x01" * 32, b"\x02" * 32):
        unsigned = Vote(0, node.gadget.round, PREVOTE, target, 3, bob.public, b"")
        votes.append(Vote(0, node.gadget.round, PREVOTE, target, 3, bob.public, bob.sign(unsigned.payload(genesis))))
    assert node.on_gossip_vote(votes[0].encode()).kind == "accept"
    assert node.on_gossip_vote(votes[1].encode()).reason == "equivocation"
    (report,) = node.pool.ready()
    before = bob_bond(node)
    author_until_included(node, clock, report.hash)
    assert bob_bond(node) < before
    _best, state = node.best_state()
    assert dev_account("bob").public not in [a for a, _k, _s in get_active_validators(state)]
    node.close()


def test_node_reports_two_blocks_for_one_slot_and_the_author_is_slashed(tmp_path):
    clock = Clock()
    node = open_local_node(tmp_path, clock)
    bob = dev_account("bob", ED25519)
    slot, parent, state, first = bobs_next_slot(node, clock)
    clock.now = slot * node.slot_ms / 1000
    # A second block for the slot (bob's own signing record would refuse to seal it).
    blocks = [first, _with_other_timestamp(state, parent, slot, node, bob)]
    for block in blocks:
        node.import_block(block)
    (report,) = node.pool.ready()
    before = bob_bond(node)
    author_until_included(node, clock, report.hash)
    assert bob_bond(node) < before
    node.close()


def test_node_reports_the_twin_of_a_finalized_block_but_not_a_forged_one(tmp_path):
    """Bob's second block for a slot arrives after his first is finalized: import refuses it
    (it can never be final), yet its seal and leader are checked first and the slot watch sees
    it, so bob is reported and slashed. A twin sealed by a key that is not the leader's is
    refused the same way and reported by nobody."""
    import trio

    from gensyn_node.block_import import BlockImportError, ImportErrorKind

    clock = Clock()
    node = open_local_node(tmp_path, clock)
    bob = dev_account("bob", ED25519)
    slot, parent, state, first = bobs_next_slot(node, clock)
    clock.now = slot * node.slot_ms / 1000
    node.import_block(first)
    node.store.set_finalized(first.header.hash)

    forged = _with_other_timestamp(state, parent, slot, node, ALICE_SESSION)
    with pytest.raises(BlockImportError) as refused:
        node.import_block(forged)
    assert refused.value.kind is ImportErrorKind.BELOW_FINALIZED and refused.value.sealed_header is None
    assert list(node.pool.ready()) == []

    twin = _with_other_timestamp(state, parent, slot, node, bob)
    with pytest.raises(BlockImportError) as refused:
        trio.run(node.import_block_async, twin)  # the gossip path: checked in a worker thread
    assert refused.value.kind is ImportErrorKind.BELOW_FINALIZED
    assert refused.value.sealed_header == twin.header
    assert not node.store.has_block(twin.header.hash)
    (report,) = node.pool.ready()
    before = bob_bond(node)
    author_until_included(node, clock, report.hash)
    assert bob_bond(node) < before
    node.close()


def _with_other_timestamp(state, parent, slot, node, key):
    """Another block for the same slot and author: same slot, a later timestamp inside it."""
    from runtime.block import Block
    from runtime.executive import BlockBuilder

    builder = BlockBuilder(state, parent, slot, dev_account("bob").public, slot * node.slot_ms + 1)
    unsealed, _executed = builder.build()
    return Block(unsealed.header.with_seal(key.sign(unsealed.header.hash)), unsealed.extrinsics)


def test_node_serves_the_branch_of_a_named_tip(tmp_path):
    """Blocks by range with a tip (what a node asks for when a vote names a block it lacks):
    the tip's own branch from `start`, oldest first, at most `count`; nothing for an unknown tip
    or a start above it."""
    from p2p.messages import BlocksRequest
    from runtime.block import Block

    clock = Clock()
    node = open_node(tmp_path, clock)
    author(node, clock, 4)
    store = node.store
    tip = store.hash_at(3)
    served = [Block.decode(b.block).header for b in node.get_blocks(BlocksRequest(2, 10, tip))]
    assert [h.hash for h in served] == [store.hash_at(2), tip]
    assert [Block.decode(b.block).header.number for b in node.get_blocks(BlocksRequest(1, 2, tip))] == [1, 2]
    assert node.get_blocks(BlocksRequest(1, 10, b"\x07" * 32)) == []
    assert node.get_blocks(BlocksRequest(4, 10, tip)) == []
    node.close()


# --- finality that moves the best chain to another fork is a reorg for the pool and watchers ----------

def _transfer(node, sender, value):
    from runtime.executive import get_state_runtime
    from runtime.extrinsic import encode_signed, signing_payload
    from runtime.pallets.system.account import get_account
    from runtime.storage import OverlayState
    from runtime.types import Era

    _best, state = node.best_state()
    overlay = OverlayState(state.get, state.iter_prefix)
    runtime = get_state_runtime(overlay)
    call = runtime.encode_call("Balances", "transfer_keep_alive",
                               {"dest": ("Id", dev_account("eve").public), "value": value})
    nonce = get_account(overlay, sender.public).nonce
    genesis = node.store.genesis_hash
    payload = signing_payload(call, Era.encode(None), nonce, 0, runtime.spec_version, 1, genesis, genesis)
    return encode_signed(call, sender.public, sender.scheme, sender.sign(payload), None, nonce, 0)


def test_finality_that_abandons_the_best_fork_returns_its_transactions_to_the_pool(tmp_path):
    """alice's node authors a fork of three blocks, the first with a transfer; bob's one-block
    fork from genesis is then finalized (as a justification from the network would). The best
    chain moves to bob's fork, the transfer is back in the pool, and its watcher saw it
    `inBlock`, then `retracted`."""
    import trio

    from runtime.hashing import blake2_256

    clock = Clock()
    node = open_local_node(tmp_path, clock)
    slot, _genesis, _state, bobs = bobs_next_slot(node, clock)
    data = _transfer(node, dev_account("alice"), 10**12)
    tx_hash = node.submit_extrinsic(data)
    watcher = node.tx_status.watch(tx_hash)
    clock.now = slot * node.slot_ms / 1000
    authored = []
    while len(authored) < 3:
        clock.now += node.slot_ms / 1000
        if node.try_author(int(clock.now * 1000) // node.slot_ms) is not None:
            authored.append(node.store.best_header())
    ours = node.store.require_header(node.store.hash_at(1))
    assert data in node.store.get_body(ours.hash) and len(node.pool) == 0
    node.import_block(bobs)
    assert node.store.best_header().number == 3  # bob's block is a shorter fork
    node.gadget.chain.finalize(bobs.header.hash, b"justification")
    assert node.store.best_hash == bobs.header.hash
    assert [tx.hash for tx in node.pool.ready()] == [blake2_256(data)]
    statuses = []
    while True:
        try:
            statuses.append(watcher.receive_nowait())
        except trio.WouldBlock:
            break
    assert {"inBlock": "0x" + ours.hash.hex()} in statuses
    assert statuses.index({"retracted": "0x" + ours.hash.hex()}) > statuses.index({"inBlock": "0x" + ours.hash.hex()})
    assert statuses[-1] == "ready"
    node.close()


def test_a_longer_fork_by_import_returns_the_abandoned_blocks_transactions_to_the_pool(tmp_path):
    """alice's node authors one block with a transfer; bob's two-block fork from genesis then
    arrives and is longer: the import reorg puts the transfer back in the pool."""
    from consensus.authoring import author_block, find_slot_author
    from runtime.hashing import blake2_256
    from tests.consensus.finality_harness import MemoryRecord

    clock = Clock()
    node = open_local_node(tmp_path, clock)
    slot, _genesis, _state, b1 = bobs_next_slot(node, clock)
    data = _transfer(node, dev_account("alice"), 10**12)
    node.submit_extrinsic(data)
    clock.now = slot * node.slot_ms / 1000
    for _ in range(100):
        clock.now += node.slot_ms / 1000
        if node.try_author(int(clock.now * 1000) // node.slot_ms) is not None:
            break
    ours = node.store.best_header()
    assert ours.number == 1 and data in node.store.get_body(ours.hash) and len(node.pool) == 0
    node.import_block(b1)
    assert node.store.best_hash == ours.hash  # same length: ours stays best
    bob = dev_account("bob", ED25519)
    state = node.store.state_at(b1.header.hash)
    next_slot = max(slot, b1.header.slot_and_author()[0]) + 1
    while find_slot_author(state, next_slot, bob.public) is None:
        next_slot += 1
    b2 = author_block(state, b1.header, next_slot, node.slot_ms, dev_account("bob").public, bob, MemoryRecord(),
                      []).block
    clock.now = max(clock.now, next_slot * node.slot_ms / 1000)
    result = node.import_block(b2)
    assert result.reorg and node.store.best_hash == b2.header.hash
    assert [tx.hash for tx in node.pool.ready()] == [blake2_256(data)]
    node.close()


def test_a_longer_fork_that_included_a_pooled_transaction_below_its_tip_reports_it_in_block(tmp_path):
    """The pool holds a transfer; bob's two-block fork, whose first block included it, arrives
    and becomes best by import. The transfer leaves the pool as included and its watcher sees
    `inBlock` of bob's first block; it is not revalidated against the new tip as stale and
    reported `invalid` (what a pool told only of the tip's extrinsics did)."""
    import trio

    from consensus.authoring import author_block, find_slot_author
    from runtime.hashing import blake2_256
    from tests.consensus.finality_harness import MemoryRecord

    clock = Clock()
    node = open_local_node(tmp_path, clock)
    slot, genesis, genesis_state, _ = bobs_next_slot(node, clock)
    clock.now = slot * node.slot_ms / 1000
    while node.store.best_header().number < 1:
        clock.now += node.slot_ms / 1000
        node.try_author(int(clock.now * 1000) // node.slot_ms)
    ours = node.store.best_header()
    data = _transfer(node, dev_account("alice"), 10**12)
    tx_hash = node.submit_extrinsic(data)
    watcher = node.tx_status.watch(tx_hash)
    bob = dev_account("bob", ED25519)
    b1 = author_block(genesis_state, genesis, slot, node.slot_ms, dev_account("bob").public, bob, MemoryRecord(),
                      [(tx_hash, data)]).block
    assert data in b1.extrinsics
    node.import_block(b1)
    assert node.store.best_hash == ours.hash and len(node.pool) == 1  # same length: ours stays best
    state = node.store.state_at(b1.header.hash)
    next_slot = max(slot, ours.slot_and_author()[0]) + 1
    while find_slot_author(state, next_slot, bob.public) is None:
        next_slot += 1
    b2 = author_block(state, b1.header, next_slot, node.slot_ms, dev_account("bob").public, bob, MemoryRecord(),
                      []).block
    clock.now = max(clock.now, next_slot * node.slot_ms / 1000)
    assert node.import_block(b2).reorg and node.store.best_hash == b2.header.hash
    assert len(node.pool) == 0
    statuses = []
    while True:
        try:
            statuses.append(watcher.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            break
    assert statuses[-1] == {"inBlock": "0x" + b1.header.hash.hex()} and "invalid" not in statuses, statuses
    assert blake2_256(data) == tx_hash
    node.close()
