"""Benchmark of the RPC edge under a connection flood, against a real `gensyn-node` process
(dev chain, default limits: 100 connections, 16 per address, 5 s handshake timeout):

- idle flood: F sockets from 127.0.0.1 that connect and send nothing; then fresh clients from
  127.0.0.2 (another address) and from 127.0.0.1 each try one call: served and refused counts,
  and what the node's Prometheus counters say about the flood;
- slots back: the flooder holds every slot its address may have (keep-alive connections, each
  after one call, so no timeout is near), a fresh 127.0.0.1 client is refused, the flooder
  closes; the time until a 127.0.0.1 client is served again, polled every 5 ms;
- distributed idle flood: 10 addresses each hold their 16 silent sockets (160 > the server's
  100): how many are refused as over the server's cap, and how long until a fresh address is
  served (idle connections are closed after 1 s once slots run low, instead of 5 s);
- baseline, same run: one call on a fresh connection to the idle node (connect + request).

    .venv/bin/python scripts/bench/rpc_flood.py [--flood 300] [--probes 20] [--rounds 5]

Prints one JSON object per figure.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.integration.nodeproc import NodeProcess

CALL = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "system_health"}).encode()
REQUEST = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
    len(CALL), CALL)


def connect(port: int, source: str) -> socket.socket:
    sock = socket.socket()
    sock.settimeout(10)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def read_response(sock: socket.socket) -> bytes:
    """One HTTP response (head and content-length body), or what came before the server closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def one_call(port: int, source: str) -> int:
    """The HTTP status of one call on a fresh connection from `source` (0: closed unanswered)."""
    try:
        with connect(port, source) as sock:
            sock.sendall(REQUEST)
            answer = read_response(sock)
    except OSError:
        return 0
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def scrape(node: NodeProcess) -> dict[str, float]:
    import httpx

    text = httpx.get(f"http://127.0.0.1:{node.metrics_port}/metrics", timeout=10).text
    figures = {}
    for line in text.splitlines():
        if line.startswith("gensyn_rpc_connections") and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            figures[name] = float(value)
    return figures


def bench_idle_flood(node: NodeProcess, flood: int, probes: int) -> dict:
    before = scrape(node)
    sockets = [connect(node.rpc_port, "127.0.0.1") for _ in range(flood)]
    try:
        started = time.perf_counter()
        other = [one_call(node.rpc_port, "127.0.0.2") for _ in range(probes)]
        same = [one_call(node.rpc_port, "127.0.0.1") for _ in range(probes)]
        probe_s = time.perf_counter() - started
        after = scrape(node)
    finally:
        for sock in sockets:
            sock.close()
    def delta(name: str) -> int:
        return int(after.get(name, 0) - before.get(name, 0))
    return {
        "figure": "idle_flood", "flood_sockets": flood, "probes_per_address": probes,
        "other_address_served": other.count(200), "other_address_refused": probes - other.count(200),
        "flood_address_served": same.count(200), "flood_address_refused": probes - same.count(200),
        "refused_per_ip": delta('gensyn_rpc_connections_refused_total{reason="per_ip"}'),
        "refused_max_connections": delta('gensyn_rpc_connections_refused_total{reason="max_connections"}'),
        "open_during_flood": int(after.get("gensyn_rpc_connections_open", 0)),
        "probe_s": round(probe_s, 3),
    }


def bench_distributed_flood(node: NodeProcess, addresses: int, per_ip: int) -> dict:
    before = scrape(node)
    started = time.perf_counter()
    sockets = [connect(node.rpc_port, f"127.0.1.{index + 1}") for index in range(addresses) for _ in range(per_ip)]
    try:
        flooded = time.perf_counter()
        attempts = 1
        while one_call(node.rpc_port, "127.0.2.1") != 200:
            attempts += 1
            time.sleep(0.01)
        served_after = time.perf_counter() - flooded
        after = scrape(node)
    finally:
        for sock in sockets:
            sock.close()
    return {
        "figure": "distributed_idle_flood_fresh_client_served_after_s", "value": round(served_after, 3),
        "attempts": attempts, "flood_sockets": len(sockets), "addresses": addresses,
        "flood_connect_s": round(flooded - started, 3),
        "refused_max_connections": int(after.get('gensyn_rpc_connections_refused_total{reason="max_connections"}', 0)
                                       - before.get('gensyn_rpc_connections_refused_total{reason="max_connections"}', 0)),
        "closed_idle_low_slots": int(after.get('gensyn_rpc_connections_closed_by_server_total{reason="idle_low_slots"}', 0)
                                     - before.get('gensyn_rpc_connections_closed_by_server_total{reason="idle_low_slots"}', 0)),
        "unit": "s",
    }


def bench_slots_back(node: NodeProcess, per_ip: int) -> tuple[float, int]:
    """Seconds from the flooder's last close to the first served call from its address."""
    held = []
    for _ in range(per_ip):
        sock = connect(node.rpc_port, "127.0.0.1")
        sock.sendall(REQUEST)
        if b" 200 " not in read_response(sock):
            raise RuntimeError("a flood connection was not served")
        held.append(sock)
    refused = one_call(node.rpc_port, "127.0.0.1")
    for sock in held:
        sock.close()
    closed = time.perf_counter()
    while one_call(node.rpc_port, "127.0.0.1") != 200:
        time.sleep(0.005)
    return time.perf_counter() - closed, refused


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flood", type=int, default=300)
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-rpc-flood-") as tmp:
        node = NodeProcess(Path(tmp) / "node").start(timeout=60)
        try:
            baseline = []
            for _ in range(20):
                started = time.perf_counter()
                if one_call(node.rpc_port, "127.0.0.1") != 200:
                    raise RuntimeError("the idle node did not serve a call")
                baseline.append(time.perf_counter() - started)
            print(json.dumps(bench_idle_flood(node, args.flood, args.probes)))
            per_ip = int(scrape(node)['gensyn_rpc_connections_limit{scope="per_ip"}'])
            print(json.dumps(bench_distributed_flood(node, 10, per_ip)))
            rounds = [bench_slots_back(node, per_ip) for _ in range(args.rounds)]
            back = [seconds for seconds, _ in rounds]
            base = statistics.median(baseline)
            print(json.dumps({
                "figure": "slots_back_after_flood_closes_s", "value": round(max(back), 4),
                "median": round(statistics.median(back), 4), "rounds": args.rounds,
                "refused_while_held": [status for _, status in rounds], "held_connections": per_ip,
                "baseline": round(base, 4), "ratio": round(max(back) / base, 2), "unit": "s",
                "baseline_is": "one call on a fresh connection to the idle node (median of 20), same run",
            }))
        finally:
            node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
