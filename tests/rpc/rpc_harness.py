"""A test API and a running-server context manager for the RPC tests (real sockets, port 0)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import trio

from gensyn_node.rpc import RpcApi, RpcConfig, RpcError, serve_rpc
from gensyn_node.rpc.limits import ConnectionStats

TEST_TIMEOUT_S = 15


@dataclass
class Probe:
    """What the test handlers saw, for assertions and for waiting without sleeps."""

    calls: list[tuple[str, float]] = field(default_factory=list)
    closed: dict[str, trio.Event] = field(default_factory=dict)

    def closed_event(self, name: str) -> trio.Event:
        return self.closed.setdefault(name, trio.Event())


def make_api(probe: Probe) -> RpcApi:
    """echo/add/fail/reject/admin methods and four kinds of subscription."""
    api = RpcApi(on_call=lambda method, seconds: probe.calls.append((method, seconds)))

    async def echo(value: Any, extra: int = 0) -> dict[str, Any]:
        return {"value": value, "extra": extra}

    async def add(a: int, b: int) -> int:
        return a + b

    async def fail() -> None:
        raise ValueError("handler bug")

    async def reject(reason: str) -> None:
        raise RpcError(1010, "Invalid Transaction", reason)

    async def reject_in_nursery(reason: str) -> None:
        # A handler whose nursery wraps the RpcError in an ExceptionGroup.
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reject, reason)

    async def not_json() -> object:
        return object()

    async def rotate_keys() -> str:
        return "0x1234"

    async def counter(start: int, count: int) -> AsyncIterator[int]:
        for value in range(start, start + count):
            yield value

    async def hold(name: str) -> AsyncIterator[str]:
        # Stays open until unsubscribed or the socket closes; reports its cleanup.
        try:
            yield f"{name}:open"
            await trio.sleep_forever()
        finally:
            probe.closed_event(name).set()

    async def watch(reason: str | None = None) -> AsyncIterator[str]:
        # "stream" form: validation runs before the reply, so a rejection answers the call.
        if reason is not None:
            raise RpcError(1010, "Invalid Transaction", reason)

        async def statuses() -> AsyncIterator[str]:
            for status in ("ready", "inBlock", "finalized"):
                yield status

        return statuses()

    async def ticks(send: Callable[[Any], Awaitable[None]], count: int) -> None:
        for value in range(count):
            await send({"tick": value})

    async def broken(count: int) -> AsyncIterator[int]:
        yield count
        raise ValueError("stream bug")

    async def flood(size: int) -> AsyncIterator[str]:
        while True:
            yield "x" * size

    api.method("test_echo", echo)
    api.method("test_add", add)
    api.method("test_fail", fail)
    api.method("test_reject", reject)
    api.method("test_rejectInNursery", reject_in_nursery)
    api.method("test_notJson", not_json)
    api.method("author_rotateKeys", rotate_keys, unsafe=True)
    api.subscription("test_subscribeCounter", "test_unsubscribeCounter", "test_counter", counter)
    api.subscription("test_subscribeHold", "test_unsubscribeHold", "test_hold", hold)
    api.subscription("test_submitAndWatch", "test_unwatch", "test_update", watch)
    api.subscription("test_subscribeTicks", "test_unsubscribeTicks", "test_tick", ticks, callback=True)
    api.subscription("test_subscribeFlood", "test_unsubscribeFlood", "test_flood", flood)
    api.subscription("test_subscribeBroken", "test_unsubscribeBroken", "test_broken", broken)
    return api


@dataclass
class Running:
    port: int
    probe: Probe

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


async def start_server(nursery: trio.Nursery, config: RpcConfig | None = None) -> Running:
    """serve_rpc as a task of `nursery`, on a free port."""
    probe = Probe()
    port = await nursery.start(serve_rpc, make_api(probe), config or RpcConfig(port=0))
    return Running(port, probe)


@asynccontextmanager
async def running_server(config: RpcConfig | None = None, stats: ConnectionStats | None = None,
                         ) -> AsyncIterator[Running]:
    """serve_rpc in a nursery on a free port; cancelled when the block ends. `stats`, when
    given, follows the server's connections."""
    probe = Probe()
    config = config or RpcConfig(port=0)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(partial(serve_rpc, make_api(probe), config, stats=stats))
        yield Running(port, probe)
        nursery.cancel_scope.cancel()


def run(test: Callable[[], Awaitable[None]]) -> None:
    """Run an async test body under trio with an overall deadline."""

    async def main() -> None:
        with trio.fail_after(TEST_TIMEOUT_S):
            await test()

    trio.run(main)


def request(method: str, params: Any = None, request_id: Any = 1) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        body["params"] = params
    return body
