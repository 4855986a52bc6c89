"""One WebSocket connection of the RPC server: its receive loop, its requests in flight and its
subscriptions, all tasks of one per-connection nursery, so that closing the socket cancels
everything the connection started. Requests run concurrently (up to a per-connection bound),
as Substrate serves one multiplexed socket per polkadot.js client; a subscription's id reply
is always sent before its first notification."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio

from gensyn_node.rpc import errors as E
from gensyn_node.rpc.api import SubscriptionSpec
from gensyn_node.rpc.dispatch import (
    Dispatcher,
    Starter,
    encode_error,
    encode_notification_prefix,
    encode_result_value,
)
from gensyn_node.rpc.errors import RpcError
from gensyn_node.rpc.limits import ConnectionState

log = logging.getLogger(__name__)

ASGIReceive = Callable[[], Awaitable[dict[str, Any]]]
ASGISend = Callable[[dict[str, Any]], Awaitable[None]]

# How long closing a finished subscription's source (an async generator's finally) may take.
_SOURCE_CLOSE_TIMEOUT_S = 1.0


@dataclass(slots=True)
class _ActiveSubscription:
    spec: SubscriptionSpec
    subscription_id: str
    cancel_scope: trio.CancelScope


class WsSession:
    """Serves JSON-RPC on one accepted WebSocket until the client goes away."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        conn: ConnectionState,
        send: ASGISend,
        *,
        max_request_bytes: int,
        max_subscriptions: int,
        max_in_flight: int,
    ) -> None:
        self._dispatcher = dispatcher
        self._conn = conn
        self._asgi_send = send
        self._max_request_bytes = max_request_bytes
        self._max_subscriptions = max_subscriptions
        self._in_flight = trio.Semaphore(max_in_flight)
        self._subscriptions: dict[str, _ActiveSubscription] = {}
        self._reserved = 0  # subscriptions whose handler is still preparing their stream
        self._nursery: trio.Nursery | None = None

    async def run(self, receive: ASGIReceive) -> None:
        """Read messages until the client disconnects, then cancel whatever is still running."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                await self._receive_loop(receive, nursery)
            finally:
                nursery.cancel_scope.cancel()

    async def _receive_loop(self, receive: ASGIReceive, nursery: trio.Nursery) -> None:
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                return
            if kind != "websocket.receive":
                continue
            data = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            if self._is_oversize(data):
                await self.send_text(
                    encode_error(
                        None, E.OVERSIZED_REQUEST, E.OVERSIZED_REQUEST_MSG,
                        f"Exceeded max limit of {self._max_request_bytes}",
                    )
                )
                continue
            # Backpressure: a client that outpaces its handlers stops being read. The nowait
            # try skips a scheduler round trip per message (receive() already checkpointed).
            try:
                self._in_flight.acquire_nowait()
            except trio.WouldBlock:
                await self._in_flight.acquire()
            nursery.start_soon(self._handle_message, data)

    def _is_oversize(self, data: str | bytes) -> bool:
        limit = self._max_request_bytes
        if len(data) > limit:
            return True
        # A str of n characters is at most 4n UTF-8 bytes; encode only when it could be over.
        return isinstance(data, str) and len(data) * 4 > limit and len(data.encode()) > limit

    async def _handle_message(self, data: str | bytes) -> None:
        try:
            reply, starters = await self._dispatcher.handle(data, self._conn, self)
            if reply is not None:
                await self.send_text(reply)
            for start in starters:
                start()
        finally:
            self._in_flight.release()

    async def send_text(self, text: str) -> None:
        """Send one message; hypercorn drops messages sent after the socket closed."""
        # No lock of ours: hypercorn turns the message into one whole frame synchronously and
        # writes frames under its connection's send lock, so concurrent sends never interleave.
        await self._asgi_send({"type": "websocket.send", "text": text})

    # SubscriptionHost

    async def open_subscription(self, spec: SubscriptionSpec, args: list[Any]) -> tuple[str, Starter]:
        """Check the limit, prepare the stream (a "stream" handler may raise RpcError here,
        which answers the subscribe call) and return the new id and the starter."""
        if len(self._subscriptions) + self._reserved >= self._max_subscriptions:
            raise RpcError(
                E.TOO_MANY_SUBSCRIPTIONS, E.TOO_MANY_SUBSCRIPTIONS_MSG,
                f"Exceeded max limit of {self._max_subscriptions}",
            )
        self._reserved += 1
        try:
            source: Any = None
            if spec.kind == "stream":
                source = await spec.handler(*args)
                if not isinstance(source, AsyncIterable):
                    raise TypeError(f"{spec.subscribe} handler returned {type(source).__name__}, not an async iterable")
            elif spec.kind == "generator":
                source = spec.handler(*args)
        finally:
            self._reserved -= 1
        subscription_id = secrets.token_hex(8)
        while subscription_id in self._subscriptions:
            subscription_id = secrets.token_hex(8)
        active = _ActiveSubscription(spec, subscription_id, trio.CancelScope())
        self._subscriptions[subscription_id] = active
        nursery = self._nursery
        if nursery is None:  # only reachable when used outside run(); nothing can stream
            raise RuntimeError("WsSession.open_subscription called outside run()")

        def start() -> None:
            nursery.start_soon(self._run_subscription, active, source, args)

        return subscription_id, start

    def close_subscription(self, spec: SubscriptionSpec, subscription_id: str) -> bool:
        """Unsubscribe: cancel the stream if it is this connection's and of this kind."""
        active = self._subscriptions.get(subscription_id)
        if active is None or active.spec is not spec:
            return False
        del self._subscriptions[subscription_id]
        active.cancel_scope.cancel()
        return True

    async def _run_subscription(self, active: _ActiveSubscription, source: Any, args: list[Any]) -> None:
        spec = active.spec
        prefix = encode_notification_prefix(spec.notification, active.subscription_id)

        async def notify(result: Any) -> None:
            await self.send_text(prefix + encode_result_value(result) + "}}")

        try:
            with active.cancel_scope:
                if spec.kind == "callback":
                    await spec.handler(notify, *args)
                else:
                    try:
                        async for item in source:
                            await notify(item)
                    finally:
                        await _close_source(source)
        except Exception:  # the edge: one broken stream must not end the connection
            log.warning(
                "rpc subscription ended by an error method=%s subscription=%s",
                spec.subscribe, active.subscription_id, exc_info=True,
            )
        finally:
            if self._subscriptions.get(active.subscription_id) is active:
                del self._subscriptions[active.subscription_id]


async def _close_source(source: Any) -> None:
    """Close an async generator or channel we stopped reading, bounded and shielded so that a
    cancelled subscription still runs the source's cleanup (unregistering from a broadcaster)."""
    aclose = getattr(source, "aclose", None)
    if aclose is None:
        return
    with trio.move_on_after(_SOURCE_CLOSE_TIMEOUT_S) as scope:
        scope.shield = True
        await aclose()
