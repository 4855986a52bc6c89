"""The node's event hubs: `Broadcast` fans new and finalized heads out to RPC subscribers,
`TxStatusHub` follows each watched transaction (author_submitAndWatchExtrinsic) from the pool
to inBlock, retracted and finalized."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from gensyn_node.chain_db import ChainStore


class Broadcast:
    """Fan-out of events to subscribers, each with its own bounded queue; a subscriber that
    falls too far behind is dropped rather than slowing the node."""

    def __init__(self, capacity: int = 256):
        self.capacity = capacity
        self._subscribers: set[trio.MemorySendChannel] = set()

    def subscribe(self) -> trio.MemoryReceiveChannel:
        send, receive = trio.open_memory_channel(self.capacity)
        self._subscribers.add(send)
        return receive

    def publish(self, item: Any) -> None:
        for send in list(self._subscribers):
            try:
                send.send_nowait(item)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.discard(send)
                send.close()


class TxStatusHub:
    """Per-transaction watchers for author_submitAndWatchExtrinsic: pool events, then inBlock
    and finalized as blocks are imported and finalized."""

    def __init__(self) -> None:
        self._watchers: dict[bytes, list[trio.MemorySendChannel]] = {}
        self._in_block: dict[bytes, bytes] = {}  # tx hash -> block hash, for watched txs

    def watch(self, tx_hash: bytes) -> trio.MemoryReceiveChannel:
        send, receive = trio.open_memory_channel(math.inf)
        self._watchers.setdefault(tx_hash, []).append(send)
        return receive

    def unwatch(self, tx_hash: bytes) -> None:
        for send in self._watchers.pop(tx_hash, []):
            send.close()
        self._in_block.pop(tx_hash, None)

    def _send(self, tx_hash: bytes, status: Any, final: bool = False) -> None:
        for send in self._watchers.get(tx_hash, []):
            try:
                send.send_nowait(status)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
        if final:
            self.unwatch(tx_hash)

    def on_pool_event(self, tx_hash: bytes, status: str, detail: Any) -> None:
        if tx_hash not in self._watchers:
            return
        if status == "ready":
            self._send(tx_hash, "ready")
        elif status == "future":
            self._send(tx_hash, "future")
        elif status == "usurped":
            self._send(tx_hash, {"usurped": "0x" + bytes(detail).hex()}, final=True)
        elif status in ("dropped", "invalid"):
            self._send(tx_hash, status, final=True)

    def on_block(self, block_hash: bytes, included: list[bytes]) -> None:
        for tx_hash in included:
            if tx_hash in self._watchers:
                self._in_block[tx_hash] = block_hash
                self._send(tx_hash, {"inBlock": "0x" + block_hash.hex()})

    def on_retracted(self, block_hashes: list[bytes]) -> None:
        """Blocks left the best chain: a watched transaction in one of them is `retracted`."""
        gone = set(block_hashes)
        for tx_hash, block_hash in list(self._in_block.items()):
            if block_hash in gone:
                del self._in_block[tx_hash]
                self._send(tx_hash, {"retracted": "0x" + block_hash.hex()})

    def on_finalized(self, finalized_hash: bytes, store: ChainStore) -> None:
        finalized_number = store.require_header(finalized_hash).number
        for tx_hash, block_hash in list(self._in_block.items()):
            header = store.get_header(block_hash)
            if header is not None and header.number <= finalized_number and store.hash_at(header.number) == block_hash:
                self._send(tx_hash, {"finalized": "0x" + block_hash.hex()}, final=True)
