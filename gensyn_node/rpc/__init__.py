"""JSON-RPC 2.0 for the node: HTTP and WebSocket on one port (server.py), the method registry
(api.py), and a small client (client.py). Chain logic registers its methods on an RpcApi;
nothing here knows about blocks."""

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
