"""The node's JSON-RPC methods, with Substrate's names and shapes (numbers and bytes as 0x-hex),
so that Substrate clients read them as they would a Substrate node's."""

from __future__ import annotations

from typing import Any

import trio

from gensyn_node import __version__
from gensyn_node.chain_db import StateDiscarded
from gensyn_node.rpc.api import RpcApi
from gensyn_node.rpc.checkpoints import register_checkpoint_api
from gensyn_node.rpc.errors import INVALID_PARAMS, INVALID_PARAMS_MSG, RpcError
from gensyn_node.rpc.grandpa import register_grandpa_api
from gensyn_node.rpc.mlcompute import register_mlcompute_api
from gensyn_node.rpc.node import RpcNode
from gensyn_node.rpc.shapes import decode_hex, encode_hex, header_json, runtime_version_json
from gensyn_node.rpc.substrate import register_substrate_api
from gensyn_node.txpool import (
    AlreadyImported,
    Invalid,
    PoolError,
    PoolFull,
    TemporarilyBanned,
    TooLowPriority,
)
from runtime.codec.errors import CodecError
from runtime.crypto import ss58_decode
from runtime.executive import get_state_runtime
from runtime.hashing import blake2_256
from runtime.pallets.system.account import get_account
from runtime.storage import OverlayState
from runtime.trie import Trie

INVALID_TRANSACTION = 1010
UNKNOWN_TRANSACTION = 1011
TEMPORARILY_BANNED = 1012
ALREADY_IMPORTED = 1013
TOO_LOW_PRIORITY = 1014
IMMEDIATELY_DROPPED = 1016
SESSION_KEY_TYPE = "gsyn"

def pool_error_to_rpc(exc: PoolError) -> RpcError:
    """Substrate's author RPC errors: 1010 with the reason for an invalid transaction."""
    if isinstance(exc, Invalid):
        if exc.kind == "CannotLookup":
            return RpcError(UNKNOWN_TRANSACTION, "Unknown Transaction Validity", exc.reason)
        return RpcError(INVALID_TRANSACTION, "Invalid Transaction", f"{exc.kind}: {exc.reason}")
    if isinstance(exc, TemporarilyBanned):
        return RpcError(TEMPORARILY_BANNED, "Transaction is temporarily banned", exc.reason)
    if isinstance(exc, AlreadyImported):
        return RpcError(ALREADY_IMPORTED, "Transaction Already Imported", exc.reason)
    if isinstance(exc, TooLowPriority):
        return RpcError(TOO_LOW_PRIORITY, "Priority is too low", exc.reason)
    if isinstance(exc, PoolFull):
        return RpcError(IMMEDIATELY_DROPPED, "Immediately Dropped", exc.reason)
    return RpcError(INVALID_TRANSACTION, "Invalid Transaction", exc.reason)

class NodeRpc:
    """Handlers bound to one node."""

    def __init__(self, node: RpcNode):
        self.node = node

    # --- helpers ---------------------------------------------------------------------------

    def _block_hash(self, at: str | None) -> bytes:
        if at is None:
            return self.node.store.best_hash
        block_hash = decode_hex(at, "block hash", 32)
        if not self.node.store.has_block(block_hash):
            raise RpcError(4003, "Client error: unknown block", f"block {at} is not known")
        return block_hash

    def _state_at(self, block_hash: bytes) -> Trie:
        """The block's state; Substrate's 4003 "State already discarded" when it was pruned."""
        try:
            return self.node.store.state_at(block_hash)
        except StateDiscarded as exc:
            raise RpcError(4003, f"Client error: UnknownBlock: {exc}") from None

    # --- system ----------------------------------------------------------------------------

    async def system_name(self) -> str:
        return "gensyn-node"

    async def system_version(self) -> str:
        return __version__

    async def system_chain(self) -> str:
        return self.node.spec.name

    async def system_chainType(self) -> str:
        return self.node.spec.chain_type

    async def system_properties(self) -> dict[str, Any]:
        return dict(self.node.spec.properties)

    async def system_health(self) -> dict[str, Any]:
        network, sync = self.node.network, self.node.sync
        peers = len(network.peers) if network is not None else 0
        syncing = sync is not None and sync.get_state().is_syncing
        should = bool(self.node.config.bootnodes) or self.node.spec.chain_type != "Development"
        return {"peers": peers, "isSyncing": syncing, "shouldHavePeers": should}

    async def system_localPeerId(self) -> str:
        if self.node.network is None:
            raise RpcError(-32000, "Networking is disabled", "this node runs with --no-network")
        return self.node.network.local_peer_id

    async def system_localListenAddresses(self) -> list[str]:
        network = self.node.network
        if network is None:
            return []
        return [a if "/p2p/" in a else f"{a}/p2p/{network.local_peer_id}" for a in network.listen_addrs]

    async def system_peers(self) -> list[Any]:
        network = self.node.network
        if network is None:
            return []
        peers = []
        for state in list(network.peers.values()):
            status = state.status
            peers.append({"peerId": state.peer_id,
                          "roles": "AUTHORITY" if status is not None and status.authority else "FULL",
                          "bestHash": encode_hex(status.best_hash) if status is not None else None,
                          "bestNumber": status.best_number if status is not None else None})
        return peers

    def _network(self) -> Any:
        if self.node.network is None:
            raise RpcError(-32000, "Networking is disabled", "this node runs with --no-network")
        return self.node.network

    async def system_reservedPeers(self) -> list[str]:
        return sorted(self._network().reserved)

    async def system_addReservedPeer(self, peer: str) -> None:
        """Keep (and, with --reserved-only, allow) the peer at the multiaddr `peer`."""
        try:
            self._network().add_reserved_peer(str(peer))
        except ValueError as exc:
            raise RpcError(INVALID_PARAMS, INVALID_PARAMS_MSG, str(exc)) from None

    async def system_removeReservedPeer(self, peer_id: str) -> None:
        """Stop keeping the peer; with --reserved-only, it is disconnected and no longer heard."""
        try:
            self._network().remove_reserved_peer(str(peer_id))
        except ValueError as exc:
            raise RpcError(INVALID_PARAMS, INVALID_PARAMS_MSG, str(exc)) from None

    async def system_syncState(self) -> dict[str, Any]:
        best = self.node.store.best_header().number
        if self.node.sync is None:
            return {"startingBlock": best, "currentBlock": best, "highestBlock": best}
        state = self.node.sync.get_state()
        return {"startingBlock": state.starting_block, "currentBlock": state.current_block,
                "highestBlock": state.highest_block}

    async def system_accountNextIndex(self, account: str) -> int:
        try:
            who = ss58_decode(account, prefix=None) if not account.startswith("0x") else decode_hex(account, "account", 32)
        except CodecError as exc:
            raise RpcError(-32602, "Invalid params", str(exc)) from None
        _best, state = self.node.best_state()
        nonce = get_account(OverlayState(state.get), who).nonce
        pending = {tx.valid.provides[0][32:] for tx in self.node.pool.pending() if tx.valid.provides
                   and tx.valid.provides[0][:32] == who}
        while nonce.to_bytes(4, "little") in pending:
            nonce += 1
        return nonce

    # --- chain -----------------------------------------------------------------------------

    async def chain_getHeader(self, block_hash: str | None = None) -> dict[str, Any] | None:
        target = self.node.store.best_hash if block_hash is None else decode_hex(block_hash, "block hash", 32)
        header = self.node.store.get_header(target)
        return header_json(header) if header is not None else None

    async def chain_getBlock(self, block_hash: str | None = None) -> dict[str, Any] | None:
        target = self.node.store.best_hash if block_hash is None else decode_hex(block_hash, "block hash", 32)
        block = self.node.store.get_block(target)
        if block is None:
            return None
        justification = self.node.store.get_justification(target)
        return {"block": {"header": header_json(block.header), "extrinsics": [encode_hex(x) for x in block.extrinsics]},
                "justifications": [["FRNK", encode_hex(justification)]] if justification else None}

    async def chain_getBlockHash(self, number: int | str | None = None) -> str | None:
        if number is None:
            return encode_hex(self.node.store.best_hash)
        if isinstance(number, str):
            try:
                number = int(number, 16) if number.startswith("0x") else int(number)
            except ValueError:
                raise RpcError(-32602, "Invalid params", "block number: expected an integer or 0x-hex") from None
        if isinstance(number, bool) or number < 0:
            raise RpcError(-32602, "Invalid params", "block number must be a non-negative integer")
        block_hash = self.node.store.hash_at(number)
        return encode_hex(block_hash) if block_hash is not None else None

    async def chain_getFinalizedHead(self) -> str:
        return encode_hex(self.node.store.finalized_hash)

    async def chain_subscribeNewHeads(self):  # type: ignore[no-untyped-def]
        receive = self.node.new_head.subscribe()
        yield header_json(self.node.store.best_header())
        async with receive:
            async for header in receive:
                yield header_json(header)

    async def chain_subscribeFinalizedHeads(self):  # type: ignore[no-untyped-def]
        receive = self.node.finalized_head.subscribe()
        yield header_json(self.node.store.finalized_header())
        async with receive:
            async for header in receive:
                yield header_json(header)

    # --- state -----------------------------------------------------------------------------

    async def state_getStorage(self, key: str, at: str | None = None) -> str | None:
        raw_key = decode_hex(key, "storage key")
        value = self._state_at(self._block_hash(at)).get(raw_key)
        return encode_hex(value) if value is not None else None

    async def state_getStorageAt(self, key: str, at: str | None = None) -> str | None:
        return await self.state_getStorage(key, at)

    async def state_getReadProof(self, keys: list, at: str | None = None) -> dict[str, Any]:
        block_hash = self._block_hash(at)
        raw_keys = [decode_hex(k, "storage key") for k in keys]
        proof = self._state_at(block_hash).prove(raw_keys)
        return {"at": encode_hex(block_hash), "proof": [encode_hex(node) for node in proof]}

    async def state_getRuntimeVersion(self, at: str | None = None) -> dict[str, Any]:
        trie = self._state_at(self._block_hash(at))
        return runtime_version_json(get_state_runtime(OverlayState(trie.get)))

    # --- author ----------------------------------------------------------------------------

    def _submit(self, extrinsic: str) -> bytes:
        data = decode_hex(extrinsic, "extrinsic")
        try:
            return self.node.submit_extrinsic(data)
        except PoolError as exc:
            raise pool_error_to_rpc(exc) from None

    async def author_submitExtrinsic(self, extrinsic: str) -> str:
        return encode_hex(self._submit(extrinsic))

    async def author_pendingExtrinsics(self) -> list[str]:
        return [encode_hex(tx.data) for tx in self.node.pool.pending()]

    async def author_submitAndWatchExtrinsic(self, extrinsic: str):  # type: ignore[no-untyped-def]
        data = decode_hex(extrinsic, "extrinsic")
        tx_hash = blake2_256(data)
        receive = self.node.tx_status.watch(tx_hash)
        try:
            self._submit(extrinsic)
        except RpcError:
            self.node.tx_status.unwatch(tx_hash)
            raise
        return _drain(receive, self.node, tx_hash)

    # --- keys (unsafe: they change the node) ----------------------------------------------------

    async def author_insertKey(self, key_type: str, suri: str, public: str) -> None:
        """Store `suri` as the node's session key (key type "gsyn", ed25519); it signs from the next slot."""
        from gensyn_node.keyring import KeyError_, keypair_from_uri
        from gensyn_node.keystore import store_session_seed
        from runtime.crypto import ED25519

        if key_type != SESSION_KEY_TYPE:
            raise RpcError(-32602, "Invalid params", f"key type must be {SESSION_KEY_TYPE!r}")
        try:
            key = keypair_from_uri(suri, ED25519)
        except KeyError_ as exc:
            raise RpcError(-32602, "Invalid params", f"suri: {exc}") from None
        if key.public != decode_hex(public, "public key", 32):
            raise RpcError(-32602, "Invalid params", "the public key does not belong to the suri")
        self.node.set_session_key(store_session_seed(self.node.config.base_path, key.secret[:32]))

    async def author_rotateKeys(self) -> str:
        """A new random session key, stored and in use; returns its public key to register."""
        from gensyn_node.keyring import generate_seed
        from gensyn_node.keystore import store_session_seed

        key = store_session_seed(self.node.config.base_path, generate_seed())
        self.node.set_session_key(key)
        return encode_hex(key.public)

    async def author_hasKey(self, public: str, key_type: str) -> bool:
        key = self.node.config.session_key
        return key_type == SESSION_KEY_TYPE and key is not None and key.public == decode_hex(public, "public key", 32)

async def _drain(receive: trio.MemoryReceiveChannel, node: RpcNode, tx_hash: bytes):  # type: ignore[no-untyped-def]
    try:
        async with receive:
            async for status in receive:
                yield status
    finally:
        node.tx_status.unwatch(tx_hash)

def build_api(node: RpcNode) -> RpcApi:
    rpc = NodeRpc(node)
    api = RpcApi(on_call=node.metrics.on_rpc_call)
    for name in ("system_name", "system_version", "system_chain", "system_chainType", "system_properties",
                 "system_health", "system_localPeerId", "system_localListenAddresses", "system_syncState",
                 "system_accountNextIndex",
                 "chain_getHeader", "chain_getBlock", "chain_getBlockHash", "chain_getFinalizedHead",
                 "state_getStorage", "state_getStorageAt", "state_getReadProof", "state_getRuntimeVersion",
                 "author_submitExtrinsic", "author_pendingExtrinsics"):
        api.method(name, getattr(rpc, name))
    api.method("system_peers", rpc.system_peers, unsafe=True)  # unsafe in Substrate too
    for name in ("system_reservedPeers", "system_addReservedPeer", "system_removeReservedPeer"):
        api.method(name, getattr(rpc, name), unsafe=True)  # as in Substrate
    api.method("author_insertKey", rpc.author_insertKey, unsafe=True)
    api.method("author_rotateKeys", rpc.author_rotateKeys, unsafe=True)
    api.method("author_hasKey", rpc.author_hasKey, unsafe=True)
    api.method("chain_getHead", rpc.chain_getBlockHash)
    api.method("chain_getFinalisedHead", rpc.chain_getFinalizedHead)
    api.subscription("chain_subscribeNewHeads", "chain_unsubscribeNewHeads", "chain_newHead", rpc.chain_subscribeNewHeads)
    api.subscription("chain_subscribeFinalizedHeads", "chain_unsubscribeFinalizedHeads", "chain_finalizedHead",
                     rpc.chain_subscribeFinalizedHeads)
    api.subscription("author_submitAndWatchExtrinsic", "author_unwatchExtrinsic", "author_extrinsicUpdate",
                     rpc.author_submitAndWatchExtrinsic)
    register_substrate_api(api, node)
    register_grandpa_api(api, node)
    register_mlcompute_api(api, node)

    def get_best_overlay() -> OverlayState:
        _header, trie = node.best_state()
        return OverlayState(trie.get, trie.iter_prefix)

    # The node's peer fetcher when it has one (a node without a network answers from its store).
    register_checkpoint_api(api, node.checkpoints, get_best_overlay, getattr(node, "fetch_blob", None))
    return api
