"""The client the CLI uses: RpcClient (sync, keep-alive HTTP) against a real server."""

from __future__ import annotations

import socket

import pytest
import trio
from rpc_harness import run, running_server

from gensyn_node.rpc.client import RpcClient, RpcClientError, RpcConnectionError


def test_rpc_client_call_error_and_batch() -> None:
    async def body() -> None:
        async with running_server() as server:

            def use_client() -> None:
                with RpcClient(server.http_url) as rpc:
                    assert rpc.call("test_add", 2, 3) == 5
                    assert rpc.call("test_echo", "x") == {"value": "x", "extra": 0}
                    with pytest.raises(RpcClientError) as caught:
                        rpc.call("test_reject", "Transaction is outdated")
                    assert (caught.value.code, caught.value.data) == (1010, "Transaction is outdated")
                    results = rpc.batch([("test_add", [1, 1]), ("test_nope", []), ("test_add", [2, 2])])
                    assert results[0] == 2 and results[2] == 4
                    assert isinstance(results[1], RpcClientError) and results[1].code == -32601
                    assert rpc.call("test_add", 5, 5) == 10  # ids continue after a batch

            await trio.to_thread.run_sync(use_client)

    run(body)


def test_rpc_client_unreachable_node_raises_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with RpcClient(f"http://127.0.0.1:{port}/", timeout=5) as rpc, pytest.raises(RpcConnectionError):
        rpc.call("system_health")
