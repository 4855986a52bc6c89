"""The RPC server's connection slots against real sockets: released the moment the peer closes,
reclaimed from connections that send no complete request in time or idle too long (sooner when
slots run low), a per-address cap, and WebSockets with live subscriptions kept through all of it."""

from __future__ import annotations

import json

import httpx
import pytest
import trio
import trio.testing
from rpc_harness import Running, request, run, running_server

from gensyn_node.rpc import RpcConfig
from gensyn_node.rpc.client import open_ws
from gensyn_node.rpc.limits import (
    CLOSED_HANDSHAKE,
    CLOSED_KEEP_ALIVE,
    CLOSED_LOW_SLOTS,
    REFUSED_FULL,
    REFUSED_PER_IP,
    ConnectionRegistry,
    ConnectionStats,
)

CALL = json.dumps(request("test_add", [1, 2])).encode()
POST = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"


async def connect(server: Running, source: str = "127.0.0.1") -> trio.SocketStream:
    """A raw TCP connection to the server from the loopback address `source`."""
    sock = trio.socket.socket()
    await sock.bind((source, 0))
    await sock.connect(("127.0.0.1", server.port))
    return trio.SocketStream(sock)


async def call_on(stream: trio.SocketStream) -> bytes:
    """One HTTP request on a keep-alive connection; the whole response."""
    await stream.send_all(POST % len(CALL) + CALL)
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
        chunk = await stream.receive_some(4096)
        if not chunk:
            break
        answer += chunk
    return answer


async def read_until_closed(stream: trio.SocketStream) -> bytes:
    """Everything the server sends until it closes the connection."""
    answer = b""
    while chunk := await stream.receive_some(4096):
        answer += chunk
    return answer


async def wait_for(predicate) -> None:  # type: ignore[no-untyped-def]
    """Let the server run until `predicate()` holds (the test's overall deadline bounds it)."""
    while not predicate():
        await trio.testing.wait_all_tasks_blocked()
        await trio.sleep(0.01)


async def served(server: Running, source: str = "127.0.0.1") -> int:
    """The HTTP status a new connection from `source` gets for one call."""
    transport = httpx.AsyncHTTPTransport(local_address=source)
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.post(server.http_url, content=CALL)
        if response.status_code == 200:
            assert response.json()["result"] == 3
        return response.status_code


# Timeouts far beyond the test's deadline: only a close can free a slot.
NEVER = {"handshake_timeout_s": 60.0, "keep_alive_timeout_s": 60.0, "low_slots_idle_s": 60.0}


def test_slots_are_released_the_moment_the_peer_closes() -> None:
    async def body() -> None:
        stats = ConnectionStats()
        config = RpcConfig(port=0, max_connections=4, **NEVER)
        async with running_server(config, stats) as server:
            silent = [await connect(server) for _ in range(2)]
            kept_alive = [await connect(server) for _ in range(2)]
            for stream in kept_alive:
                assert b" 200 " in await call_on(stream)
            await wait_for(lambda: stats.open == 4)
            assert await served(server) == 503
            for stream in silent + kept_alive:
                await stream.aclose()
            await wait_for(lambda: stats.open == 0)
            assert await served(server) == 200
            assert stats.refused[REFUSED_FULL] == 1
            assert not stats.closed_by_server

    run(body)


def test_connection_without_a_request_is_closed_after_the_handshake_timeout() -> None:
    async def body() -> None:
        stats = ConnectionStats()
        config = RpcConfig(port=0, handshake_timeout_s=0.3, keep_alive_timeout_s=60.0)
        async with running_server(config, stats) as server:
            silent = await connect(server)
            assert await read_until_closed(silent) == b""
            # A head trickled a byte at a time is cut off alike.
            trickle = await connect(server)
            with pytest.raises((trio.BrokenResourceError, trio.ClosedResourceError)):
                for byte in (POST % 10):
                    await trickle.send_all(bytes([byte]))
                    await trio.sleep(0.05)
                await read_until_closed(trickle)  # never reached if the server cut it off
                raise trio.BrokenResourceError
            await wait_for(lambda: stats.open == 0)
            assert stats.closed_by_server[CLOSED_HANDSHAKE] == 2
            assert await served(server) == 200

    run(body)


def test_slow_first_body_is_cut_off_at_the_handshake_timeout() -> None:
    async def body() -> None:
        stats = ConnectionStats()
        config = RpcConfig(port=0, handshake_timeout_s=0.3, request_body_timeout_s=60.0)
        async with running_server(config, stats) as server:
            stream = await connect(server)
            await stream.send_all(POST % 100 + b"{")
            answer = await read_until_closed(stream)
            assert answer.startswith(b"HTTP/1.1 408")
            assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == -32600
            await wait_for(lambda: stats.open == 0)
            assert stats.closed_by_server[CLOSED_HANDSHAKE] == 1

    run(body)


def test_idle_keep_alive_is_closed_after_the_keep_alive_timeout() -> None:
    async def body() -> None:
        stats = ConnectionStats()
        config = RpcConfig(port=0, keep_alive_timeout_s=0.3, handshake_timeout_s=60.0)
        async with running_server(config, stats) as server:
            stream = await connect(server)
            assert b" 200 " in await call_on(stream)
            assert b" 200 " in await call_on(stream)  # the connection is reused
            assert await read_until_closed(stream) == b""
            await wait_for(lambda: stats.open == 0)
            assert stats.closed_by_server == {CLOSED_KEEP_ALIVE: 1}

    run(body)


def test_idle_keep_alive_closes_sooner_when_slots_run_low_but_subscriptions_stay() -> None:
    async def body() -> None:
        stats = ConnectionStats()
        # 8 slots, low when at most 2 are free; the normal timeouts never fire here.
        config = RpcConfig(port=0, max_connections=8, handshake_timeout_s=60.0, keep_alive_timeout_s=60.0,
                           low_slots_idle_s=0.2)
        async with (running_server(config, stats) as server, open_ws(server.ws_url) as ws,
                    ws.subscribe("test_subscribeHold", ["kept"], "test_unsubscribeHold") as held):
            assert await held.__anext__() == "kept:open"
            idle = [await connect(server) for _ in range(5)]
            for stream in idle:
                assert b" 200 " in await call_on(stream)
            for stream in idle:  # 6 open, 2 free: the idle HTTP connections are closed
                assert await read_until_closed(stream) == b""
            await wait_for(lambda: stats.open == 1)
            assert stats.closed_by_server[CLOSED_LOW_SLOTS] == 5
            assert await ws.call("test_add", 2, 2) == 4
            assert not server.probe.closed_event("kept").is_set()

    run(body)


def test_one_address_cannot_take_every_slot() -> None:
    async def body() -> None:
        stats = ConnectionStats()
        config = RpcConfig(port=0, max_connections=10, max_connections_per_ip=3, **NEVER)
        async with running_server(config, stats) as server:
            flood = [await connect(server, "127.0.0.1") for _ in range(3)]
            await wait_for(lambda: stats.open == 3)
            refused = await connect(server, "127.0.0.1")
            await refused.send_all(POST % len(CALL) + CALL)
            answer = await read_until_closed(refused)
            assert answer.startswith(b"HTTP/1.1 503")
            error = json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
            assert error["code"] == -32009 and error["data"] == "Too many connections from this address"
            assert await served(server, "127.0.0.2") == 200
            assert stats.refused == {REFUSED_PER_IP: 1}
            for stream in flood:
                await stream.aclose()
            await wait_for(lambda: stats.open == 0)
            assert await served(server, "127.0.0.1") == 200

    run(body)


def test_remote_addresses_leave_slots_for_loopback() -> None:
    async def body() -> None:
        registry = ConnectionRegistry(20, None, None, max_per_ip=5)
        remote = [(f"10.0.0.{index // 5}", 1000 + index) for index in range(20)]  # 4 addresses, 5 each
        admitted = [client for client in remote if registry.refusal(client) is None and registry.open(client)]
        assert len(admitted) == 20 - registry.loopback_reserve == 18  # 2 of 20 slots kept for loopback
        assert registry.refusal(("10.0.9.9", 1)) == REFUSED_FULL
        assert registry.refusal(("127.0.0.1", 1)) is None
        assert registry.refusal(("::1", 1)) is None
        for client in admitted:
            registry.close(client)
        assert len(registry) == 0 and registry.refusal(("10.0.9.9", 1)) is None

    trio.run(body)
