"""A real `gensyn-node` process (default RPC limits: 100 connections, 16 per address, 5 s to
send a first request) under connection floods from real sockets on loopback, where 127.0.0.x
are different addresses: an idle flood from one address leaves another served, slots come back
as soon as a flood closes, a slow-body client is cut off, and a live subscription survives it all."""

from __future__ import annotations

import json
import time

import httpx
import pytest
import trio

from gensyn_node.rpc.client import open_ws
from tests.integration.nodeproc import NodeProcess

PER_IP = 16  # the default of --rpc-max-connections-per-ip
KEEP_ALIVE_S = 15.0  # the server's keep-alive timeout: a slot freed sooner was freed by the close
CALL = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "system_health"}).encode()
POST = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"


@pytest.fixture
def node(tmp_path):
    proc = NodeProcess(tmp_path / "alice").start()
    yield proc
    proc.stop()


def metrics(node: NodeProcess) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{node.metrics_port}/metrics", timeout=10).text
    return {name: float(value) for name, value in (line.rsplit(" ", 1) for line in text.splitlines()
                                                   if line.startswith("gensyn_rpc_connections"))}


async def connect(node: NodeProcess, source: str) -> trio.SocketStream:
    sock = trio.socket.socket()
    await sock.bind((source, 0))
    await sock.connect(("127.0.0.1", node.rpc_port))
    return trio.SocketStream(sock)


async def status_of_call(node: NodeProcess, source: str) -> int:
    """The HTTP status a new connection from `source` gets for one call."""
    async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address=source), timeout=30) as client:
        response = await client.post(node.url, content=CALL)
    if response.status_code == 200:
        assert response.json()["result"]["isSyncing"] is False
    return response.status_code


async def read_until_closed(stream: trio.SocketStream) -> bytes:
    answer = b""
    while chunk := await stream.receive_some(4096):
        answer += chunk
    return answer


async def call_and_hold(node: NodeProcess, source: str) -> trio.SocketStream:
    """A keep-alive connection that made one call and now idles (no timeout near for 15 s)."""
    stream = await connect(node, source)
    await stream.send_all(POST % len(CALL) + CALL)
    answer = b""
    while not answer.endswith(b"}"):
        answer += await stream.receive_some(4096)
    assert answer.startswith(b"HTTP/1.1 200")
    return stream


def test_rpc_floods_leave_other_clients_served_and_subscriptions_alive(node):
    async def body() -> None:
        async with open_ws(f"ws://127.0.0.1:{node.rpc_port}") as ws, \
                ws.subscribe("chain_subscribeNewHeads", [], "chain_unsubscribeNewHeads") as heads:
            first_head = int((await heads.__anext__())["number"], 16)

            # An idle flood from 127.0.0.2: 99 sockets that connect and send nothing.
            flood = [await connect(node, "127.0.0.2") for _ in range(99)]
            assert await status_of_call(node, "127.0.0.3") == 200  # another address is served
            during = metrics(node)
            assert during['gensyn_rpc_connections_refused_total{reason="per_ip"}'] >= 1
            assert during["gensyn_rpc_connections_open"] <= PER_IP + 2  # the flood's share, the ws, a probe
            for stream in flood:
                await stream.aclose()

            # Slots come back the moment a flood closes: 127.0.0.4 holds its whole share with
            # keep-alive connections, is refused one more, closes them, and is served again long
            # before any timeout would have freed them.
            held = [await call_and_hold(node, "127.0.0.4") for _ in range(PER_IP)]
            assert await status_of_call(node, "127.0.0.4") == 503
            for stream in held:
                await stream.aclose()
            closed = time.monotonic()
            while await status_of_call(node, "127.0.0.4") != 200:
                await trio.sleep(0.01)
            assert time.monotonic() - closed < KEEP_ALIVE_S / 2

            # A client that trickles its first body is cut off at the handshake timeout.
            slow = await connect(node, "127.0.0.5")
            await slow.send_all(POST % 100 + b"{")
            with trio.move_on_after(30) as waited:
                async with trio.open_nursery() as nursery:
                    async def trickle() -> None:
                        try:
                            while True:
                                await trio.sleep(0.5)
                                await slow.send_all(b" ")
                        except (trio.BrokenResourceError, trio.ClosedResourceError):
                            pass

                    nursery.start_soon(trickle)
                    answer = await read_until_closed(slow)
                    nursery.cancel_scope.cancel()
            assert not waited.cancelled_caught, "the slow client was not cut off"
            assert answer.startswith(b"HTTP/1.1 408")
            after = metrics(node)
            assert after['gensyn_rpc_connections_closed_by_server_total{reason="handshake_timeout"}'] >= 1

            # Through all of it the subscription lived: it still brings new heads.
            while (number := int((await heads.__anext__())["number"], 16)) <= first_head:
                pass
            assert number > first_head
            assert (await ws.call("system_health"))["isSyncing"] is False
        final = metrics(node)
        assert final['gensyn_rpc_connections_limit{scope="per_ip"}'] == PER_IP
        assert final['gensyn_rpc_connections_limit{scope="server"}'] == 100

    trio.run(body)
