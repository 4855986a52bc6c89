"""Peer reputation: invalid data lowers a score, a score at the threshold bans for a while,
the ban ends on time, and debts decay (clock injected)."""

from __future__ import annotations

from p2p.reputation import BAN_THRESHOLD, PENALTY_INVALID_BLOCK, PENALTY_MALFORMED, Reputation


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_reputation_bans_at_threshold_and_unbans_after_the_ban():
    clock = Clock()
    rep = Reputation(clock, ban_seconds=60)
    assert rep.report("peer", PENALTY_MALFORMED) is False
    assert rep.get_score("peer") == PENALTY_MALFORMED
    assert not rep.is_banned("peer")
    assert rep.report("peer", PENALTY_MALFORMED) is True  # -100 reaches the threshold
    assert rep.is_banned("peer") and not rep.is_banned("other")
    clock.now += 59
    assert rep.is_banned("peer")
    clock.now += 2
    assert not rep.is_banned("peer")


def test_reputation_one_invalid_block_bans():
    rep = Reputation(Clock())
    assert PENALTY_INVALID_BLOCK <= BAN_THRESHOLD
    assert rep.report("peer", PENALTY_INVALID_BLOCK) is True


def test_reputation_debt_decays_towards_zero():
    clock = Clock()
    rep = Reputation(clock)
    rep.report("peer", -50)
    clock.now += 20
    assert rep.get_score("peer") == -30
    clock.now += 100
    assert rep.get_score("peer") == 0
    rep.forget("peer")
    assert rep.get_score("peer") == 0
