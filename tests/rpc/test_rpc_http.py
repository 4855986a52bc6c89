"""JSON-RPC over HTTP against a real server on a real socket: success, batches, every error
code, the limits, and after each bad input a good request still answered."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from rpc_harness import Running, request, run, running_server

from gensyn_node.rpc import RpcConfig, RpcPortBusy, serve_rpc
from gensyn_node.rpc.api import RpcApi
from gensyn_node.rpc.client import RpcConnectionError, open_ws


async def post(client: httpx.AsyncClient, server: Running, body: Any) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await client.post(server.http_url, content=raw)
    assert response.status_code == 200, response.text
    return response.json()


async def assert_still_serving(client: httpx.AsyncClient, server: Running) -> None:
    reply = await post(client, server, request("test_add", [2, 3], "after"))
    assert reply == {"jsonrpc": "2.0", "result": 5, "id": "after"}


def test_http_call_success_positional_and_named() -> None:
    async def body() -> None:
        async with running_server() as server, httpx.AsyncClient() as client:
            assert await post(client, server, request("test_echo", ["x"])) == {
                "jsonrpc": "2.0", "result": {"value": "x", "extra": 0}, "id": 1,
            }
            reply = await post(client, server, request("test_echo", {"value": [1], "extra": 7}, "a"))
            assert reply == {"jsonrpc": "2.0", "result": {"value": [1], "extra": 7}, "id": "a"}
            methods = (await post(client, server, request("rpc_methods")))["result"]["methods"]
            assert methods == sorted(methods)
            assert {"rpc_methods", "test_echo", "test_subscribeCounter", "test_unsubscribeCounter"} <= set(methods)
            assert ("test_echo", pytest.approx(0.0, abs=1.0)) in server.probe.calls

    run(body)


def test_http_batch_answers_each_request_and_skips_notifications() -> None:
    async def body() -> None:
        async with running_server(RpcConfig(port=0, max_batch_len=3)) as server, httpx.AsyncClient() as client:
            batch = [
                request("test_add", [1, 2], 1),
                {"jsonrpc": "2.0", "method": "test_add", "params": [1, 1]},  # notification
                request("test_nope", [], 2),
            ]
            replies = await post(client, server, batch)
            assert replies == [
                {"jsonrpc": "2.0", "result": 3, "id": 1},
                {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found", "data": "test_nope"},
                 "id": 2},
            ]
            empty = await post(client, server, [])
            assert empty["error"]["code"] == -32600
            too_big = await post(client, server, [request("test_add", [1, 1], i) for i in range(4)])
            assert too_big["error"]["code"] == -32010
            response = await client.post(server.http_url, json=[{"jsonrpc": "2.0", "method": "test_add",
                                                                  "params": [1, 1]}])
            assert response.status_code == 200 and response.content == b""
            await assert_still_serving(client, server)

    run(body)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{", -32700),
        (b"\xff\xfe", -32700),
        (b"[" * 100_000 + b"]" * 100_000, -32700),
        (b"3", -32600),
        (b'"text"', -32600),
        (b'{"jsonrpc":"1.0","id":1,"method":"test_add","params":[1,2]}', -32600),
        (b'{"jsonrpc":"2.0","id":1,"params":[1,2]}', -32600),
        (b'{"jsonrpc":"2.0","id":{"a":1},"method":"test_add","params":[1,2]}', -32600),
        (b'{"jsonrpc":"2.0","id":1,"method":"test_nope"}', -32601),
    ],
)
def test_http_malformed_request_gets_its_code(raw: bytes, code: int) -> None:
    async def body() -> None:
        async with running_server() as server, httpx.AsyncClient() as client:
            reply = await post(client, server, raw)
            assert reply["jsonrpc"] == "2.0" and reply["error"]["code"] == code
            await assert_still_serving(client, server)

    run(body)


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ([1], "expected 2 param(s), got 1"),
        ([1, 2, 3], "expected 2 param(s), got 3"),
        ([1, "2"], "param 1 (b): expected int, got str"),
        ([True, 2], "param 0 (a): expected int, got bool"),
        ({"a": 1}, "missing required param: b"),
        ({"a": 1, "b": 2, "c": 3}, "unknown param name(s): c"),
        ("1,2", "params must be an array or an object"),
    ],
)
def test_http_wrong_params_get_invalid_params_with_reason(params: Any, reason: str) -> None:
    async def body() -> None:
        async with running_server() as server, httpx.AsyncClient() as client:
            reply = await post(client, server, request("test_add", params))
            assert reply["error"] == {"code": -32602, "message": "Invalid params", "data": reason}
            await assert_still_serving(client, server)

    run(body)


def test_http_handler_errors(caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        async with running_server() as server, httpx.AsyncClient() as client:
            with caplog.at_level(logging.WARNING, logger="gensyn_node.rpc"):
                reply = await post(client, server, request("test_fail"))
            assert reply["error"] == {"code": -32603, "message": "Internal error"}
            assert any("test_fail" in r.getMessage() and r.exc_info for r in caplog.records)
            reply = await post(client, server, request("test_notJson"))
            assert reply["error"]["code"] == -32603
            for method in ("test_reject", "test_rejectInNursery"):
                reply = await post(client, server, request(method, ["Inability to pay some fees"]))
                assert reply["error"] == {
                    "code": 1010, "message": "Invalid Transaction", "data": "Inability to pay some fees",
                }
            await assert_still_serving(client, server)

    run(body)


def test_http_oversize_body_gets_413() -> None:
    async def body() -> None:
        config = RpcConfig(port=0, max_request_bytes=1024)
        async with running_server(config) as server, httpx.AsyncClient() as client:
            big = json.dumps(request("test_echo", ["x" * 2000])).encode()
            response = await client.post(server.http_url, content=big)
            assert response.status_code == 413
            assert response.json()["error"]["code"] == -32007

            async def chunks() -> AsyncIterator[bytes]:  # no content-length: chunked encoding
                for start in range(0, len(big), 100):
                    yield big[start:start + 100]

            response = await client.post(server.http_url, content=chunks())
            assert response.status_code == 413
            assert response.json()["error"]["code"] == -32007
            await assert_still_serving(client, server)

    run(body)


def test_http_trickled_body_gets_408_and_frees_the_connection() -> None:
    async def body() -> None:
        config = RpcConfig(port=0, request_body_timeout_s=0.3)
        async with running_server(config) as server:
            stream = await trio.open_tcp_stream("127.0.0.1", server.port)
            await stream.send_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{")
            answer = b""
            while chunk := await stream.receive_some(4096):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 408")
            assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == -32600
            async with httpx.AsyncClient() as client:
                await assert_still_serving(client, server)

    run(body)


def test_http_flood_is_rate_limited_per_connection() -> None:
    async def body() -> None:
        config = RpcConfig(port=0, rate_limit_per_second=1.0, rate_limit_burst=5)
        async with running_server(config) as server, httpx.AsyncClient() as flooder:
            codes = []
            for index in range(40):
                reply = await post(flooder, server, request("test_add", [index, 1], index))
                codes.append(reply.get("error", {}).get("code"))
            assert codes[:5] == [None] * 5
            assert codes.count(-32999) >= 30
            batch = await post(flooder, server, [request("test_add", [1, 1], i) for i in range(3)])
            assert all(reply["error"]["code"] == -32999 for reply in batch)
            async with httpx.AsyncClient() as other:  # another connection is served
                await assert_still_serving(other, server)

    run(body)


def test_http_connection_limit_answers_503_then_recovers() -> None:
    async def body() -> None:
        config = RpcConfig(port=0, max_connections=2)
        async with running_server(config) as server:
            async with open_ws(server.ws_url) as ws_one, open_ws(server.ws_url) as ws_two:
                assert await ws_one.call("test_add", 1, 1) == 2
                assert await ws_two.call("test_add", 1, 2) == 3
                async with httpx.AsyncClient() as client:
                    response = await client.post(server.http_url, json=request("test_add", [1, 1]))
                    assert response.status_code == 503
                    assert response.json()["error"]["code"] == -32009
                with pytest.raises(RpcConnectionError, match="503"):
                    async with open_ws(server.ws_url):
                        pass
            async with httpx.AsyncClient() as client:
                while True:  # the server notices the closed sockets on its next turn
                    await trio.testing.wait_all_tasks_blocked()
                    response = await client.post(server.http_url, json=request("test_add", [1, 1]))
                    if response.status_code == 200:
                        break
                assert response.json()["result"] == 2

    run(body)


def test_http_unsafe_method_refused_unless_unsafe_mode() -> None:
    async def body() -> None:
        async with running_server() as server, httpx.AsyncClient() as client:
            reply = await post(client, server, request("author_rotateKeys"))
            assert reply["error"] == {"code": -32601, "message": "RPC call is unsafe to be called externally"}
            await assert_still_serving(client, server)
        unsafe = RpcConfig(port=0, rpc_methods_mode="unsafe")
        async with running_server(unsafe) as server, httpx.AsyncClient() as client:
            assert (await post(client, server, request("author_rotateKeys")))["result"] == "0x1234"

    run(body)


def test_http_subscription_refused() -> None:
    async def body() -> None:
        async with running_server() as server, httpx.AsyncClient() as client:
            for method, params in (("test_subscribeCounter", [0, 3]), ("test_unsubscribeCounter", ["ab"])):
                reply = await post(client, server, request(method, params))
                assert reply["error"]["code"] == -32601
                assert "WebSocket" in reply["error"]["data"]
            await assert_still_serving(client, server)

    run(body)


def test_http_get_is_not_allowed() -> None:
    async def body() -> None:
        async with running_server() as server, httpx.AsyncClient() as client:
            response = await client.get(server.http_url)
            assert response.status_code == 405
            await assert_still_serving(client, server)

    run(body)


def test_busy_port_raises_rpc_port_busy() -> None:
    async def body() -> None:
        async with running_server() as server:
            with pytest.raises(RpcPortBusy):
                await serve_rpc(RpcApi(), RpcConfig(port=server.port))
        # A listener with SO_REUSEPORT (as py-libp2p opens them) must not be shared silently.
        with socket.socket() as other:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            other.bind(("127.0.0.1", 0))
            other.listen()
            with pytest.raises(RpcPortBusy):
                await serve_rpc(RpcApi(), RpcConfig(port=other.getsockname()[1]))

    run(body)


def test_rpc_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError):
        RpcConfig(rpc_methods_mode="everything")
    with pytest.raises(ValueError):
        RpcConfig(max_connections=0)
    assert RpcConfig(external=True).bind_host == "0.0.0.0"
    assert RpcConfig(rpc_methods_mode="auto").allows_unsafe
    assert not RpcConfig(rpc_methods_mode="auto", external=True).allows_unsafe
