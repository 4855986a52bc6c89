"""JSON-RPC over WebSocket against a real server: calls, Substrate-shaped subscriptions, their
limits and cleanup, and bad input on a socket that keeps serving."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import trio
import trio.testing
import trio_websocket
from rpc_harness import Running, request, run, running_server, start_server

from gensyn_node.rpc import RpcConfig
from gensyn_node.rpc.client import RpcClientError, open_ws


async def raw_call(conn: trio_websocket.WebSocketConnection, body: Any) -> Any:
    await conn.send_message(body if isinstance(body, str) else json.dumps(body))
    return json.loads(await conn.get_message())


async def assert_ws_still_serving(conn: trio_websocket.WebSocketConnection) -> None:
    assert await raw_call(conn, request("test_add", [2, 3], "after")) == {"jsonrpc": "2.0", "result": 5, "id": "after"}


def open_raw(server: Running) -> Any:
    return trio_websocket.open_websocket_url(server.ws_url)


def test_ws_call_and_batch() -> None:
    async def body() -> None:
        async with running_server() as server, open_raw(server) as conn:
            assert await raw_call(conn, request("test_echo", ["v"])) == {
                "jsonrpc": "2.0", "result": {"value": "v", "extra": 0}, "id": 1,
            }
            replies = await raw_call(conn, [request("test_add", [1, 2], 1), request("test_add", [3, 4], 2)])
            assert sorted(reply["result"] for reply in replies) == [3, 7]

    run(body)


def test_ws_subscription_has_substrate_shape() -> None:
    async def body() -> None:
        async with running_server() as server, open_raw(server) as conn:
            reply = await raw_call(conn, request("test_subscribeCounter", [10, 3], 7))
            assert set(reply) == {"jsonrpc", "result", "id"} and reply["id"] == 7
            subscription_id = reply["result"]
            assert isinstance(subscription_id, str) and subscription_id
            for value in (10, 11, 12):
                assert json.loads(await conn.get_message()) == {
                    "jsonrpc": "2.0",
                    "method": "test_counter",
                    "params": {"subscription": subscription_id, "result": value},
                }
            # The stream ended on its own: unsubscribing now answers false.
            assert (await raw_call(conn, request("test_unsubscribeCounter", [subscription_id])))["result"] is False

    run(body)


def test_ws_stream_subscription_rejects_before_reply_and_streams_statuses() -> None:
    async def body() -> None:
        async with running_server() as server, open_ws(server.ws_url) as ws:
            with pytest.raises(RpcClientError) as caught:
                async with ws.subscribe("test_submitAndWatch", ["bad nonce"], "test_unwatch"):
                    pass
            assert (caught.value.code, caught.value.message, caught.value.data) == (
                1010, "Invalid Transaction", "bad nonce",
            )
            statuses = []
            async for status in ws.subscribe("test_submitAndWatch", [], "test_unwatch"):
                statuses.append(status)
                if status == "finalized":
                    break
            assert statuses == ["ready", "inBlock", "finalized"]

    run(body)


def test_ws_callback_subscription() -> None:
    async def body() -> None:
        async with running_server() as server, open_ws(server.ws_url) as ws:
            async with ws.subscribe("test_subscribeTicks", [3], "test_unsubscribeTicks") as ticks:
                received = [await ticks.__anext__() for _ in range(3)]
            assert received == [{"tick": 0}, {"tick": 1}, {"tick": 2}]

    run(body)


def test_ws_unsubscribe_cancels_the_stream() -> None:
    async def body() -> None:
        async with running_server() as server, open_raw(server) as conn:
            reply = await raw_call(conn, request("test_subscribeHold", ["a"]))
            subscription_id = reply["result"]
            first = json.loads(await conn.get_message())
            assert first["params"] == {"subscription": subscription_id, "result": "a:open"}
            # Another subscription kind's unsubscribe, or an unknown id, answers false.
            assert (await raw_call(conn, request("test_unsubscribeCounter", [subscription_id])))["result"] is False
            assert (await raw_call(conn, request("test_unsubscribeHold", ["nope"])))["result"] is False
            assert (await raw_call(conn, request("test_unsubscribeHold", [subscription_id])))["result"] is True
            await server.probe.closed_event("a").wait()
            assert (await raw_call(conn, request("test_unsubscribeHold", [subscription_id])))["result"] is False

    run(body)


def test_ws_too_many_subscriptions_then_room_after_unsubscribe() -> None:
    async def body() -> None:
        config = RpcConfig(port=0, max_subscriptions_per_connection=3)
        async with running_server(config) as server, open_ws(server.ws_url) as ws:
            held = [ws.subscribe("test_subscribeHold", [f"h{i}"], "test_unsubscribeHold") for i in range(3)]
            for subscription in held:
                await subscription.start()
            with pytest.raises(RpcClientError) as caught:
                await ws.subscribe("test_subscribeHold", ["h3"], "test_unsubscribeHold").start()
            assert caught.value.code == -32006
            assert await held[0].aclose() is True
            fourth = ws.subscribe("test_subscribeHold", ["h4"], "test_unsubscribeHold")
            await fourth.start()
            assert await fourth.__anext__() == "h4:open"
            assert await ws.call("test_add", 1, 1) == 2

    run(body)


def test_ws_close_cancels_its_subscriptions() -> None:
    async def body() -> None:
        async with running_server() as server:
            async with open_ws(server.ws_url) as ws:
                for name in ("c1", "c2"):
                    subscription = ws.subscribe("test_subscribeHold", [name], "test_unsubscribeHold")
                    assert await subscription.__anext__() == f"{name}:open"
            await server.probe.closed_event("c1").wait()
            await server.probe.closed_event("c2").wait()

    run(body)


def test_ws_bad_input_gets_errors_and_socket_keeps_serving() -> None:
    async def body() -> None:
        config = RpcConfig(port=0, max_request_bytes=1024)
        async with running_server(config) as server, open_raw(server) as conn:
            assert (await raw_call(conn, "{"))["error"]["code"] == -32700
            assert (await raw_call(conn, "[]"))["error"]["code"] == -32600
            assert (await raw_call(conn, "17"))["error"]["code"] == -32600
            assert (await raw_call(conn, request("test_nope")))["error"]["code"] == -32601
            assert (await raw_call(conn, request("test_add", ["x", 1])))["error"]["code"] == -32602
            assert (await raw_call(conn, request("test_fail")))["error"]["code"] == -32603
            assert (await raw_call(conn, request("author_rotateKeys")))["error"]["code"] == -32601
            oversize = await raw_call(conn, request("test_echo", ["é" * 1000]))
            assert oversize["error"]["code"] == -32007
            await assert_ws_still_serving(conn)

    run(body)


def test_ws_flood_is_rate_limited() -> None:
    async def body() -> None:
        config = RpcConfig(port=0, rate_limit_per_second=1.0, rate_limit_burst=3)
        async with running_server(config) as server, open_raw(server) as conn:
            codes = [
                (await raw_call(conn, request("test_add", [i, 1], i))).get("error", {}).get("code")
                for i in range(20)
            ]
            assert codes[:3] == [None] * 3 and codes.count(-32999) >= 15
            async with open_raw(server) as other:
                await assert_ws_still_serving(other)

    run(body)


def test_ws_broken_stream_is_logged_and_connection_survives(caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        async with running_server() as server, open_ws(server.ws_url) as ws:
            with caplog.at_level(logging.WARNING, logger="gensyn_node.rpc"):
                broken = ws.subscribe("test_subscribeBroken", [5], "test_unsubscribeBroken")
                assert await broken.__anext__() == 5
                assert await ws.call("test_add", 1, 1) == 2
                await trio.testing.wait_all_tasks_blocked()
            assert any("test_subscribeBroken" in record.getMessage() for record in caplog.records)

    run(body)


def test_ws_many_concurrent_calls_on_one_socket() -> None:
    async def body() -> None:
        async with running_server() as server, open_ws(server.ws_url) as ws:
            results: dict[int, int] = {}

            async def one(index: int) -> None:
                results[index] = await ws.call("test_add", index, 1)

            async with trio.open_nursery() as nursery:
                for index in range(200):
                    nursery.start_soon(one, index)
            assert results == {index: index + 1 for index in range(200)}

    run(body)


def test_server_shuts_down_while_a_client_has_stopped_reading() -> None:
    async def body() -> None:
        server_left = trio.Event()
        stuck = False
        client_stream: trio.SocketStream
        async with trio.open_nursery() as client_nursery:

            async def watchdog() -> None:
                # A deadline, not synchronisation: if the server is stuck, free it and fail.
                nonlocal stuck
                with trio.move_on_after(5):
                    await server_left.wait()
                    return
                stuck = True
                client_stream.socket.close()

            client_nursery.start_soon(watchdog)
            async with trio.open_nursery() as server_nursery:
                server = await start_server(server_nursery)
                client_stream = await trio.open_tcp_stream("127.0.0.1", server.port)
                conn = await trio_websocket.wrap_client_stream(client_nursery, client_stream, "127.0.0.1", "/")
                await conn.send_message(json.dumps(request("test_subscribeFlood", [65536])))
                # Everything blocked: the client no longer reads, the server's writes are stuck.
                await trio.testing.wait_all_tasks_blocked()
                server_nursery.cancel_scope.cancel()
            server_left.set()
            client_nursery.cancel_scope.cancel()
        assert not stuck, "the server waited for a client that stopped reading"

    run(body)
