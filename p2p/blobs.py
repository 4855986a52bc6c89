"""Fetching a content-addressed blob (an ML checkpoint) from peers over the blobs-by-hash
request/response: the peer-iteration half of the node's blob fetch (the node stores and serves
what this returns, gensyn_node/blob_fetch.py).

Peers are asked one at a time, best reputation first, at most `MAX_BLOB_PEERS` of them, all
within one overall deadline. An answer counts only if it hashes (blake2-256) to the request: a
peer that sends other bytes is reported with PENALTY_BAD_BLOB, so one that keeps lying reaches
the ban threshold, and the next peer is asked.
"""

from __future__ import annotations

import logging
from typing import Protocol

import trio

from p2p.reputation import PENALTY_BAD_BLOB, Reputation
from runtime.hashing import blake2_256

log = logging.getLogger(__name__)

MAX_BLOB_PEERS = 8
BLOB_FETCH_DEADLINE_S = 30.0


class BlobPeers(Protocol):
    """What the fetch needs of the network (p2p.network.Network satisfies it)."""

    @property
    def reputation(self) -> Reputation: ...

    def connected_peers(self) -> list[str]: ...
    async def request_blob(self, peer: str, blob_hash: bytes) -> bytes | None: ...
    def report(self, peer: str, change: int, reason: str) -> None: ...


def order_blob_peers(network: BlobPeers, max_peers: int = MAX_BLOB_PEERS) -> list[str]:
    """The connected peers not banned, best reputation first (ties by id, so the order is
    stable), at most `max_peers`."""
    reputation = network.reputation
    peers = [p for p in network.connected_peers() if not reputation.is_banned(p)]
    return sorted(peers, key=lambda p: (-reputation.get_score(p), p))[:max_peers]


async def fetch_blob_from_peers(network: BlobPeers, blob_hash: bytes, *, max_peers: int = MAX_BLOB_PEERS,
                                deadline_s: float = BLOB_FETCH_DEADLINE_S) -> bytes | None:
    """The blob's bytes from the first peer whose answer hashes to `blob_hash`; None when no
    peer asked in time holds it."""
    from p2p.network import NetworkError  # the network module imports libp2p; this one need not

    with trio.move_on_after(deadline_s):
        for peer in order_blob_peers(network, max_peers):
            try:
                data = await network.request_blob(peer, blob_hash)
            except NetworkError as exc:
                log.info("blob request failed peer=%s hash=0x%s error=%s", peer, blob_hash.hex()[:16], exc)
                continue
            if data is None:
                continue
            # Verify that the bytes are the ones asked for before anyone stores or serves them.
            if blake2_256(data) != blob_hash:
                network.report(peer, PENALTY_BAD_BLOB, f"blob does not hash to 0x{blob_hash.hex()[:16]}")
                continue
            log.info("blob fetched peer=%s hash=0x%s bytes=%d", peer, blob_hash.hex()[:16], len(data))
            return data
    return None
