"""p2p/tuning.py: py-libp2p's per-message costs that buy the node nothing, cut without changing
what is accepted. Real signed peer records and the library's own check."""

from __future__ import annotations

from types import SimpleNamespace

import libp2p.pubsub.gossipsub as library_gossipsub
import libp2p.pubsub.pubsub as library_pubsub
import multiaddr
import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID
from libp2p.peer.peerstore import PeerStore, create_signed_peer_record
from libp2p.pubsub.pb.rpc_pb2 import RPC
from libp2p.pubsub.utils import maybe_consume_signed_record
from libp2p.stream_muxer.yamux import yamux

from p2p import tuning


def _peer(seed: int) -> tuple[ID, bytes]:
    keys = create_new_key_pair(bytes([seed]) * 32)
    peer_id = ID.from_pubkey(keys.public_key)
    addr = multiaddr.Multiaddr(f"/ip4/127.0.0.1/tcp/{4000 + seed}")
    return peer_id, create_signed_peer_record(peer_id, [addr], keys.private_key).marshal_envelope()


def test_a_peer_record_sent_again_unchanged_is_checked_once_and_a_bad_one_fails_every_time():
    calls = []

    def check(rpc, host, peer_id):
        calls.append(peer_id)
        return maybe_consume_signed_record(rpc, host, peer_id)

    now = [0.0]
    remembered = tuning.remember_record_checks(check, clock=lambda: now[0])
    host = SimpleNamespace(get_peerstore=PeerStore)  # each call a fresh store, as good as any
    alice, alice_record = _peer(1)
    bob, _ = _peer(2)
    rpc = RPC(senderRecord=alice_record)
    assert all(remembered(rpc, host, alice) for _ in range(3))
    assert calls == [alice]
    # The same bytes from another peer are that peer's claim: judged apart, and refused.
    assert not remembered(rpc, host, bob) and not remembered(rpc, host, bob)
    assert calls == [alice, bob]
    # A record with one byte changed fails its signature check, on every RPC that carries it.
    forged = RPC(senderRecord=alice_record[:-1] + bytes([alice_record[-1] ^ 1]))
    assert not maybe_consume_signed_record(forged, host, alice)
    assert not remembered(forged, host, alice) and not remembered(forged, host, alice)
    assert len(calls) == 3
    # An RPC without a record needs no check; a verdict is renewed after its time.
    assert remembered(RPC(), host, alice) and len(calls) == 3
    now[0] += tuning.RECORD_RECHECK_SECONDS
    assert remembered(rpc, host, alice) and calls[-1] == alice and len(calls) == 4


def test_our_own_record_is_asked_for_at_most_once_per_interval():
    issued = []

    def issue(host):
        issued.append(host.get_id())
        return b"record-%d" % len(issued), True

    now = [0.0]
    reused = tuning.reuse_own_record(issue, clock=lambda: now[0])
    host = SimpleNamespace(get_id=lambda: "us")
    assert reused(host) == (b"record-1", True)
    assert reused(host) == (b"record-1", False)
    other = SimpleNamespace(get_id=lambda: "other")
    assert reused(other) == (b"record-2", True)  # per host
    now[0] += tuning.OWN_RECORD_SECONDS
    assert reused(host) == (b"record-3", True)


def test_apply_replaces_the_library_references_and_batches_window_updates():
    tuning.apply()
    tuning.apply()  # idempotent: the wrappers are not wrapped again
    for module in (library_pubsub, library_gossipsub):
        assert module.maybe_consume_signed_record is library_pubsub.maybe_consume_signed_record
        assert module.maybe_consume_signed_record is not maybe_consume_signed_record
        assert module.env_to_send_in_RPC is library_pubsub.env_to_send_in_RPC
    assert yamux.YamuxStream._auto_tune_and_send_window_update is tuning.release_credit_in_halves


class _Window:
    """A Yamux stream's receive-window fields, with the updates it would send recorded."""

    def __init__(self):
        self.window_lock = trio.Lock()
        self._pending_recv_release = 0
        self.target_recv_window = self.recv_window = 256 * 1024
        self.updates = []

    async def send_window_update(self, increment, skip_lock=False):
        self.updates.append(increment)


def test_credit_goes_back_once_half_the_window_is_read_not_per_read():
    window = _Window()

    async def read(count, size):
        for _ in range(count):
            window.recv_window -= size  # the frame arrived
            await tuning.release_credit_in_halves(window, bytes_read=size)

    trio.run(read, 127, 1024)
    assert window.updates == [] and window.recv_window == 129 * 1024  # the sender may still send
    trio.run(read, 1, 1024)
    assert window.updates == [128 * 1024] and window.recv_window == 256 * 1024
    trio.run(read, 1000, 1024)  # 1000 reads: 7 updates, never a window the sender cannot use
    assert len(window.updates) == 8 and window.recv_window > 0
    assert sum(window.updates) + window._pending_recv_release == 1128 * 1024
