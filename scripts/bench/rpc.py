"""Benchmark of the JSON-RPC server: `system_health`-like calls per second over one keep-alive
HTTP connection and over one WebSocket (one call in flight, and 32 in flight), each next to a
baseline measured in the same run: a bare hypercorn trio server with a raw ASGI app that
answers the same bytes without any JSON-RPC work. Servers run in their own processes; the two
servers are measured in alternating rounds and each figure is the best round, because on a
shared 2-core machine other processes' load, not the server, decides the worst rounds.

    .venv/bin/python scripts/bench/rpc.py [--calls 2000] [--rounds 3]

Prints one JSON object per figure: {"figure", "value", "baseline", "ratio", "unit"}. The
calls/s figures depend on the client and on whatever else runs; the server_cpu_us_per_call
figures (user+system CPU of the server process per call, from /proc) much less so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

import httpx
import trio
import trio_websocket

HEALTH = {"peers": 0, "isSyncing": False, "shouldHavePeers": False}


async def _serve_rpc() -> None:
    from gensyn_node.rpc import RpcApi, RpcConfig, serve_rpc

    api = RpcApi()

    async def system_health() -> dict[str, Any]:
        return HEALTH

    api.method("system_health", system_health)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_rpc, api, RpcConfig(port=0, rate_limit_per_second=None))
        sys.stdout.write(f"{port}\n")
        sys.stdout.flush()


async def _serve_baseline() -> None:
    from hypercorn.config import Config
    from hypercorn.trio import serve

    reply_for = json.JSONEncoder(separators=(",", ":")).encode

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
        elif scope["type"] == "http":
            body = (await receive())["body"]
            out = reply_for({"jsonrpc": "2.0", "result": HEALTH, "id": json.loads(body)["id"]}).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]})
            await send({"type": "http.response.body", "body": out})
        elif scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            while True:
                message = await receive()
                if message["type"] != "websocket.receive":
                    return
                out = reply_for({"jsonrpc": "2.0", "result": HEALTH, "id": json.loads(message["text"])["id"]})
                await send({"type": "websocket.send", "text": out})

    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.keep_alive_max_requests = 2**62
    config.accesslog = None
    config.errorlog = None
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(serve, app, config)
        sys.stdout.write(binds[0].rsplit(":", 1)[1] + "\n")
        sys.stdout.flush()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _bench_http(port: int, calls: int, pid: int) -> tuple[float, float]:
    url = f"http://127.0.0.1:{port}/"
    with httpx.Client(headers={"content-type": "application/json"}) as client:
        for index in range(200):  # warm up, and open the one connection
            client.post(url, content=json.dumps({"jsonrpc": "2.0", "id": index, "method": "system_health"}))
        started, cpu = time.perf_counter(), _cpu_seconds(pid)
        for index in range(calls):
            response = client.post(url, content=json.dumps({"jsonrpc": "2.0", "id": index, "method": "system_health"}))
            if response.json()["result"] != HEALTH:
                raise RuntimeError(f"unexpected reply {response.text}")
        return calls / (time.perf_counter() - started), (_cpu_seconds(pid) - cpu) / calls


async def _bench_ws(port: int, calls: int, in_flight: int, pid: int) -> tuple[float, float]:
    async with trio_websocket.open_websocket_url(f"ws://127.0.0.1:{port}") as conn:
        for index in range(200):
            await conn.send_message(json.dumps({"jsonrpc": "2.0", "id": index, "method": "system_health"}))
            await conn.get_message()
        started, cpu = time.perf_counter(), _cpu_seconds(pid)
        sent = received = 0
        while received < calls:
            while sent < calls and sent - received < in_flight:
                await conn.send_message(json.dumps({"jsonrpc": "2.0", "id": sent, "method": "system_health"}))
                sent += 1
            if json.loads(await conn.get_message())["result"] != HEALTH:
                raise RuntimeError("unexpected reply")
            received += 1
        return calls / (time.perf_counter() - started), (_cpu_seconds(pid) - cpu) / calls


def _measure(kind: str, calls: int) -> dict[str, tuple[float, float]]:
    server = subprocess.Popen([sys.executable, __file__, "--serve", kind], stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline() if server.stdout else ""
        if not line.strip().isdigit():
            raise RuntimeError(f"{kind} server did not start")
        port = int(line)
        return {
            "http": _bench_http(port, calls, server.pid),
            "ws": trio.run(_bench_ws, port, calls * 2, 1, server.pid),
            "ws_pipelined": trio.run(_bench_ws, port, calls * 2, 32, server.pid),
        }
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", choices=("rpc", "baseline"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "rpc":
        trio.run(_serve_rpc)
        return 0
    if args.serve == "baseline":
        trio.run(_serve_baseline)
        return 0
    # Per path: best calls/s and lowest server CPU per call over the rounds.
    baseline: dict[str, tuple[float, float]] = {}
    ours: dict[str, tuple[float, float]] = {}
    for _ in range(args.rounds):
        for best, kind in ((baseline, "baseline"), (ours, "rpc")):
            for key, (rate, cpu) in _measure(kind, args.calls).items():
                old_rate, old_cpu = best.get(key, (0.0, float("inf")))
                best[key] = (max(old_rate, rate), min(old_cpu, cpu))
    for key, name in (("http", "http"), ("ws", "ws"), ("ws_pipelined", "ws_32_in_flight")):
        (rate, cpu), (base_rate, base_cpu) = ours[key], baseline[key]
        print(json.dumps({
            "figure": f"calls_per_s_{name}", "value": round(rate), "baseline": round(base_rate),
            "ratio": round(rate / base_rate, 3), "unit": "calls/s", "rounds": args.rounds,
        }))
        print(json.dumps({
            "figure": f"server_cpu_us_per_call_{name}", "value": round(cpu * 1e6), "baseline": round(base_cpu * 1e6),
            "ratio": round(cpu / base_cpu, 3) if base_cpu else None, "unit": "us", "rounds": args.rounds,
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
