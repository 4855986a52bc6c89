"""How the node sets py-libp2p 0.8.1 up: the gossipsub router with every setting explicit
(`build_gossipsub`), and behaviour that has no parameter, set once before a host starts (`apply`).

Measured on an 8-validator loopback devnet (py-spy on one node): two per-message costs that buy
the node nothing took about a quarter of its CPU.

- Yamux gives receive credit back on nearly every read, so each gossip message read costs a
  WINDOW_UPDATE frame in return: a Noise encryption and a socket write (14% of the node's time;
  the library's own knob, `PY_YAMUX_RELEASE_ON_READ=0`, still left 9%: its "partial slack"
  branch sends one per read). Credit now goes back once half the window has been read, as in
  go-yamux (`release_credit_in_halves` replaces the library's method, so that knob no longer
  matters); the window stays at its initial 256 KB (no auto-tuning).
- Every pubsub RPC carries the sender's signed peer record. The receiver verifies it (an ed25519
  check) twice per RPC, and the sender rebuilds its address set per RPC to tell whether its
  cached record is current (10%). The node learns its peers from its own status exchange, not
  from these records, so: a record that a peer sends again byte for byte is judged once (the
  verdict on those bytes is kept for RECORD_RECHECK_SECONDS), and our own record is rebuilt at
  most every OWN_RECORD_SECONDS. A record that fails its check still fails every RPC that carries
  it, as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import libp2p.pubsub.gossipsub as _gossipsub
import libp2p.pubsub.pubsub as _pubsub
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.score import ScoreParams, TopicScoreParams
from libp2p.stream_muxer.yamux.yamux import YamuxStream

RECORD_RECHECK_SECONDS = 600.0
OWN_RECORD_SECONDS = 30.0
MAX_REMEMBERED_RECORDS = 4096
_PATCHED = "_gensyn_tuned"


def remember_record_checks(check: Callable[[Any, Any, Any], bool], clock: Callable[[], float] = time.monotonic
                           ) -> Callable[[Any, Any, Any], bool]:
    """`check(rpc, host, peer_id)` (py-libp2p's `maybe_consume_signed_record`), judging each
    (peer, record bytes) once per RECORD_RECHECK_SECONDS."""
    verdicts: dict[tuple[Any, bytes], tuple[bool, float]] = {}

    def remembered(rpc: Any, host: Any, peer_id: Any) -> bool:
        if not rpc.HasField("senderRecord"):
            return True
        key = (peer_id, rpc.senderRecord)
        now = clock()
        known = verdicts.get(key)
        if known is not None and now - known[1] < RECORD_RECHECK_SECONDS:
            return known[0]
        verdict = check(rpc, host, peer_id)
        if len(verdicts) >= MAX_REMEMBERED_RECORDS:
            verdicts.clear()
        verdicts[key] = (verdict, now)
        return verdict

    return remembered


def reuse_own_record(issue: Callable[[Any], tuple[bytes, bool]], clock: Callable[[], float] = time.monotonic
                     ) -> Callable[[Any], tuple[bytes, bool]]:
    """`issue(host)` (py-libp2p's `env_to_send_in_RPC`), asked again per host at most every
    OWN_RECORD_SECONDS (it re-issues the record itself when our addresses changed)."""
    records: dict[Any, tuple[bytes, float]] = {}

    def reused(host: Any) -> tuple[bytes, bool]:
        key = host.get_id()
        now = clock()
        known = records.get(key)
        if known is not None and now - known[1] < OWN_RECORD_SECONDS:
            return known[0], False
        envelope, issued = issue(host)
        records[key] = (envelope, now)
        return envelope, issued

    return reused


async def release_credit_in_halves(stream: Any, *, bytes_read: int = 0) -> None:
    """YamuxStream's credit release: the bytes the application has read go back to the sender
    as one WINDOW_UPDATE once they reach half the receive window (the sender may have the whole
    window in flight, so it never waits on a reader that keeps reading)."""
    async with stream.window_lock:
        stream._pending_recv_release += bytes_read
        release = stream._pending_recv_release
        if release < stream.target_recv_window // 2:
            return
        stream._pending_recv_release = 0
        stream.recv_window += release
    await stream.send_window_update(release, skip_lock=True)


def apply() -> None:
    """Idempotent; the node's Network calls it before building its host."""
    if getattr(_pubsub, _PATCHED, False):
        return
    YamuxStream._auto_tune_and_send_window_update = release_credit_in_halves  # type: ignore[method-assign,assignment]
    # Both modules imported the functions by name: replace each module's reference.
    check = remember_record_checks(_pubsub.maybe_consume_signed_record)
    own = reuse_own_record(_pubsub.env_to_send_in_RPC)
    for module in (_pubsub, _gossipsub):
        module.maybe_consume_signed_record = check  # type: ignore[attr-defined]
        module.env_to_send_in_RPC = own  # type: ignore[attr-defined]
    setattr(_pubsub, _PATCHED, True)


GOSSIPSUB_PROTOCOLS = ["/meshsub/1.1.0", "/meshsub/1.0.0"]


def build_gossipsub(heartbeat_seconds: float, app_score: Callable[[Any], float]) -> GossipSub:
    """The node's gossipsub router: every setting explicit (DESIGN §7); `app_score(peer_id)` is
    our reputation of a peer (the score's P6)."""
    # The library subtracts weight x counter: a penalty's weight is positive (the -1.0 these
    # had made every misbehaviour raise a peer's score). Invalid deliveries count for nothing:
    # our validator's False is IGNORE as often as REJECT (a commit for a block already final,
    # a vote resent), and REJECT is scored by our reputation, which reaches the score as P6.
    score = ScoreParams(
        p4_invalid_messages=TopicScoreParams(weight=0.0),
        p5_behavior_penalty_weight=1.0, p5_behavior_penalty_decay=0.9,
        app_specific_score_fn=app_score,
        p6_appl_slack_weight=1.0,
        publish_threshold=-50.0, gossip_threshold=-20.0, graylist_threshold=-80.0, accept_px_threshold=0.0,
    )
    # Our own bounds (sizes, strict decoders, reputation) replace the library's 10 msg/s gate;
    # its IP-diversity rule would keep a loopback devnet from forming a mesh. A mesh of 3 (at
    # most 4): each message reaches a node about as many times as it has mesh peers, and at
    # 8 validators the library's 6 to 12 made duplicates most of a node's gossip work (CPU
    # 0.18 -> 0.10 per node, finality lag median 0.25 -> 0.11 s); with 3 peers or fewer, as in
    # a 4-validator devnet, every peer is in the mesh either way.
    return GossipSub(protocols=GOSSIPSUB_PROTOCOLS, degree=3, degree_low=2, degree_high=4,
                     heartbeat_interval=heartbeat_seconds, heartbeat_initial_delay=0.1,
                     score_params=score, spam_protection_enabled=False, eclipse_protection_enabled=False)
