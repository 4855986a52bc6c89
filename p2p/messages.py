"""Wire formats of every p2p message, each with a size bound and a strict decoder.

Canonical msgpack (positional arrays; the decoder rejects trailing bytes, maps and floats). A
decoder raises `MessageError` with the reason; the network turns that into a penalty for the
peer that sent it. Blocks travel as the block envelope (`runtime.block.Block`), whose decoder is
just as strict; the node decodes them, so that the network stays free of chain types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime.codec import canonical
from runtime.codec.errors import CodecError

HASH_LEN = 32
MAX_BLOCK_MESSAGE = 4 * 1024 * 1024        # one gossiped block (a full 1,000-transfer block is ~150 KB)
MAX_TX_BATCH_COUNT = 256                   # transactions in one gossip message
MAX_TX_BYTES = 64 * 1024
MAX_TX_BATCH_BYTES = 1024 * 1024
MAX_VOTE_MESSAGE = 64 * 1024
MAX_REQUEST = 1024                         # every request is small
MAX_STATUS_RESPONSE = 8 * 1024
MAX_SHARED_PEERS = 16                      # addresses of other peers shared in a status (discovery)
MAX_ADDR_CHARS = 256
MAX_BLOCKS_PER_REQUEST = 128
MAX_BLOCKS_RESPONSE = 32 * 1024 * 1024
MAX_JUSTIFICATION = 256 * 1024
MAX_BLOB = 32 * 1024 * 1024
MAX_BLOB_RESPONSE = MAX_BLOB + 16


class MessageError(ValueError):
    """An inbound message that is malformed or oversize; the reason names what is wrong."""


def _decode(data: bytes, limit: int, what: str) -> Any:
    if len(data) > limit:
        raise MessageError(f"{what}: {len(data)} bytes exceeds the limit of {limit}")
    try:
        return canonical.decode(data, max_bytes=limit)
    except CodecError as exc:
        raise MessageError(f"{what}: {exc}") from None


def _is_hash(value: Any) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_LEN


def _is_uint(value: Any, bits: int = 64) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < (1 << bits)


# --- gossip --------------------------------------------------------------------------------------

def encode_transactions(batch: list[bytes]) -> bytes:
    return canonical.encode(list(batch))


def decode_transactions(data: bytes) -> list[bytes]:
    value = _decode(data, MAX_TX_BATCH_BYTES, "transactions")
    if not isinstance(value, list) or not value or len(value) > MAX_TX_BATCH_COUNT:
        raise MessageError(f"transactions: expected a list of 1 to {MAX_TX_BATCH_COUNT} extrinsics")
    if not all(isinstance(x, bytes) and 0 < len(x) <= MAX_TX_BYTES for x in value):
        raise MessageError(f"transactions: each extrinsic is 1 to {MAX_TX_BYTES} bytes")
    return value


def validate_block_message(data: bytes) -> None:
    if not data or len(data) > MAX_BLOCK_MESSAGE:
        raise MessageError(f"block: {len(data)} bytes is outside 1..{MAX_BLOCK_MESSAGE}")


def validate_vote_message(data: bytes) -> None:
    if not data or len(data) > MAX_VOTE_MESSAGE:
        raise MessageError(f"vote: {len(data)} bytes is outside 1..{MAX_VOTE_MESSAGE}")


# --- status ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Status:
    """What a peer tells about its chain (best and finalized heads, whether it authors) and the
    p2p addresses of some peers it is connected to, so that a network started from one bootnode
    becomes a mesh."""

    best_number: int
    best_hash: bytes
    finalized_number: int
    finalized_hash: bytes
    authority: bool
    peers: tuple[str, ...] = ()

    def encode(self) -> bytes:
        return canonical.encode([self.best_number, self.best_hash, self.finalized_number, self.finalized_hash,
                                 self.authority, list(self.peers[:MAX_SHARED_PEERS])])

    @classmethod
    def decode(cls, data: bytes) -> Status:
        value = _decode(data, MAX_STATUS_RESPONSE, "status")
        if not (isinstance(value, list) and len(value) == 6 and _is_uint(value[0]) and _is_hash(value[1])
                and _is_uint(value[2]) and _is_hash(value[3]) and isinstance(value[4], bool)
                and isinstance(value[5], list)):
            raise MessageError("status: expected [best number, best hash, finalized number, finalized hash, "
                               "authority, [peer address...]]")
        if value[2] > value[0]:
            raise MessageError("status: finalized is above best")
        peers = value[5]
        if len(peers) > MAX_SHARED_PEERS or not all(
                isinstance(a, str) and a.startswith("/") and len(a) <= MAX_ADDR_CHARS for a in peers):
            raise MessageError(f"status: at most {MAX_SHARED_PEERS} peer addresses of up to {MAX_ADDR_CHARS} chars")
        return cls(*value[:5], tuple(peers))


STATUS_REQUEST = canonical.encode([])


def validate_status_request(data: bytes) -> None:
    if data != STATUS_REQUEST:
        raise MessageError("status request: expected an empty list")


# --- blocks by range ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class BlocksRequest:
    """Canonical blocks from number `start`, at most `count`; or, with `tip`, the blocks from
    `start` up to the block `tip` on its own branch (a fork we lack: a vote names its tip)."""

    start: int
    count: int
    tip: bytes | None = None

    def encode(self) -> bytes:
        return canonical.encode([self.start, self.count] if self.tip is None else [self.start, self.count, self.tip])

    @classmethod
    def decode(cls, data: bytes) -> BlocksRequest:
        value = _decode(data, MAX_REQUEST, "blocks request")
        if not (isinstance(value, list) and len(value) in (2, 3) and _is_uint(value[0]) and _is_uint(value[1])
                and (len(value) == 2 or _is_hash(value[2]))):
            raise MessageError("blocks request: expected [start number, count] or [start, count, 32-byte tip hash]")
        if not 1 <= value[1] <= MAX_BLOCKS_PER_REQUEST:
            raise MessageError(f"blocks request: count must be 1 to {MAX_BLOCKS_PER_REQUEST}")
        return cls(value[0], value[1], value[2] if len(value) == 3 else None)


@dataclass(frozen=True, slots=True)
class SyncedBlock:
    """One block of a range response: the block envelope and its stored justification."""

    block: bytes
    justification: bytes | None


def encode_blocks_response(blocks: list[SyncedBlock]) -> bytes:
    return canonical.encode([[b.block, b.justification] for b in blocks])


def decode_blocks_response(data: bytes, request: BlocksRequest) -> list[SyncedBlock]:
    value = _decode(data, MAX_BLOCKS_RESPONSE, "blocks response")
    if not isinstance(value, list) or len(value) > request.count:
        raise MessageError(f"blocks response: expected a list of at most {request.count} blocks")
    blocks = []
    for item in value:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], bytes)
                and 0 < len(item[0]) <= MAX_BLOCK_MESSAGE
                and (item[1] is None or (isinstance(item[1], bytes) and len(item[1]) <= MAX_JUSTIFICATION))):
            raise MessageError("blocks response: each item is [block bytes, justification bytes or nil]")
        blocks.append(SyncedBlock(item[0], item[1]))
    return blocks


# --- blobs by hash ---------------------------------------------------------------------------------

def encode_blob_request(blob_hash: bytes) -> bytes:
    return canonical.encode([blob_hash])


def decode_blob_request(data: bytes) -> bytes:
    value = _decode(data, MAX_REQUEST, "blob request")
    if not (isinstance(value, list) and len(value) == 1 and _is_hash(value[0])):
        raise MessageError("blob request: expected [32-byte hash]")
    return value[0]


def encode_blob_response(blob: bytes | None) -> bytes:
    return canonical.encode([blob])


def decode_blob_response(data: bytes) -> bytes | None:
    value = _decode(data, MAX_BLOB_RESPONSE, "blob response")
    if not (isinstance(value, list) and len(value) == 1 and (value[0] is None or isinstance(value[0], bytes))):
        raise MessageError("blob response: expected [blob bytes or nil]")
    return value[0]
