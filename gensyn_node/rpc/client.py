"""A small JSON-RPC client for the CLI and the tests: `RpcClient`, synchronous over one httpx
keep-alive connection, and `open_ws`, a trio WebSocket client with subscriptions.

    with RpcClient("http://127.0.0.1:9944") as rpc:
        rpc.call("system_health")

    async with open_ws("ws://127.0.0.1:9944") as ws:
        await ws.call("chain_getHeader")
        async with ws.subscribe("chain_subscribeNewHeads", [], "chain_unsubscribeNewHeads") as heads:
            async for header in heads:
                ...
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Self

import httpx
import trio
import trio_websocket

log = logging.getLogger(__name__)

DEFAULT_WS_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# Notifications buffered per subscription before the client gives the subscription up.
DEFAULT_SUBSCRIPTION_BUFFER = 10_000


class RpcClientException(Exception):
    """Base of the client's errors."""


class RpcClientError(RpcClientException):
    """The server answered with a JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(code, message, data)
        self.code = code
        self.message = message
        self.data = data

    def __str__(self) -> str:
        suffix = "" if self.data is None else f": {self.data}"
        return f"RPC error {self.code}: {self.message}{suffix}"


class RpcConnectionError(RpcClientException):
    """No usable answer: the node is unreachable, closed the connection or sent non-JSON-RPC."""


def result_of(reply: Any) -> Any:
    """A JSON-RPC response's result; RpcClientError for its error object, RpcConnectionError else."""
    if not isinstance(reply, dict):
        raise RpcConnectionError(f"not a JSON-RPC response: {reply!r:.200}")
    error = reply.get("error")
    if error is not None:
        if not isinstance(error, dict):
            raise RpcConnectionError(f"malformed error object: {error!r:.200}")
        raise RpcClientError(int(error.get("code", 0)), str(error.get("message", "")), error.get("data"))
    if "result" not in reply:
        raise RpcConnectionError(f"response without result or error: {reply!r:.200}")
    return reply["result"]


class RpcClient:
    """Synchronous JSON-RPC over HTTP with keep-alive. `call` returns the result or raises
    RpcClientError (the node's error) or RpcConnectionError (no usable answer)."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.url = url
        self._http = httpx.Client(timeout=timeout, headers={"content-type": "application/json"})
        self._ids = itertools.count(1)

    def call(self, method: str, *params: Any) -> Any:
        """Call `method` with positional params."""
        request_id = next(self._ids)
        reply = self._post({"jsonrpc": "2.0", "id": request_id, "method": method, "params": list(params)})
        return result_of(reply)

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Send calls as one batch; each slot holds the result or an RpcClientError instance."""
        first = next(self._ids)
        requests = [
            {"jsonrpc": "2.0", "id": first + index, "method": method, "params": list(params)}
            for index, (method, params) in enumerate(calls)
        ]
        self._ids = itertools.count(first + len(requests))
        replies = self._post(requests)
        if not isinstance(replies, list):
            result_of(replies)  # a batch-level error (too big, rate limited) raises here
            raise RpcConnectionError(f"batch answered with {type(replies).__name__}")
        by_id = {reply.get("id"): reply for reply in replies if isinstance(reply, dict)}
        results: list[Any] = []
        for request in requests:
            try:
                results.append(result_of(by_id.get(request["id"])))
            except RpcClientError as exc:
                results.append(exc)
        return results

    def _post(self, body: Any) -> Any:
        try:
            response = self._http.post(self.url, content=json.dumps(body, separators=(",", ":")))
        except httpx.HTTPError as exc:
            raise RpcConnectionError(f"cannot reach {self.url}: {exc}") from exc
        try:
            return response.json()
        except ValueError as exc:
            raise RpcConnectionError(f"HTTP {response.status_code} from {self.url}: not JSON") from exc

    def close(self) -> None:
        """Close the keep-alive connection."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _Pending:
    """One call waiting for its reply."""

    __slots__ = ("done", "reply")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.reply: Any = None


class WsSubscription:
    """The notifications of one subscription. Iterate it; leave the `async with` (or call
    `aclose`) to unsubscribe. Iterating without `async with` also works; the subscription then
    ends with the connection."""

    def __init__(self, client: WsClient, method: str, params: Sequence[Any], unsubscribe_method: str) -> None:
        self._client = client
        self._method = method
        self._params = list(params)
        self._unsubscribe_method = unsubscribe_method
        self.subscription_id: str | None = None
        self._send, self._receive = trio.open_memory_channel[Any](DEFAULT_SUBSCRIPTION_BUFFER)

    async def start(self) -> str:
        """Send the subscribe call (done by `async with` or the first `__anext__`)."""
        if self.subscription_id is None:
            self.subscription_id = await self._client._subscribe(self)
        return self.subscription_id

    def __aiter__(self) -> WsSubscription:
        return self

    async def __anext__(self) -> Any:
        await self.start()
        try:
            item = await self._receive.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None
        if isinstance(item, RpcClientException):
            raise item
        return item

    async def aclose(self) -> bool:
        """Unsubscribe; the server's answer (True if it had the subscription)."""
        if self.subscription_id is None or self._client.closed:
            return False
        subscription_id, self.subscription_id = self.subscription_id, None
        self._client._forget(subscription_id)
        return bool(await self._client.call(self._unsubscribe_method, subscription_id))

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with trio.move_on_after(5):
            try:
                await self.aclose()
            except RpcClientException:
                log.debug("unsubscribe failed method=%s", self._unsubscribe_method, exc_info=True)

    def _deliver(self, item: Any) -> bool:
        try:
            self._send.send_nowait(item)
        except trio.WouldBlock:
            return False
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return True
        return True

    def _end(self, error: RpcClientException | None) -> None:
        if error is not None:
            try:
                self._send.send_nowait(error)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                pass
        self._send.close()


class WsClient:
    """JSON-RPC over one WebSocket; made by `open_ws`."""

    def __init__(self, connection: trio_websocket.WebSocketConnection) -> None:
        self._connection = connection
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._subscribing: dict[int, WsSubscription] = {}
        self._subscriptions: dict[str, WsSubscription] = {}
        self.closed = False

    async def call(self, method: str, *params: Any) -> Any:
        """Call `method` with positional params; the result, or RpcClientError."""
        return result_of(await self._request(method, list(params)))

    def subscribe(self, method: str, params: Sequence[Any], unsubscribe_method: str) -> WsSubscription:
        """A subscription, started on `async with` or on the first iteration."""
        return WsSubscription(self, method, params, unsubscribe_method)

    async def send_raw(self, text: str) -> None:
        """Send a message as is (tests of malformed input)."""
        await self._connection.send_message(text)

    async def _subscribe(self, subscription: WsSubscription) -> str:
        request_id = next(self._ids)
        self._subscribing[request_id] = subscription
        try:
            result = result_of(await self._request(subscription._method, subscription._params, request_id))
        finally:
            self._subscribing.pop(request_id, None)
        return str(result)

    def _forget(self, subscription_id: str) -> None:
        subscription = self._subscriptions.pop(subscription_id, None)
        if subscription is not None:
            subscription._end(None)

    async def _request(self, method: str, params: list[Any], request_id: int | None = None) -> Any:
        if self.closed:
            raise RpcConnectionError("websocket is closed")
        if request_id is None:
            request_id = next(self._ids)
        pending = _Pending()
        self._pending[request_id] = pending
        try:
            text = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
            try:
                await self._connection.send_message(text)
            except trio_websocket.ConnectionClosed as exc:
                raise RpcConnectionError(f"websocket closed: {exc}") from exc
            await pending.done.wait()
        finally:
            self._pending.pop(request_id, None)
        if isinstance(pending.reply, RpcClientException):
            raise pending.reply
        return pending.reply

    async def read_loop(self) -> None:
        """Route replies to their callers and notifications to their subscriptions."""
        error: RpcClientException = RpcConnectionError("websocket closed")
        try:
            while True:
                try:
                    text = await self._connection.get_message()
                except trio_websocket.ConnectionClosed as exc:
                    error = RpcConnectionError(f"websocket closed: {exc.reason}")
                    return
                try:
                    message = json.loads(text)
                except ValueError:
                    log.warning("rpc client got a non-JSON message size=%d", len(text))
                    continue
                for item in message if isinstance(message, list) else [message]:
                    if isinstance(item, dict):
                        self._route(item)
        finally:
            self.closed = True
            for pending in self._pending.values():
                pending.reply = error
                pending.done.set()
            for subscription in list(self._subscriptions.values()):
                subscription._end(error)
            self._subscriptions.clear()

    def _route(self, message: dict[str, Any]) -> None:
        if "id" in message and ("result" in message or "error" in message):
            request_id = message["id"]
            subscription = self._subscribing.get(request_id) if isinstance(request_id, int) else None
            if subscription is not None and message.get("error") is None:
                # Register before reading on: the first notification may be the next message.
                self._subscriptions[str(message.get("result"))] = subscription
            pending = self._pending.get(request_id) if isinstance(request_id, int) else None
            if pending is not None:
                pending.reply = message
                pending.done.set()
            return
        params = message.get("params")
        if isinstance(params, dict) and "subscription" in params:
            subscription = self._subscriptions.get(str(params["subscription"]))
            if subscription is not None and not subscription._deliver(params.get("result")):
                log.warning("rpc client subscription buffer full; dropping subscription=%s", params["subscription"])
                self._subscriptions.pop(str(params["subscription"]), None)
                subscription._end(RpcConnectionError("subscription buffer overflow"))


@asynccontextmanager
async def open_ws(
    url: str, *, max_message_bytes: int = DEFAULT_WS_MAX_MESSAGE_BYTES, connect_timeout: float = 10.0
) -> AsyncIterator[WsClient]:
    """Connect to `ws://host:port`; the connection and its reader task end with the block.
    Errors raised in the block come out as themselves, not wrapped in an ExceptionGroup."""
    client: WsClient | None = None
    try:
        async with trio_websocket.open_websocket_url(
            url, max_message_size=max_message_bytes, connect_timeout=connect_timeout
        ) as connection:
            client = WsClient(connection)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(client.read_loop)
                    try:
                        yield client
                    finally:
                        nursery.cancel_scope.cancel()
            except BaseExceptionGroup as group:
                raise _single(group) from None
    except (OSError, trio.TooSlowError, trio_websocket.HandshakeError) as exc:
        if client is not None:
            raise
        raise RpcConnectionError(f"cannot open {url}: {type(exc).__name__}: {exc}") from exc


def _single(group: BaseExceptionGroup) -> BaseException:
    """The one exception a nursery wrapped (our reader task never raises), else the group."""
    while isinstance(group, BaseExceptionGroup) and len(group.exceptions) == 1:
        group = group.exceptions[0]
    return group
