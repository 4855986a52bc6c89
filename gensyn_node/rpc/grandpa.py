"""The finality RPC: `grandpa_roundState` (Substrate's name and shape: the voter set's id, the
current round's prevote and precommit weights with the voters still missing, earlier rounds
as background) and `grandpa_justification`, the stored justification of a finalized block
(a simpler sibling of Substrate's `grandpa_proveFinality`). Registered by `build_api` with `register_grandpa_api(api, node)`."""

from __future__ import annotations

from typing import Any

from gensyn_node.rpc.api import RpcApi
from gensyn_node.rpc.node import RpcNode
from gensyn_node.rpc.shapes import decode_hex, encode_hex


def register_grandpa_api(api: RpcApi, node: RpcNode) -> None:
    async def grandpa_roundState() -> dict[str, Any]:
        return node.gadget.get_round_state()

    async def grandpa_justification(block_hash: Any) -> str | None:
        """The stored justification of a finalized block (0x-hex of its canonical encoding)."""
        justification = node.store.get_justification(decode_hex(block_hash, "block hash", 32))
        return None if justification is None else encode_hex(justification)

    api.method("grandpa_roundState", grandpa_roundState)
    api.method("grandpa_justification", grandpa_justification)
