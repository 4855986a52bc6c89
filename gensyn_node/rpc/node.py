"""What the RPC edge needs of a node, as a small protocol: the node's methods (methods.py,
substrate.py) are written against `RpcNode`, and `service.Node` satisfies it, so this package
depends on the node's parts (store, pool, spec) and never on the service that wires them."""

from __future__ import annotations

from typing import Any, Protocol

import trio

from gensyn_node.chain_db import ChainStore
from gensyn_node.chain_spec import ChainSpec
from gensyn_node.keyring import Keypair
from gensyn_node.txpool import TxPool
from runtime.block import Header
from runtime.trie import Trie


class HeadFeed(Protocol):
    """New best (or finalized) headers, each subscriber on its own channel."""

    def subscribe(self) -> trio.MemoryReceiveChannel: ...


class TxWatchers(Protocol):
    """Status updates of one transaction (ready, inBlock, finalized, dropped, ...)."""

    def watch(self, tx_hash: bytes) -> trio.MemoryReceiveChannel: ...

    def unwatch(self, tx_hash: bytes) -> None: ...


class CallObserver(Protocol):
    def on_rpc_call(self, method: str, seconds: float) -> None: ...


class KeyConfig(Protocol):
    """Where the node keeps its session key and which key it signs with now."""

    @property
    def base_path(self) -> str: ...

    @property
    def session_key(self) -> Keypair | None: ...


class RoundStateSource(Protocol):
    """The finality gadget, as `grandpa_roundState` reads it."""

    def get_round_state(self) -> dict[str, Any]: ...


class RpcNode(Protocol):
    """The node as its RPC methods see it."""

    @property
    def store(self) -> ChainStore: ...

    @property
    def spec(self) -> ChainSpec: ...

    @property
    def pool(self) -> TxPool: ...

    @property
    def config(self) -> KeyConfig: ...

    @property
    def metrics(self) -> CallObserver: ...

    @property
    def new_head(self) -> HeadFeed: ...

    @property
    def finalized_head(self) -> HeadFeed: ...

    @property
    def tx_status(self) -> TxWatchers: ...

    @property
    def gadget(self) -> RoundStateSource: ...

    def best_state(self) -> tuple[Header, Trie]:
        """The best header and its state."""
        ...

    def submit_extrinsic(self, data: bytes) -> bytes:
        """Validate and pool a transaction; raises PoolError (with the reason) when refused."""
        ...

    def set_session_key(self, key: Keypair) -> None:
        """Sign with `key` from the next slot."""
        ...
