"""The peer half of the blob fetch (p2p/blobs.py) against a scripted network: best reputation
first, at most 8 peers, one overall deadline, and a peer whose answer does not hash to the
request is reported and passed over (and, lying again, banned by the reputation rule)."""

from __future__ import annotations

import trio
import trio.testing

from p2p.blobs import MAX_BLOB_PEERS, fetch_blob_from_peers, order_blob_peers
from p2p.network import NetworkError
from p2p.reputation import PENALTY_BAD_BLOB, Reputation
from runtime.hashing import blake2_256

BLOB = b"checkpoint bytes"
HASH = blake2_256(BLOB)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ScriptedPeers:
    """Each peer answers with what `answers` maps it to: bytes, None, an exception, or "hang"."""

    def __init__(self, answers: dict[str, object]) -> None:
        self.answers = answers
        self.reputation = Reputation(Clock())
        self.asked: list[str] = []
        self.reports: list[tuple[str, int]] = []

    def connected_peers(self) -> list[str]:
        return list(self.answers)

    async def request_blob(self, peer: str, blob_hash: bytes) -> bytes | None:
        self.asked.append(peer)
        answer = self.answers[peer]
        if answer == "hang":
            await trio.sleep_forever()
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    def report(self, peer: str, change: int, reason: str) -> None:
        self.reports.append((peer, change))
        self.reputation.report(peer, change)


def test_blobs_liar_with_the_best_score_is_reported_and_the_honest_answer_returned():
    net = ScriptedPeers({"liar": b"other bytes", "honest": BLOB})
    net.reputation.report("honest", -10)  # the liar is asked first
    assert trio.run(fetch_blob_from_peers, net, HASH) == BLOB
    assert net.asked == ["liar", "honest"] and net.reports == [("liar", PENALTY_BAD_BLOB)]
    # Lying once more reaches the ban threshold; a banned peer is not asked again.
    assert trio.run(fetch_blob_from_peers, net, blake2_256(b"nobody has this")) is None
    assert net.reputation.is_banned("liar")
    net.asked.clear()
    assert trio.run(fetch_blob_from_peers, net, HASH) == BLOB and net.asked == ["honest"]


def test_blobs_asks_best_first_at_most_eight_and_skips_failures():
    answers: dict[str, object] = {f"p{i:02d}": None for i in range(12)}
    answers["p00"] = NetworkError("gone")
    answers["p11"] = BLOB  # ranked last: never asked
    net = ScriptedPeers(answers)
    for i in range(12):
        net.reputation.report(f"p{i:02d}", -i)
    assert order_blob_peers(net) == [f"p{i:02d}" for i in range(MAX_BLOB_PEERS)]
    assert trio.run(fetch_blob_from_peers, net, HASH) is None
    assert net.asked == [f"p{i:02d}" for i in range(MAX_BLOB_PEERS)] and net.reports == []


def test_blobs_overall_deadline_bounds_a_hanging_peer():
    net = ScriptedPeers({"a": "hang", "b": BLOB})

    async def main() -> tuple[bytes | None, float]:
        start = trio.current_time()
        found = await fetch_blob_from_peers(net, HASH, deadline_s=30.0)
        return found, trio.current_time() - start

    found, elapsed = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert found is None and net.asked == ["a"] and elapsed == 30.0
