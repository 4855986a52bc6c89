"""Sync's justifications (gensyn_node/sync.py): of a range of blocks only the last justification
is imported, since it finalizes every block before it, unless the range changes the voter set;
then the old set's justification of the change comes first. Two real nodes on LevelDB in one
process; the source answers blocks-by-range as it does for a peer (`Node.get_blocks`), through
a loopback stand-in for the libp2p network that records the peer's score."""

from __future__ import annotations

from dataclasses import replace

import trio

from consensus.authorities import get_voter_set
from gensyn_node.chain_spec import dev_spec
from gensyn_node.service import Node, NodeConfig
from gensyn_node.sync import ChainSync
from p2p.messages import BlocksRequest, SyncedBlock
from runtime.block import Block
from tests.chain.test_node_finality import Clock
from tests.chain.test_set_change import ALICE_SESSION, author, spec_with_bob_waiting, sudo_set_validator_count


class LoopbackNetwork:
    """Answers `request_blocks` from the source node, as p2p.network.Network does over a stream."""

    def __init__(self, source: Node, tamper_last_justification: bool = False):
        self.source = source
        self.tamper = tamper_last_justification
        self.peers: dict[str, object] = {"source": object()}
        self.reports: list[str] = []

    async def request_blocks(self, peer: str, start: int, count: int) -> list[SyncedBlock]:
        blocks = self.source.get_blocks(BlocksRequest(start, count))
        if self.tamper:
            last = max(i for i, b in enumerate(blocks) if b.justification is not None)
            data = blocks[last].justification or b""
            blocks[last] = SyncedBlock(blocks[last].block, data[:-1] + bytes([data[-1] ^ 1]))
        return blocks

    def report(self, peer: str, penalty: int, reason: str) -> None:
        self.reports.append(reason)

    def best_peer(self) -> None:
        return None


def open_nodes(tmp_path, spec, clock):
    source = Node(NodeConfig(spec=spec, base_path=str(tmp_path / "source"), validator=True, session_key=ALICE_SESSION,
                             rpc_enabled=False, network_enabled=False), clock=clock)
    syncer = Node(NodeConfig(spec=spec, base_path=str(tmp_path / "syncer"), rpc_enabled=False, network_enabled=False),
                  clock=clock)
    return source, syncer


def sync(syncer: Node, network: LoopbackNetwork, target: int) -> int:
    chain_sync = ChainSync(syncer, network, lambda _line: None, clock=lambda: 0.0)  # type: ignore[arg-type]
    return trio.run(chain_sync.sync_from, "source", target)


def test_sync_imports_the_last_justification_of_a_range(tmp_path):
    clock = Clock()
    source, syncer = open_nodes(tmp_path, dev_spec(validators=1), clock)
    author(source, clock, 12)
    final = source.store.finalized_header()
    assert final.number == 12
    network = LoopbackNetwork(source)
    assert sync(syncer, network, 12) == 12
    assert network.reports == []
    assert syncer.store.best_hash == source.store.best_hash
    assert syncer.store.finalized_hash == final.hash
    # Only the justification that was needed is stored: the range's last.
    stored = [n for n in range(1, 13) if syncer.store.get_justification(syncer.store.hash_at(n)) is not None]
    assert stored == [12]
    source.close()
    syncer.close()


def test_sync_imports_justifications_in_order_across_a_voter_set_change(tmp_path):
    clock = Clock()
    source, syncer = open_nodes(tmp_path, spec_with_bob_waiting(), clock)
    sudo_set_validator_count(source, 2)
    author(source, clock, 12)
    store = source.store
    target = store.best_header().number
    change = next(n for n in range(1, target + 1) if get_voter_set(store.state_at(store.hash_at(n))).set_id == 1)
    assert store.finalized_header().number > change
    network = LoopbackNetwork(source)
    assert sync(syncer, network, target) == target
    assert network.reports == []
    assert syncer.store.finalized_hash == store.finalized_hash
    assert syncer.store.get_justification(syncer.store.hash_at(change)) is not None
    assert syncer.gadget.voters.set_id == source.gadget.voters.set_id >= 1
    source.close()
    syncer.close()


def test_sync_refuses_a_bad_last_justification_and_scores_the_peer(tmp_path):
    clock = Clock()
    source, syncer = open_nodes(tmp_path, dev_spec(validators=1), clock)
    author(source, clock, 6)
    network = LoopbackNetwork(source, tamper_last_justification=True)
    sync(syncer, network, 6)
    assert len(network.reports) == 1 and "justification of #6" in network.reports[0]
    assert syncer.store.finalized_header().number == 0
    source.close()
    syncer.close()


class TamperedTipNetwork(LoopbackNetwork):
    """Answers with the range's last block re-rooted (so its seal no longer matches it)."""

    async def request_blocks(self, peer: str, start: int, count: int) -> list[SyncedBlock]:
        blocks = await super().request_blocks(peer, start, count)
        last = Block.decode(blocks[-1].block)
        forged = Block(replace(last.header, state_root=bytes(32)), last.extrinsics)
        blocks[-1] = SyncedBlock(forged.encode(), None)
        return blocks


def test_sync_keeps_the_blocks_before_a_refused_one_and_scores_the_peer(tmp_path):
    """One worker-thread call executes the whole range; the block it refuses costs the peer,
    and the blocks before it are committed, each on the state the one before left."""
    clock = Clock()
    source, syncer = open_nodes(tmp_path, dev_spec(validators=1), clock)
    author(source, clock, 12)
    network = TamperedTipNetwork(source)
    assert sync(syncer, network, 12) == 11
    assert len(network.reports) == 1 and "invalid block #12" in network.reports[0], network.reports
    assert syncer.store.best_header().number == 11
    assert syncer.store.best_hash == source.store.hash_at(11)
    assert syncer.store.best_header().state_root == source.store.get_header(source.store.hash_at(11)).state_root
    # What the imported blocks' justifications prove is still imported: the source has one for #11.
    assert source.store.get_justification(source.store.hash_at(11)) is not None
    assert syncer.store.finalized_header().number == 11
    source.close()
    syncer.close()
