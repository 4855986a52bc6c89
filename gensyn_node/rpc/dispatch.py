"""From a JSON-RPC payload (one request or a batch) to the encoded reply: parse, validate the
envelope, charge the connection's rate limit, bind params, call the handler, encode. The same
path serves HTTP bodies and WebSocket messages; only subscriptions need a `SubscriptionHost`
(the WebSocket session), and over HTTP they are refused.

Replies are encoded to `str` here, one request at a time, so that a result that cannot be
encoded becomes that request's -32603 instead of breaking a whole batch.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from gensyn_node.rpc import errors as E
from gensyn_node.rpc.api import RpcApi, SubscriptionSpec, compute_binding
from gensyn_node.rpc.errors import RpcError
from gensyn_node.rpc.limits import ConnectionState

log = logging.getLogger(__name__)

_encode = json.JSONEncoder(separators=(",", ":")).encode
_decode = json.loads

Starter = Callable[[], None]


class SubscriptionHost(Protocol):
    """What a transport that can push notifications offers the dispatcher (websocket.py)."""

    async def open_subscription(self, spec: SubscriptionSpec, args: list[Any]) -> tuple[str, Starter]:
        """Allocate an id; return it and a callable that starts streaming once the reply is out."""
        ...

    def close_subscription(self, spec: SubscriptionSpec, subscription_id: str) -> bool:
        """Cancel one of this connection's subscriptions; False if it has no such one."""
        ...


def encode_error(request_id: Any, code: int, message: str, data: Any = None) -> str:
    """A JSON-RPC error response."""
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return _encode({"jsonrpc": "2.0", "error": error, "id": request_id})


def encode_notification_prefix(method: str, subscription_id: str) -> str:
    """Everything of a subscription notification but its result and the closing `}}`."""
    return (
        '{"jsonrpc":"2.0","method":' + _encode(method)
        + ',"params":{"subscription":' + _encode(subscription_id) + ',"result":'
    )


def encode_result_value(value: Any) -> str:
    """Encode a result (raises TypeError/ValueError if it is not JSON)."""
    return _encode(value)


PARSE_ERROR_REPLY = encode_error(None, E.PARSE_ERROR, E.PARSE_ERROR_MSG)


async def _unsubscribe_signature(subscription: str) -> bool:  # binding template only
    raise NotImplementedError


_UNSUBSCRIBE_BINDING = compute_binding(_unsubscribe_signature)


def _is_valid_id(value: Any) -> bool:
    return value is None or (isinstance(value, (str, int, float)) and not isinstance(value, bool))


class Dispatcher:
    """Runs requests against one RpcApi under one server's policy (unsafe methods, batch size)."""

    def __init__(self, api: RpcApi, *, allow_unsafe: bool, max_batch_len: int) -> None:
        self._api = api
        self._allow_unsafe = allow_unsafe
        self._max_batch_len = max_batch_len
        self._on_call = api.on_call

    async def handle(
        self, payload: bytes | str, conn: ConnectionState, host: SubscriptionHost | None
    ) -> tuple[str | None, list[Starter]]:
        """Answer one HTTP body or WebSocket message: the encoded reply (None when every
        request was a notification) and the subscription starters to run once it is sent."""
        try:
            decoded = _decode(payload)
        except (ValueError, RecursionError):
            return PARSE_ERROR_REPLY, []
        starters: list[Starter] = []
        if isinstance(decoded, list):
            return await self._handle_batch(decoded, conn, host, starters), starters
        return await self._handle_one(decoded, conn, host, starters), starters

    async def _handle_batch(
        self, batch: list[Any], conn: ConnectionState, host: SubscriptionHost | None, starters: list[Starter]
    ) -> str | None:
        if not batch:
            return encode_error(None, E.INVALID_REQUEST, E.INVALID_REQUEST_MSG, "empty batch")
        if len(batch) > self._max_batch_len:
            return encode_error(
                None, E.TOO_BIG_BATCH_REQUEST, E.TOO_BIG_BATCH_REQUEST_MSG,
                f"Exceeded max limit of {self._max_batch_len}",
            )
        replies = []
        for request in batch:
            reply = await self._handle_one(request, conn, host, starters)
            if reply is not None:
                replies.append(reply)
        if not replies:
            return None
        return "[" + ",".join(replies) + "]"

    async def _handle_one(
        self, request: Any, conn: ConnectionState, host: SubscriptionHost | None, starters: list[Starter]
    ) -> str | None:
        if not isinstance(request, dict):
            return encode_error(None, E.INVALID_REQUEST, E.INVALID_REQUEST_MSG, "request must be an object")
        request_id = request.get("id")
        if not _is_valid_id(request_id):
            return encode_error(None, E.INVALID_REQUEST, E.INVALID_REQUEST_MSG, "id must be a string or number")
        method = request.get("method")
        if request.get("jsonrpc") != "2.0" or not isinstance(method, str):
            reason = "method must be a string" if request.get("jsonrpc") == "2.0" else 'jsonrpc must be "2.0"'
            return encode_error(request_id, E.INVALID_REQUEST, E.INVALID_REQUEST_MSG, reason)
        is_notification = "id" not in request
        if not conn.try_take():
            reply = encode_error(request_id, E.RATE_LIMITED, E.RATE_LIMITED_MSG)
        else:
            reply = await self._call(method, request_id, request.get("params"), host, starters)
        return None if is_notification else reply

    async def _call(
        self, method: str, request_id: Any, params: Any, host: SubscriptionHost | None, starters: list[Starter]
    ) -> str:
        api = self._api
        spec = api.methods.get(method)
        if spec is not None:
            if spec.unsafe and not self._allow_unsafe:
                return encode_error(request_id, E.METHOD_NOT_FOUND, E.UNSAFE_METHOD_MSG)
            started = time.perf_counter()
            try:
                result = await spec.handler(*spec.binding.bind(params))
                return '{"jsonrpc":"2.0","result":' + _encode(result) + ',"id":' + _encode(request_id) + "}"
            except Exception as exc:  # noqa: BLE001 - the edge; _error_reply logs all but RpcError
                return self._error_reply(request_id, method, exc)
            finally:
                self.report_call(method, started)
        sub = api.subscriptions.get(method)
        spec_sub = sub if sub is not None else api.unsubscriptions.get(method)
        if spec_sub is None:
            return encode_error(request_id, E.METHOD_NOT_FOUND, E.METHOD_NOT_FOUND_MSG, method)
        if spec_sub.unsafe and not self._allow_unsafe:
            return encode_error(request_id, E.METHOD_NOT_FOUND, E.UNSAFE_METHOD_MSG)
        if host is None:
            return encode_error(
                request_id, E.METHOD_NOT_FOUND, E.METHOD_NOT_FOUND_MSG,
                f"{method} is a subscription method: it needs a WebSocket connection",
            )
        started = time.perf_counter()
        try:
            if sub is not None:
                subscription_id, starter = await host.open_subscription(sub, sub.binding.bind(params))
                starters.append(starter)
                return '{"jsonrpc":"2.0","result":' + _encode(subscription_id) + ',"id":' + _encode(request_id) + "}"
            (subscription_id,) = _UNSUBSCRIBE_BINDING.bind(params)
            closed = host.close_subscription(spec_sub, subscription_id)
            return '{"jsonrpc":"2.0","result":' + ("true" if closed else "false") + ',"id":' + _encode(request_id) + "}"
        except Exception as exc:  # noqa: BLE001 - the edge; _error_reply logs all but RpcError
            return self._error_reply(request_id, method, exc)
        finally:
            self.report_call(method, started)

    @staticmethod
    def _error_reply(request_id: Any, method: str, exc: Exception) -> str:
        """RpcError -> its own error object (also when a handler's nursery wrapped it alone in
        an ExceptionGroup); anything else -> -32603, logged with its traceback."""
        error: BaseException = exc
        while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
            error = error.exceptions[0]
        if isinstance(error, RpcError):
            return encode_error(request_id, error.code, error.message, error.data)
        log.warning("rpc handler failed method=%s", method, exc_info=exc)
        return encode_error(request_id, E.INTERNAL_ERROR, E.INTERNAL_ERROR_MSG)

    def report_call(self, method: str, started: float) -> None:
        """Feed `on_call` (the latency histogram) one call begun at `started`."""
        on_call = self._on_call
        if on_call is None:
            return
        try:
            on_call(method, time.perf_counter() - started)
        except Exception:  # a metrics hook must never fail a call
            log.warning("rpc on_call hook failed method=%s", method, exc_info=True)
