"""Every inbound p2p message has a size bound and a strict decoder: round trips, and each
malformed shape refused with a MessageError naming what is wrong."""

from __future__ import annotations

import pytest
import trio

from p2p import messages
from p2p.messages import BlocksRequest, MessageError, Status, SyncedBlock
from p2p.protocols import Protocols
from runtime.codec import canonical

H1, H2 = bytes(range(32)), bytes(range(1, 33))


def test_status_round_trip_and_strictness():
    status = Status(10, H1, 8, H2, True, ("/ip4/127.0.0.1/tcp/1/p2p/12D3KooW",))
    assert Status.decode(status.encode()) == status
    with pytest.raises(MessageError, match="status"):
        Status.decode(status.encode() + b"\x00")  # trailing byte
    with pytest.raises(MessageError, match="finalized is above best"):
        Status.decode(Status(1, H1, 2, H2, False).encode())
    with pytest.raises(MessageError, match="expected"):
        Status.decode(canonical.encode([10, H1[:31], 8, H2, True, []]))
    with pytest.raises(MessageError, match="peer addresses"):
        Status.decode(canonical.encode([10, H1, 8, H2, True, ["not-a-multiaddr"]]))
    with pytest.raises(MessageError, match="exceeds"):
        Status.decode(b"\x00" * (messages.MAX_STATUS_RESPONSE + 1))


def test_blocks_request_bounds():
    assert BlocksRequest.decode(BlocksRequest(5, 128).encode()) == BlocksRequest(5, 128)
    assert BlocksRequest.decode(BlocksRequest(5, 3, H1).encode()) == BlocksRequest(5, 3, H1)
    for bad in ([5, 0], [5, messages.MAX_BLOCKS_PER_REQUEST + 1], [-1, 3], [5], [5, 3, 1], [True, 3],
                [5, 3, H1[:31]], [5, 3, H1, 1]):
        with pytest.raises(MessageError):
            BlocksRequest.decode(canonical.encode(bad))


def test_blocks_response_strict():
    request = BlocksRequest(1, 2)
    blocks = [SyncedBlock(b"block1", None), SyncedBlock(b"block2", b"justification")]
    assert messages.decode_blocks_response(messages.encode_blocks_response(blocks), request) == blocks
    with pytest.raises(MessageError, match="at most 2"):
        messages.decode_blocks_response(messages.encode_blocks_response(blocks * 2), request)
    with pytest.raises(MessageError, match="each item"):
        messages.decode_blocks_response(canonical.encode([[b"x", 7]]), request)
    with pytest.raises(MessageError):
        messages.decode_blocks_response(canonical.encode([[b"", None]]), request)


def test_transactions_batch_bounds():
    batch = [b"tx1", b"tx2"]
    assert messages.decode_transactions(messages.encode_transactions(batch)) == batch
    with pytest.raises(MessageError):
        messages.decode_transactions(canonical.encode([]))
    with pytest.raises(MessageError):
        messages.decode_transactions(canonical.encode([b"x"] * (messages.MAX_TX_BATCH_COUNT + 1)))
    with pytest.raises(MessageError):
        messages.decode_transactions(canonical.encode([b"x" * (messages.MAX_TX_BYTES + 1)]))
    with pytest.raises(MessageError):
        messages.decode_transactions(b"\xff\xfe garbage")


def test_block_and_vote_size_bounds():
    messages.validate_block_message(b"x")
    with pytest.raises(MessageError):
        messages.validate_block_message(b"x" * (messages.MAX_BLOCK_MESSAGE + 1))
    with pytest.raises(MessageError):
        messages.validate_vote_message(b"")


def test_blob_messages():
    assert messages.decode_blob_request(messages.encode_blob_request(H1)) == H1
    with pytest.raises(MessageError):
        messages.decode_blob_request(canonical.encode([H1[:5]]))
    assert messages.decode_blob_response(messages.encode_blob_response(b"blob")) == b"blob"
    assert messages.decode_blob_response(messages.encode_blob_response(None)) is None
    with pytest.raises(MessageError):
        messages.decode_blob_response(canonical.encode([1]))


def test_protocol_ids_and_topics_carry_the_genesis_hash():
    ours, theirs = Protocols(H1), Protocols(H2)
    for name in (*ours.request_protocols, *ours.topics):
        assert H1.hex() in name
    assert set(ours.request_protocols + ours.topics).isdisjoint(theirs.request_protocols + theirs.topics)
    assert len(set(ours.request_protocols + ours.topics)) == 6


def test_oversize_transaction_is_kept_local_not_gossiped():
    """A referee call (a whole training state, megabytes) would make peers reject the batch it
    rides in; the node keeps it for its own blocks and gossips the rest as before."""
    from p2p.network import Network, NetworkConfig

    net = Network(NetworkConfig(genesis_hash=b"\x00" * 32, node_key=b"\x01" * 32), handlers=None)  # type: ignore[arg-type]
    net.queue_transaction(b"\x02" * (messages.MAX_TX_BYTES + 1))
    net.queue_transaction(b"\x03" * 100)
    assert net._tx_receive.receive_nowait() == b"\x03" * 100
    with pytest.raises(trio.WouldBlock):
        net._tx_receive.receive_nowait()
