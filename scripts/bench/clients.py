"""Benchmark of the Substrate-client path of a real `gensyn-node` process:

- transfers signed and submitted through py-substrate-interface (`submit_extrinsic`, one request
  at a time, as the library does) from 4 client processes: accepted per second, and the
  fraction of accepted transfers found in finalized blocks; next to the node's own
  decode+verify ceiling measured in this run (the ratio says how much of it the clients reach);
- `state_getMetadata` latency through substrate-interface (p50, p99), next to `chain_getHeader`
  on the same connection (the ratio is the cost of serving ~20 KB of metadata), and the cost of
  building the metadata once (it is cached per spec_version and chain parameters);
- extrinsic decode+verify rate (`decode_extrinsic`, signing payload, sr25519 check) next to the
  raw sr25519 verify rate of the same signatures in the same run.

    .venv/bin/python scripts/bench/clients.py [--per-client 500] [--metadata-calls 200]

Prints one JSON object per figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import trio
import trio_websocket

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from gensyn_node.chain_spec import ChainSpec, dev_spec
from gensyn_node.keyring import Keypair, keypair_from_seed
from runtime.crypto import SR25519, verify_signature
from runtime.extrinsic import decode_extrinsic, encode_signed, signing_payload
from runtime.hashing import blake2_256
from runtime.metadata import build_metadata, get_metadata
from runtime.params import ChainParameters
from runtime.types import Era
from runtime.version import LATEST_SPEC_VERSION, get_runtime
from tests.integration.nodeproc import NodeProcess

CLIENTS = 4
FINALITY_WAIT_S = 20.0


def client_seed(client: int, index: int) -> bytes:
    return (client * 100_000 + index + 1).to_bytes(32, "little")


def client_keys(client: int, count: int) -> list[Keypair]:
    return [keypair_from_seed(client_seed(client, i), SR25519) for i in range(count)]


def bench_spec(per_client: int) -> ChainSpec:
    spec = dev_spec(1)
    for client in range(CLIENTS):
        for key in client_keys(client, per_client):
            spec.genesis["balances"].append([key.address, str(10**18)])
    return spec


# --- client processes -------------------------------------------------------------------------------------


def run_client(url: str, client: int, per_client: int) -> None:
    """Client process: sign every transfer with substrate-interface first, wait for 'go', then
    submit them one by one and report JSON."""
    from substrateinterface import Keypair as SiKeypair
    from substrateinterface import SubstrateInterface
    from substrateinterface.exceptions import SubstrateRequestException

    si = SubstrateInterface(url=url, ss58_format=42)
    dest = client_keys((client + 1) % CLIENTS, 1)[0].address
    call = si.compose_call("Balances", "transfer_keep_alive", {"dest": dest, "value": 10**12})
    began = time.perf_counter()
    signed = []
    for i in range(per_client):
        key = SiKeypair.create_from_seed("0x" + client_seed(client, i).hex())
        signed.append(si.create_signed_extrinsic(call, key, nonce=0))
    sign_s = time.perf_counter() - began
    print("signed", flush=True)
    sys.stdin.readline()
    accepted, rejected = [], 0
    begin = time.time()
    for extrinsic in signed:
        try:
            receipt = si.submit_extrinsic(extrinsic)
        except SubstrateRequestException:
            rejected += 1
            continue
        accepted.append(receipt.extrinsic_hash)
    end = time.time()
    si.close()
    print(json.dumps({"accepted": accepted, "rejected": rejected, "begin": begin, "end": end, "sign_s": sign_s}),
          flush=True)


def bench_transfers(url: str, per_client: int) -> dict[str, Any]:
    procs = [subprocess.Popen([sys.executable, __file__, "--client", str(c), "--url", url, "--per-client",
                               str(per_client)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
             for c in range(CLIENTS)]
    for proc in procs:
        if proc.stdout is None or proc.stdout.readline().strip() != "signed":
            raise SystemExit("a client process failed before signing")
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    reports = [json.loads(proc.stdout.readline()) for proc in procs if proc.stdout is not None]
    for proc in procs:
        proc.wait(30)
    accepted = [h for r in reports for h in r["accepted"]]
    elapsed = max(r["end"] for r in reports) - min(r["begin"] for r in reports)
    return {"accepted": accepted, "rejected": sum(r["rejected"] for r in reports), "elapsed": elapsed,
            "sign_per_s": sum(per_client / r["sign_s"] for r in reports)}


def finalized_fraction(url: str, accepted: list[str]) -> float:
    """Fraction of the accepted transfers found in finalized blocks within FINALITY_WAIT_S."""
    wanted, found = set(accepted), set()
    deadline = time.time() + FINALITY_WAIT_S
    number = 1
    with httpx.Client(timeout=30) as client:
        while found != wanted and time.time() < deadline:
            finalized = call(client, url, "chain_getHeader", call(client, url, "chain_getFinalizedHead"))
            if number > int(finalized["number"], 16):
                time.sleep(0.2)
                continue
            block = call(client, url, "chain_getBlock", call(client, url, "chain_getBlockHash", number))["block"]
            found.update("0x" + blake2_256(bytes.fromhex(x[2:])).hex() for x in block["extrinsics"])
            found &= wanted
            number += 1
    return len(found) / max(len(wanted), 1)


def call(client: httpx.Client, url: str, method: str, *params: Any) -> Any:
    reply = client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).json()
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


# --- metadata latency --------------------------------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_metadata(ws_url: str, calls: int) -> list[dict[str, Any]]:
    from substrateinterface import SubstrateInterface

    si = SubstrateInterface(url=ws_url, ss58_format=42)

    def latencies(method: str) -> list[float]:
        samples = []
        for _ in range(calls):
            started = time.perf_counter()
            reply = si.rpc_request(method, [])
            samples.append((time.perf_counter() - started) * 1000)
            if "result" not in reply:
                raise SystemExit(f"{method} failed: {reply}")
        return samples

    metadata_ms, header_ms = latencies("state_getMetadata"), latencies("chain_getHeader")
    size = len(si.rpc_request("state_getMetadata", [])["result"]) // 2 - 1
    si.close()
    raw_ms = trio.run(_raw_ws_latencies, ws_url, "state_getMetadata", calls)
    params = ChainParameters()
    runtime = get_runtime(LATEST_SPEC_VERSION)
    build_ms = min(_time_ms(lambda: build_metadata(runtime, params)) for _ in range(5))
    get_metadata(LATEST_SPEC_VERSION, params)
    cached_ms = min(_time_ms(lambda: get_metadata(LATEST_SPEC_VERSION, params)) for _ in range(5))
    p50, base50 = statistics.median(metadata_ms), statistics.median(header_ms)
    return [
        {"figure": "state_getMetadata_latency_ms", "p50": round(p50, 3), "p99": round(percentile(metadata_ms, 0.99), 3),
         "baseline_p50": round(base50, 3), "baseline_p99": round(percentile(header_ms, 0.99), 3),
         "ratio": round(p50 / base50, 2), "bytes": size, "calls": calls, "unit": "ms",
         "raw_ws_p50": round(statistics.median(raw_ms), 3), "raw_ws_p99": round(percentile(raw_ms, 0.99), 3),
         "baseline_is": "chain_getHeader through substrate-interface on the same WebSocket, same run",
         "raw_ws_is": "the same call over trio-websocket: the node's side without websocket-client's "
                      "pure-Python UTF-8 check of the 42 KB reply"},
        {"figure": "metadata_build_ms", "value": round(build_ms, 3), "cached_ms": round(cached_ms, 5), "unit": "ms",
         "note": "metadata is built once per (spec_version, chain parameters) and cached"},
    ]


async def _raw_ws_latencies(ws_url: str, method: str, calls: int) -> list[float]:
    samples = []
    async with trio_websocket.open_websocket_url(ws_url, max_message_size=1 << 24) as ws:
        for request_id in range(calls):
            started = time.perf_counter()
            await ws.send_message(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": []}))
            await ws.get_message()
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def _time_ms(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


# --- decode + verify ---------------------------------------------------------------------------------------


def bench_decode_verify(count: int) -> dict[str, Any]:
    runtime = get_runtime(LATEST_SPEC_VERSION)
    genesis = blake2_256(b"bench genesis")
    keys = [keypair_from_seed(client_seed(9, i), SR25519) for i in range(count)]
    call_bytes = runtime.encode_call("Balances", "transfer_keep_alive", {"dest": ("Id", keys[0].public), "value": 10**12})
    raws, items = [], []
    for key in keys:
        payload = signing_payload(call_bytes, Era.encode(None), 0, 0, LATEST_SPEC_VERSION, 1, genesis, genesis)
        signature = key.sign(payload)
        raws.append(encode_signed(call_bytes, key.public, SR25519, signature, None, 0, 0))
        items.append((key.public, payload, signature))

    def raw_verify() -> None:
        for public, payload, signature in items:
            if not verify_signature(SR25519, public, payload, signature):
                raise SystemExit("benchmark bug: a signature did not verify")

    def decode_and_verify() -> None:
        for raw in raws:
            xt = decode_extrinsic(raw, runtime)
            payload = signing_payload(xt.call_bytes, xt.era_bytes, xt.nonce, xt.tip, LATEST_SPEC_VERSION, 1, genesis,
                                      genesis)
            if not verify_signature(xt.scheme, xt.signer, payload, xt.signature):  # type: ignore[arg-type]
                raise SystemExit("benchmark bug: a signature did not verify")

    verify_s = min(_time_ms(raw_verify) for _ in range(3)) / 1000
    decode_s = min(_time_ms(decode_and_verify) for _ in range(3)) / 1000
    return {"figure": "extrinsic_decode_verify_per_s", "value": round(count / decode_s),
            "baseline": round(count / verify_s), "ratio": round(verify_s / decode_s, 3), "unit": "extrinsics/s",
            "baseline_is": "raw sr25519 verify of the same signatures, same run", "count": count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-client", type=int, default=500)
    parser.add_argument("--metadata-calls", type=int, default=200)
    parser.add_argument("--verify-count", type=int, default=3000)
    parser.add_argument("--client", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client is not None:
        run_client(args.url, args.client, args.per_client)
        return
    decode_verify = bench_decode_verify(args.verify_count)
    print(json.dumps(decode_verify), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(bench_spec(args.per_client).to_json())
        node = NodeProcess(Path(tmp) / "node", "--rpc-rate-limit", "1000000", chain=str(spec_path)).start(timeout=60)
        ws_url = f"ws://127.0.0.1:{node.rpc_port}"
        try:
            for figure in bench_metadata(ws_url, args.metadata_calls):
                print(json.dumps(figure), flush=True)
            transfers = bench_transfers(ws_url, args.per_client)
            fraction = finalized_fraction(node.url, transfers["accepted"])
        finally:
            node.stop()
    accepted_per_s = len(transfers["accepted"]) / transfers["elapsed"]
    print(json.dumps({
        "figure": "substrate_interface_transfers_accepted_per_s", "value": round(accepted_per_s, 1),
        "accepted": len(transfers["accepted"]), "rejected": transfers["rejected"],
        "offered": CLIENTS * args.per_client, "clients": CLIENTS, "finalized_fraction": round(fraction, 4),
        "baseline": decode_verify["value"], "ratio": round(accepted_per_s / decode_verify["value"], 3),
        "client_sign_per_s": round(transfers["sign_per_s"], 1), "unit": "transfers/s",
        "client_sign_is": "compose + sign with substrate-interface, summed over the clients (before the timed part)",
        "baseline_is": "the node's decode+verify rate of the same kind of extrinsic, same run (one core's ceiling)",
    }), flush=True)


if __name__ == "__main__":
    main()
