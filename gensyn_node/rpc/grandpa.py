"""The finality RPC: `grandpa_roundState` (Substrate's name and shape: the voter set's id, the
current round's prevote and precommit weights with the voters still missing, earlier rounds
as background) and `grandpa_proveFinality`'s simpler sibling here, the stored justification
of a finalized block. Registered by `build_api` with `register_grandpa_api(api, node)`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gensyn_node.rpc.api import RpcApi
from gensyn_node.rpc.errors import RpcError

if TYPE_CHECKING:
    from gensyn_node.service import Node

INVALID_PARAMS = -32602


def register_grandpa_api(api: RpcApi, node: Node) -> None:
    async def grandpa_roundState() -> dict[str, Any]:
        return node.gadget.get_round_state()

    async def grandpa_justification(block_hash: Any) -> str | None:
        """The stored justification of a finalized block (0x-hex of its canonical encoding)."""
        if not isinstance(block_hash, str) or not block_hash.startswith("0x"):
            raise RpcError(INVALID_PARAMS, "Invalid params", "block hash: expected 0x-prefixed hex")
        try:
            raw = bytes.fromhex(block_hash[2:])
        except ValueError:
            raise RpcError(INVALID_PARAMS, "Invalid params", "block hash: invalid hex") from None
        justification = node.store.get_justification(raw)
        return None if justification is None else "0x" + justification.hex()

    api.method("grandpa_roundState", grandpa_roundState)
    api.method("grandpa_justification", grandpa_justification)
