"""Benchmark of a real `gensyn-node` process (a dev chain with extra endowed accounts):

- time from process start to the first authored block;
- `system_health` calls per second over one keep-alive connection, next to a bare hypercorn
  server answering the same bytes (scripts/bench/rpc.py's baseline) in the same run;
- signed transfers accepted per second through `author_submitExtrinsic` from 4 concurrent
  client processes (each one WebSocket, 16 requests in flight, as wallets pipeline), and the
  fraction included within 2 slots of their submission;
- the node's RSS after N blocks (a second node with 100 ms slots), and whether torch is loaded.

    .venv/bin/python scripts/bench/node.py [--per-client 600] [--rss-blocks 1000]

Prints one JSON object per figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import trio
import trio_websocket

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts" / "bench"))

from gensyn_node.chain_spec import ChainSpec, dev_spec
from gensyn_node.keyring import keypair_from_seed
from runtime.crypto import ED25519
from tests.integration.nodeproc import free_port

CLIENTS = 4


def client_keys(client: int, count: int):  # type: ignore[no-untyped-def]
    return [keypair_from_seed((client * 100_000 + i + 1).to_bytes(32, "little"), ED25519) for i in range(count)]


def bench_spec(per_client: int, slot_ms: int) -> ChainSpec:
    spec = dev_spec(1, slot_ms=slot_ms)
    for client in range(CLIENTS):
        for key in client_keys(client, per_client):
            spec.genesis["balances"].append([key.address, str(10**18)])
    return spec


def start_node(spec: ChainSpec, workdir: Path) -> tuple[subprocess.Popen, str, float]:
    workdir.mkdir(parents=True, exist_ok=True)
    spec_path = workdir / "spec.json"
    spec_path.write_text(spec.to_json())
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "gensyn_node.cli", "run", "--chain", str(spec_path),
                             "--base-path", str(workdir / "node"), "--alice", "--rpc-port", str(port),
                             "--no-prometheus", "--rpc-rate-limit", "1000000", "--port", "0"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, f"http://127.0.0.1:{port}", started


def call(client: httpx.Client, url: str, method: str, *params):  # type: ignore[no-untyped-def]
    reply = client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).json()
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


def wait_first_block(url: str, started: float) -> float:
    with httpx.Client() as client:
        while True:
            try:
                if int(call(client, url, "chain_getHeader")["number"], 16) >= 1:
                    return time.perf_counter() - started
            except (httpx.HTTPError, RuntimeError):
                pass
            time.sleep(0.01)


def bench_health(url: str, calls: int, pid: int) -> dict:
    from rpc import _bench_http, _measure  # scripts/bench/rpc.py

    port = int(url.rsplit(":", 1)[1])
    ours = max(_bench_http(port, calls, pid)[0] for _ in range(2))
    baseline = _measure("baseline", calls)["http"][0]
    return {"figure": "system_health_calls_per_s", "value": round(ours), "baseline": round(baseline),
            "ratio": round(ours / baseline, 3), "target": 1000, "unit": "calls/s",
            "baseline_is": "bare hypercorn ASGI server answering the same bytes, same run"}


def run_client(url: str, client: int, per_client: int) -> None:
    """Client process: sign every transfer first, wait for 'go', submit, report JSON."""
    from gensyn_node.client import NodeClient

    node = NodeClient(url)
    genesis_hash = node.genesis_hash
    from runtime.extrinsic import encode_signed, signing_payload
    from runtime.types import Era

    version = node.runtime_version()
    keys = client_keys(client, per_client)
    dest = client_keys((client + 1) % CLIENTS, 1)[0].public
    call_bytes = node.encode_call("Balances", "transfer_keep_alive", {"dest": ("Id", dest), "value": 10**12})
    signed = []
    for key in keys:
        payload = signing_payload(call_bytes, Era.encode(None), 0, 0, version["specVersion"],
                                  version["transactionVersion"], genesis_hash, genesis_hash)
        signed.append("0x" + encode_signed(call_bytes, key.public, ED25519, key.sign(payload), None, 0, 0).hex())
    print("signed", flush=True)
    sys.stdin.readline()
    result = trio.run(_submit_ws, url.replace("http://", "ws://"), signed)
    print(json.dumps(result), flush=True)


async def _submit_ws(ws_url: str, signed: list[str], in_flight: int = 16) -> dict:
    """Submit over one WebSocket with up to `in_flight` requests outstanding, as wallets do."""
    submitted: list[list] = []
    sent_at: dict[int, float] = {}
    begin = time.time()
    async with trio_websocket.open_websocket_url(ws_url, max_message_size=16 * 1024 * 1024) as conn:
        sent = received = 0
        while received < len(signed):
            while sent < len(signed) and sent - received < in_flight:
                sent_at[sent] = time.time()
                await conn.send_message(json.dumps({"jsonrpc": "2.0", "id": sent, "method": "author_submitExtrinsic",
                                                    "params": [signed[sent]]}))
                sent += 1
            reply = json.loads(await conn.get_message())
            received += 1
            if "result" in reply:
                submitted.append([reply["result"], sent_at[reply["id"]]])
    return {"accepted": len(submitted), "begin": begin, "end": time.time(), "submitted": submitted}


def bench_transfers(url: str, per_client: int, slot_ms: int) -> dict:
    procs = [subprocess.Popen([sys.executable, __file__, "--client", str(c), "--url", url, "--per-client", str(per_client)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT) for c in range(CLIENTS)]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "signed"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    reports = [json.loads(proc.stdout.readline()) for proc in procs if proc.stdout is not None]
    for proc in procs:
        proc.wait(30)
    accepted = sum(r["accepted"] for r in reports)
    elapsed = max(r["end"] for r in reports) - min(r["begin"] for r in reports)
    submitted = {h: t for r in reports for h, t in r["submitted"]}
    return {"accepted": accepted, "offered": CLIENTS * per_client, "elapsed": elapsed,
            "inclusion": measure_inclusion(url, submitted, slot_ms)}


def measure_inclusion(url: str, submitted: dict[str, float], slot_ms: int) -> float:
    """Fraction of accepted transfers in a block whose slot is at most 2 after the submission's."""
    from runtime.hashing import blake2_256

    deadline = time.time() + 10 * slot_ms / 1000
    found: dict[str, int] = {}
    with httpx.Client() as client:
        number = 1
        while len(found) < len(submitted) and time.time() < deadline:
            block_hash = call(client, url, "chain_getBlockHash", number)
            if block_hash is None:
                time.sleep(slot_ms / 4000)
                continue
            block = call(client, url, "chain_getBlock", block_hash)["block"]
            pre = bytes.fromhex(block["header"]["digest"]["logs"][0][2:])
            slot = int.from_bytes(pre[6:14], "little")  # PreRuntime item: tag, engine id, compact length, slot
            for xt in block["extrinsics"]:
                tx_hash = "0x" + blake2_256(bytes.fromhex(xt[2:])).hex()
                if tx_hash in submitted:
                    found[tx_hash] = slot
            number += 1
    within = sum(1 for h, t in submitted.items() if h in found and found[h] - int(t * 1000) // slot_ms <= 2)
    return within / max(len(submitted), 1)


def bench_rss(blocks: int, workdir: Path) -> dict:
    spec = dev_spec(1, slot_ms=100)
    proc, url, _started = start_node(spec, workdir)
    try:
        with httpx.Client() as client:
            while True:
                try:
                    if int(call(client, url, "chain_getHeader")["number"], 16) >= blocks:
                        break
                except (httpx.HTTPError, RuntimeError):
                    pass
                time.sleep(0.5)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        rss_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
        torch_loaded = "libtorch" in Path(f"/proc/{proc.pid}/maps").read_text()
    finally:
        proc.terminate()
        proc.wait(15)
    return {"figure": "rss_mb_after_blocks", "value": round(rss_kb / 1024, 1), "blocks": blocks, "target": 250,
            "torch_loaded": torch_loaded, "unit": "MB"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-client", type=int, default=600)
    parser.add_argument("--rss-blocks", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--client", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client is not None:
        run_client(args.url, args.client, args.per_client)
        return 0
    slot_ms = 1000
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, started = start_node(bench_spec(args.per_client, slot_ms), Path(tmp))
        try:
            first = wait_first_block(url, started)
            print(json.dumps({"figure": "first_block_s", "value": round(first, 3), "target": 3.0, "unit": "s",
                              "baseline": "process start (Popen) to chain_getHeader number >= 1"}), flush=True)
            print(json.dumps(bench_health(url, args.calls, proc.pid)), flush=True)
            result = bench_transfers(url, args.per_client, slot_ms)
            print(json.dumps({"figure": "transfers_accepted_per_s", "value": round(result["accepted"] / result["elapsed"], 1),
                              "accepted": result["accepted"], "offered": result["offered"], "clients": CLIENTS,
                              "included_within_2_slots": round(result["inclusion"], 4), "target": 1000,
                              "target_inclusion": 0.99, "unit": "tx/s"}), flush=True)
        finally:
            proc.terminate()
            proc.wait(15)
        print(json.dumps(bench_rss(args.rss_blocks, Path(tmp) / "rss")), flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
