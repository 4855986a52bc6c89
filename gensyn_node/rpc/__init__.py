"""The node's whole RPC edge. The transport, which knows nothing about blocks: JSON-RPC 2.0 over
HTTP and WebSocket on one port (server.py), the method registry (api.py), a small client
(client.py). The node's methods with Substrate's names and shapes (methods.py, substrate.py,
shapes.py), written against the `RpcNode` protocol (node.py) that `service.Node` satisfies, so
this package never imports the service. `build_api(node)` in methods.py registers them all.

    api = RpcApi(on_call=lambda method, seconds: RPC_SECONDS.labels(method).observe(seconds))
    api.method("system_health", get_health)                        # async def get_health() -> dict
    api.method("author_insertKey", insert_key, unsafe=True)
    api.subscription("chain_subscribeNewHeads", "chain_unsubscribeNewHeads", "chain_newHead",
                     stream_new_heads)                             # async def (...) -> AsyncIterable
    port = await nursery.start(serve_rpc, api, RpcConfig(port=9944))

Handlers raise RpcError(code, message, data) for application errors, e.g.
RpcError(1010, "Invalid Transaction", "Inability to pay some fees"); see errors.py for the codes
the server itself answers with.
"""

from gensyn_node.rpc.api import RpcApi
from gensyn_node.rpc.errors import InvalidParams, RpcError, RpcPortBusy, RpcRegistrationError
from gensyn_node.rpc.server import RpcConfig, serve_rpc

__all__ = [
    "InvalidParams",
    "RpcApi",
    "RpcConfig",
    "RpcError",
    "RpcPortBusy",
    "RpcRegistrationError",
    "serve_rpc",
]
