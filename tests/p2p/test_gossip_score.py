"""The gossipsub peer score the node configures (p2p/network.py): misbehaviour the library sees
lowers a peer's score until it is graylisted, invalid data lowers it through our reputation, and
a message merely ignored (a resent vote, a commit for a block already final) costs nothing."""

from __future__ import annotations

from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID

from p2p.network import Network, NetworkConfig
from p2p.reputation import PENALTY_VOTE


def _scorer():
    network = Network(NetworkConfig(genesis_hash=bytes(32), node_key=bytes([7]) * 32), handlers=None)  # type: ignore[arg-type]
    gossipsub = network._build_gossipsub()
    peer = ID.from_pubkey(create_new_key_pair(bytes([8]) * 32).public_key)
    return network, gossipsub.scorer, peer


def test_library_penalties_lower_the_score_until_graylisted_and_decay():
    _network, scorer, peer = _scorer()
    topics = ["votes"]
    assert scorer.score(peer, topics) == 0
    for _ in range(9):
        scorer.penalize_graft_flood(peer, 10.0)
    assert scorer.score(peer, topics) < scorer.params.graylist_threshold
    assert scorer.is_graylisted(peer, topics)
    for _ in range(40):
        scorer.on_heartbeat()
    assert scorer.score(peer, topics) > scorer.params.gossip_threshold


def test_ignored_messages_cost_nothing_and_rejected_ones_count_through_reputation():
    network, scorer, peer = _scorer()
    topics = ["votes"]
    for _ in range(100):
        scorer.on_invalid_message(peer, "votes")  # the library's count of our validator's False
    assert scorer.score(peer, topics) == 0
    network.reputation.report(peer.to_base58(), PENALTY_VOTE)
    assert abs(scorer.score(peer, topics) - PENALTY_VOTE) < 0.1  # our reputation decays in real time
