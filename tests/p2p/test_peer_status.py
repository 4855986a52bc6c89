"""How often a peer's status is asked again (p2p/network.py `Network._status_due`): often while
it is new or ahead of us, seldom while it is in step."""

from __future__ import annotations

from p2p.messages import Status
from p2p.network import (
    STATUS_EVERY_SECONDS,
    STATUS_IN_STEP_SECONDS,
    STATUS_NEW_PEER_SECONDS,
    Network,
    PeerState,
)


def _status(best: int) -> Status:
    return Status(best, bytes(32), 0, bytes(32), True)


def test_a_new_or_ahead_peer_is_asked_every_two_seconds_one_in_step_seldom():
    due = Network._status_due
    start = 1000.0  # a monotonic clock
    state = PeerState("peer", connected_at=start)
    assert due(state, start, our_best=10)  # never asked
    state.status, state.status_at = _status(10), start + 1.0
    assert not due(state, start + 1.0 + STATUS_EVERY_SECONDS - 0.1, our_best=10)
    assert due(state, start + 1.0 + STATUS_EVERY_SECONDS, our_best=10)  # new: its peers list matters
    later = start + STATUS_NEW_PEER_SECONDS + 1.0
    state.status_at = later
    assert not due(state, later + STATUS_EVERY_SECONDS, our_best=10)  # in step
    assert due(state, later + STATUS_IN_STEP_SECONDS, our_best=10)
    state.status = _status(12)  # ahead of us: sync follows it
    assert due(state, later + STATUS_EVERY_SECONDS, our_best=10)
