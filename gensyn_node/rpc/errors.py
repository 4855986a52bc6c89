"""JSON-RPC error codes and the exceptions that carry them: the last step of the RPC data path,
where a failed call becomes an error object on the wire.

Codes follow JSON-RPC 2.0 for the standard cases and Substrate / jsonrpsee for the server
limits, so that polkadot.js and substrate-interface read them as they would from Substrate:

    -32700  Parse error                      body is not JSON
    -32600  Invalid request                  not a request object, empty batch, bad id/jsonrpc
    -32601  Method not found                 unknown method; also a subscription over HTTP
    -32601  RPC call is unsafe to be called externally   (Substrate's code and text)
    -32602  Invalid params                   wrong arity, unknown name, wrong JSON type
    -32603  Internal error                   the handler raised something unexpected (logged)
    -32006  Too many subscriptions on the connection     (jsonrpsee)
    -32007  Request is too big               body / message over max_request_bytes (jsonrpsee)
    -32009  Server is busy, try again later  connection limit reached (HTTP 503, jsonrpsee)
    -32010  The batch request was too large  batch over max_batch_len (jsonrpsee)
    -32999  RPC rate limit exceeded          per-connection rate limit (Substrate's rate limiter)
    1010    Invalid Transaction              application errors raised by handlers (RpcError)
"""

from __future__ import annotations

from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
TOO_MANY_SUBSCRIPTIONS = -32006
OVERSIZED_REQUEST = -32007
SERVER_IS_BUSY = -32009
TOO_BIG_BATCH_REQUEST = -32010
RATE_LIMITED = -32999
NOT_FOUND = -32004  # a bulk route's GET of a key the node does not hold

PARSE_ERROR_MSG = "Parse error"
INVALID_REQUEST_MSG = "Invalid request"
METHOD_NOT_FOUND_MSG = "Method not found"
UNSAFE_METHOD_MSG = "RPC call is unsafe to be called externally"
INVALID_PARAMS_MSG = "Invalid params"
INTERNAL_ERROR_MSG = "Internal error"
TOO_MANY_SUBSCRIPTIONS_MSG = "Too many subscriptions on the connection"
OVERSIZED_REQUEST_MSG = "Request is too big"
SERVER_IS_BUSY_MSG = "Server is busy, try again later"
TOO_BIG_BATCH_REQUEST_MSG = "The batch request was too large"
RATE_LIMITED_MSG = "RPC rate limit exceeded"
NOT_FOUND_MSG = "Not found"


class RpcError(Exception):
    """An error a handler raises to answer with a JSON-RPC error object, e.g.
    `RpcError(1010, "Invalid Transaction", data="Inability to pay some fees")`."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(code, message, data)
        self.code = code
        self.message = message
        self.data = data

    def to_object(self) -> dict[str, Any]:
        """The JSON-RPC `error` member."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error

    def __str__(self) -> str:
        if self.data is None:
            return f"{self.code}: {self.message}"
        return f"{self.code}: {self.message}: {self.data}"


class InvalidParams(RpcError):
    """-32602 with a reason; raised by the binder and by handlers that check their own params."""

    def __init__(self, reason: str) -> None:
        super().__init__(INVALID_PARAMS, INVALID_PARAMS_MSG, reason)


class RpcPortBusy(OSError):
    """The RPC port is already bound by another socket (this or another process)."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(f"RPC port {host}:{port} is busy: {reason}")
        self.host = host
        self.port = port


class RpcRegistrationError(ValueError):
    """A method or subscription cannot be registered (duplicate name, unbindable signature)."""
