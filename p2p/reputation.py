"""Peer reputation: invalid data costs a peer reputation; below a threshold it is disconnected
and banned for a while. Useless data (a block we already have, a header a slot early) costs
nothing. Reputation recovers slowly with time, as Substrate's does, so an honest peer that once
relayed a bad message is not banned forever. Pure bookkeeping; the clock is injected."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

BAN_THRESHOLD = -100
BAN_SECONDS = 60.0
DECAY_PER_SECOND = 1.0  # reputation moves this much towards 0 each second


class Verdict(enum.Enum):
    """What a handler decided about one inbound message."""

    ACCEPT = "accept"  # valid and new: relay it
    IGNORE = "ignore"  # useless (known, early, unrelated) but not the sender's fault
    REJECT = "reject"  # invalid: the sender is punished


# Penalties, by what the peer did.
PENALTY_MALFORMED = -50        # undecodable or oversize message
PENALTY_INVALID_BLOCK = -100   # a block that fails its checks (seal, leader, execution)
PENALTY_INVALID_TX = -5        # a transaction the pool rejects as invalid (it may have raced a block)
PENALTY_BAD_RESPONSE = -50     # a sync response that does not chain or fails import
PENALTY_VOTE = -20             # a vote the finality gadget rejects
PENALTY_BAD_BLOB = -50         # a blob answer whose bytes do not hash to the requested hash


@dataclass
class PeerRecord:
    score: float = 0.0
    updated: float = 0.0


class Reputation:
    def __init__(self, clock: Callable[[], float] = time.monotonic, threshold: int = BAN_THRESHOLD,
                 ban_seconds: float = BAN_SECONDS):
        self.clock = clock
        self.threshold = threshold
        self.ban_seconds = ban_seconds
        self._peers: dict[str, PeerRecord] = {}
        self._banned_until: dict[str, float] = {}

    def get_score(self, peer: str) -> float:
        record = self._peers.get(peer)
        if record is None:
            return 0.0
        self._decay(record)
        return record.score

    def _decay(self, record: PeerRecord) -> None:
        now = self.clock()
        elapsed = max(0.0, now - record.updated)
        record.updated = now
        if record.score < 0:
            record.score = min(0.0, record.score + elapsed * DECAY_PER_SECOND)

    def report(self, peer: str, change: int) -> bool:
        """Apply `change` to the peer's score; True when the peer must now be banned."""
        record = self._peers.setdefault(peer, PeerRecord(updated=self.clock()))
        self._decay(record)
        record.score += change
        if record.score <= self.threshold:
            self._banned_until[peer] = self.clock() + self.ban_seconds
            record.score = 0.0  # it starts again from zero once the ban ends
            return True
        return False

    def is_banned(self, peer: str) -> bool:
        until = self._banned_until.get(peer)
        if until is None:
            return False
        if self.clock() >= until:
            del self._banned_until[peer]
            return False
        return True

    def forget(self, peer: str) -> None:
        """Drop a disconnected peer's record unless it is banned or in debt."""
        record = self._peers.get(peer)
        if record is not None and self.get_score(peer) == 0.0:
            del self._peers[peer]
