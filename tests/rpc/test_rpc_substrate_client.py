"""The server's wire shapes as py-substrate-interface's own transports read them (its WebSocket
transport matches notifications on `params.subscription`, and raises on `error`)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from rpc_harness import request, run, running_server

websocket_transport = pytest.importorskip("substrateinterface.transport.websocket")
http_transport = pytest.importorskip("substrateinterface.transport.http")
exceptions = pytest.importorskip("substrateinterface.exceptions")


def test_substrate_interface_transports_call_subscribe_and_see_errors() -> None:
    async def body() -> None:
        async with running_server() as server:

            def use_transports() -> None:
                ws = websocket_transport.WebsocketTransport(url=server.ws_url)
                try:
                    assert ws.rpc_request(request("test_add", [1, 2], 1))["result"] == 3
                    seen: list[Any] = []

                    def on_update(message: dict[str, Any], update_nr: int, subscription_id: str) -> Any:
                        seen.append((update_nr, message["params"]["result"]))
                        return message["params"]["result"] if message["params"]["result"] == "finalized" else None

                    assert ws.rpc_request(request("test_submitAndWatch", [], 2), on_update) == "finalized"
                    assert seen == [(0, "ready"), (1, "inBlock"), (2, "finalized")]
                    with pytest.raises(exceptions.SubstrateRequestException) as caught:
                        ws.rpc_request(request("test_submitAndWatch", ["Transaction is outdated"], 3), on_update)
                    assert caught.value.args[0]["code"] == 1010
                finally:
                    ws.close()
                http = http_transport.HttpTransport(url=server.http_url)
                assert http.rpc_request(request("test_echo", ["h"], 4))["result"] == {"value": "h", "extra": 0}
                with pytest.raises(exceptions.SubstrateRequestException):
                    http.rpc_request(request("test_reject", ["bad"], 5))

            await trio.to_thread.run_sync(use_transports)

    run(body)
