"""Sync's branch fetch and its major-sync rule (gensyn_node/sync.py). A branch named by a vote or
a gossip block is asked for from one range below its tip, stepping back only while it does not
join our chain; a validator more than MAJOR_SYNC_BLOCKS behind its best peer claims no slot. Two
real nodes on LevelDB in one process, through the loopback stand-in for the libp2p network."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import trio

from gensyn_node.chain_spec import dev_spec
from gensyn_node.sync import MAJOR_SYNC_BLOCKS, VOTE_FETCH_DELAY_SECONDS, ChainSync
from p2p.messages import BlocksRequest, SyncedBlock
from tests.chain.test_node_finality import Clock
from tests.chain.test_set_change import author
from tests.chain.test_sync_justifications import open_nodes


class BranchNetwork:
    """Answers blocks-by-range with a named tip from the source node (`Node.get_blocks`, as a
    peer answers it), records each request's start, and reports a configurable best peer."""

    def __init__(self, source, best_number: int | None = None, justifications: bool = True):
        self.source = source
        self.justifications = justifications
        self.peers: dict[str, object] = {"source": object()}
        self.reports: list[str] = []
        self.starts: list[int] = []
        self.best_number = best_number

    async def request_blocks(self, peer: str, start: int, count: int, tip: bytes | None = None) -> list[SyncedBlock]:
        self.starts.append(start)
        blocks = self.source.get_blocks(BlocksRequest(start, count, tip))
        return blocks if self.justifications else [SyncedBlock(b.block, None) for b in blocks]

    def report(self, peer: str, penalty: int, reason: str) -> None:
        self.reports.append(reason)

    def best_peer(self):
        if self.best_number is None:
            return None
        return SimpleNamespace(peer_id="source", status=SimpleNamespace(best_number=self.best_number))


def chain_sync(node, network) -> ChainSync:
    return ChainSync(node, network, lambda _line: None, clock=lambda: 0.0)  # type: ignore[arg-type]


def test_a_branch_far_above_us_steps_back_until_it_joins_then_imports_to_its_tip(tmp_path):
    clock = Clock()
    source, syncer = open_nodes(tmp_path, dev_spec(validators=1), clock)
    author(source, clock, 300)
    tip = source.store.best_header()
    network = BranchNetwork(source)
    assert trio.run(chain_sync(syncer, network).fetch_branch, "source", tip.hash, tip.number)
    assert syncer.store.has_block(tip.hash) and syncer.store.best_hash == tip.hash
    # #173..#300 does not join genesis; #45 neither; #1 does; then forward to the tip.
    assert network.starts == [173, 45, 1, 129, 257]
    assert network.reports == []
    source.close()
    syncer.close()


def test_a_branch_just_above_us_takes_one_request_from_below_its_tip(tmp_path):
    clock = Clock()
    source, syncer = open_nodes(tmp_path, dev_spec(validators=1), clock)
    author(source, clock, 250)
    # Synced without justifications: our best is #250 and our finalized still genesis.
    first = BranchNetwork(source, justifications=False)
    assert trio.run(chain_sync(syncer, first).sync_from, "source", 250) == 250
    assert syncer.store.finalized_header().number == 0
    author(source, clock, 50)
    tip = source.store.best_header()
    network = BranchNetwork(source)
    assert trio.run(chain_sync(syncer, network).fetch_branch, "source", tip.hash, tip.number)
    assert network.starts == [tip.number - 127]  # not from our finalized block up
    assert syncer.store.best_hash == tip.hash
    # The branch's justifications came with it.
    assert syncer.store.finalized_header().number == tip.number
    source.close()
    syncer.close()


def test_a_branch_at_or_below_our_finality_is_not_asked_for(tmp_path):
    clock = Clock()
    source, syncer = open_nodes(tmp_path, dev_spec(validators=1), clock)
    author(source, clock, 5)
    assert trio.run(chain_sync(syncer, BranchNetwork(source)).sync_from, "source", 5) == 5
    assert syncer.store.finalized_header().number == 5
    network = BranchNetwork(source)
    assert not trio.run(chain_sync(syncer, network).fetch_branch, "source", b"\x01" * 32, 4)
    assert network.starts == []
    source.close()
    syncer.close()


def test_a_stale_branch_below_our_finality_is_ignored_unpunished_and_not_fetched_again(tmp_path):
    """A validator that built on a head which then lost to finality (it was catching up) sends
    blocks of a fork off below our finalized block: useless, not invalid. Punishing it banned an
    honest validator just restarted after kill -9, and it never voted again."""
    clock = Clock()
    source, syncer = open_nodes(tmp_path / "a", dev_spec(validators=1), clock)
    stale, unused = open_nodes(tmp_path / "b", dev_spec(validators=1), clock)
    unused.close()
    author(source, clock, 5)
    author(stale, clock, 8)  # later slots: its own chain from genesis
    assert trio.run(chain_sync(syncer, BranchNetwork(source)).sync_from, "source", 5) == 5
    assert syncer.store.finalized_header().number == 5
    tip = stale.store.best_header()
    network = BranchNetwork(stale)
    sync = chain_sync(syncer, network)
    assert not trio.run(sync.fetch_branch, "stale", tip.hash, tip.number)
    assert network.starts == [6]  # our finalized block is as far back as it looks
    assert network.reports == []
    assert syncer.store.best_hash == source.store.best_hash
    # Neither a vote naming its tip nor its next gossip block makes us ask again.
    sync.want_block(tip.hash, tip.number, "stale")
    author(stale, clock, 1)
    sync.hold(stale.store.get_block(stale.store.best_hash), "stale")
    trio.run(sync._fetch_wanted)
    assert network.starts == [6] and network.reports == []
    for node in (source, syncer, stale):
        node.close()


def test_a_validator_far_behind_its_best_peer_claims_no_slot(tmp_path):
    clock = Clock()
    source, _syncer = open_nodes(tmp_path, dev_spec(validators=1), clock)
    author(source, clock, 3)
    best = source.store.best_header().number
    network = BranchNetwork(source, best_number=best + MAJOR_SYNC_BLOCKS + 1)
    source.sync = chain_sync(source, network)
    assert source.sync.is_major_syncing()
    for _ in range(8):  # alice leads every slot of a one-validator chain: each would author
        clock.now += source.slot_ms / 1000
        assert source.claim_slot(int(clock.now * 1000) // source.slot_ms) is None
    assert source.store.best_header().number == best
    assert source.metrics.slots_skipped_syncing._value.get() == 8
    # Within MAJOR_SYNC_BLOCKS of the peer it authors again.
    network.best_number = best + MAJOR_SYNC_BLOCKS
    assert not source.sync.is_major_syncing()
    clock.now += source.slot_ms / 1000
    assert source.claim_slot(int(clock.now * 1000) // source.slot_ms) is not None
    assert source.store.best_header().number == best + 1
    source.close()


def test_held_gossip_blocks_import_once_their_parent_arrives_and_a_bad_one_costs_its_sender(tmp_path):
    clock = Clock()
    source, syncer = open_nodes(tmp_path, dev_spec(validators=1), clock)
    author(source, clock, 4)
    blocks = [source.store.get_block(source.store.hash_at(n)) for n in range(1, 5)]
    network = BranchNetwork(source)
    sync = chain_sync(syncer, network)
    # #3 and #4 arrive by gossip before #2: held (their parent is unknown), nothing imported.
    sync.hold(blocks[3], "gossiper")
    sync.hold(blocks[2], "gossiper")
    assert trio.run(sync.import_held) == 0
    assert syncer.store.best_header().number == 0
    # A forged child of #2 (its seal broken) is held as well.
    forged = replace(blocks[2], header=blocks[2].header.pre_seal().with_seal(bytes(64)))
    sync.hold(forged, "liar")
    for block in blocks[:2]:
        trio.run(syncer.import_block_async, block)
    # #2 brought their parent: #3 and #4 follow at once, parents first; the forgery is refused.
    assert trio.run(sync.import_held) == 2
    assert syncer.store.best_hash == blocks[3].header.hash
    assert len(network.reports) == 1 and network.reports[0].startswith("gossip:"), network.reports
    assert sync._held == {}
    source.close()
    syncer.close()


def test_a_voted_block_is_fetched_only_if_gossip_has_not_brought_it_within_the_delay(tmp_path):
    """A vote outruns the block it names; fetching at once brought most such blocks twice."""
    clock = Clock()
    source, syncer = open_nodes(tmp_path, dev_spec(validators=1), clock)
    author(source, clock, 3)
    first, second = (source.store.get_block(source.store.hash_at(n)) for n in (1, 2))
    third = source.store.best_header()
    network = BranchNetwork(source)
    now = [100.0]
    sync = ChainSync(syncer, network, lambda _line: None, clock=lambda: now[0])  # type: ignore[arg-type]
    sync.want_voted_block(second.hash, 2, "source")
    trio.run(sync._fetch_wanted)
    assert network.starts == [] and not syncer.store.has_block(second.hash)  # not yet due
    # Gossip brings #1 and #2 meanwhile: nothing is asked for #2, ever.
    syncer.import_block(first)
    syncer.import_block(second)
    now[0] += VOTE_FETCH_DELAY_SECONDS
    trio.run(sync._fetch_wanted)
    assert network.starts == []
    # A voted block that does not come is fetched once the delay has passed; a gossip block's
    # missing parent (want_block) is due at once.
    sync.want_voted_block(third.hash, third.number, "source")
    now[0] += VOTE_FETCH_DELAY_SECONDS / 2
    trio.run(sync._fetch_wanted)
    assert network.starts == []
    now[0] += VOTE_FETCH_DELAY_SECONDS / 2
    trio.run(sync._fetch_wanted)
    assert len(network.starts) == 1 and syncer.store.best_hash == third.hash
    source.close()
    syncer.close()
