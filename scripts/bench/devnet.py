"""Benchmark of a real multi-validator network on loopback (issue 8):

- a devnet of N validator processes (1 s slots) for --seconds under a steady load of transfers:
  blocks authored / slots elapsed, transfer submit-to-inclusion latency (median, p95), gossip
  messages per second per node, and each node's CPU share;
- finality lag (a block first seen finalized minus first seen best, in seconds and 1 s slots) and
  transfer submit-to-finalized latency;
- sync: a chain of --sync-blocks blocks is authored offline into one node's LevelDB; a fresh node
  syncs it over libp2p, and the same blocks go through `import-blocks` locally: blocks/s of each
  and their ratio (the baseline, in the same run).

    .venv/bin/python scripts/bench/devnet.py [--validators 4] [--seconds 120] [--tps 5] [--sync-blocks 2000]
        [--compare-validators 8]

Prints one JSON object per figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from gensyn_node.chain_spec import dev_spec, validator_names
from gensyn_node.client import NodeClient
from gensyn_node.keyring import DEV_NAMES, dev_account
from runtime.hashing import blake2_256
from tests.integration.nodeproc import free_port

NODE = [sys.executable, "-m", "gensyn_node.cli"]
NODE_LOG = os.environ.get("BENCH_NODE_LOG", "warning")  # the devnet nodes' log level
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Proc:
    def __init__(self, base: Path, spec: Path, name: str, *extra: str, validator: bool = True, log: str = NODE_LOG):
        self.name = name
        self.rpc_port, self.p2p_port, self.metrics_port = free_port(), free_port(), free_port()
        args = [*NODE, "--log", log, "run", "--chain", str(spec), "--base-path", str(base / name), "--name", name,
                "--rpc-port", str(self.rpc_port), "--prometheus-port", str(self.metrics_port),
                "--listen-addr", f"/ip4/127.0.0.1/tcp/{self.p2p_port}", "--rpc-rate-limit", "1000000", *extra]
        if validator:
            args += ["--validator", "--key", "//" + name.capitalize()]
        self.log = open(base / f"{name}.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self.log)
        self.url = f"http://127.0.0.1:{self.rpc_port}"
        self.peer_id = ""

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = Path(self.log.name).read_text()
            if "gensyn-node: ready" in text:
                for line in text.splitlines():
                    if "Local node identity is: " in line:
                        self.peer_id = line.rsplit(" ", 1)[-1]
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{text[-2000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready")

    @property
    def multiaddr(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.p2p_port}/p2p/{self.peer_id}"

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def _metric_lines(self) -> list[str]:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).text.splitlines()

    def metric_by_label(self, name: str) -> dict[str, float]:
        """A one-label metric's values: `name{label="x"} v` -> {"x": v}."""
        values = {}
        for line in self._metric_lines():
            if line.startswith(name + "{"):
                labels, value = line.rsplit(" ", 1)
                values[labels.split('"')[1]] = float(value)
        return values

    def metric(self, name: str) -> float:
        for line in self._metric_lines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return 0.0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def rpc(url: str, method: str, *params):  # type: ignore[no-untyped-def]
    reply = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}, timeout=30)
    return reply.json()["result"]


def best(url: str) -> int:
    return int(rpc(url, "chain_getHeader")["number"], 16)


def wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.25)


def slot_of(block_json: dict) -> int:  # type: ignore[type-arg]
    from runtime.types import DigestItem

    for log_hex in block_json["header"]["digest"]["logs"]:
        kind, (engine, data) = DigestItem.decode(bytes.fromhex(log_hex[2:]))
        if kind == "PreRuntime" and engine == b"gsyn":
            return int.from_bytes(data[:8], "little")
    raise ValueError("no slot")


def _number_of_slot(slots: list[int], start_best: int, slot: int) -> int:
    """The block number (on the canonical chain read) whose slot is `slot`."""
    return start_best + 1 + slots.index(slot)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def load(nodes: list[Proc], tps: float, stop: threading.Event, submitted: dict[bytes, float]) -> None:
    """Steady transfers from the dev accounts, round robin over the nodes, nonces tracked here."""
    clients = [NodeClient(n.url) for n in nodes]
    senders = [dev_account(name) for name in DEV_NAMES]
    nonces = {s.public: clients[0].next_nonce(s) for s in senders}
    dest = dev_account("validator99").public
    call = clients[0].encode_call("Balances", "transfer_keep_alive", {"dest": ("Id", dest), "value": 10**12})
    i = 0
    next_at = time.monotonic()
    while not stop.is_set():
        sender = senders[i % len(senders)]
        client = clients[i % len(clients)]
        data = client.sign(sender, call, nonce=nonces[sender.public])
        try:
            client.rpc.call("author_submitExtrinsic", "0x" + data.hex())
            submitted[blake2_256(data)] = time.time()
            nonces[sender.public] += 1
        except Exception:  # noqa: BLE001 - a refused transfer is counted as not submitted
            nonces[sender.public] = client.next_nonce(sender)
        i += 1
        next_at += 1 / tps
        time.sleep(max(0.0, next_at - time.monotonic()))
    for c in clients:
        c.close()


def watch_heads(url: str, stop: threading.Event, seen_best: dict[int, float], seen_final: dict[int, float]) -> None:
    """When each block number is first announced as best and as finalized by one node: the
    receipt times of its `chain_subscribeNewHeads` and `chain_subscribeFinalizedHeads`
    notifications over one WebSocket (a finalized head finalizes every number below it)."""
    import trio

    from gensyn_node.rpc.client import open_ws

    def mark(seen: dict[int, float], header: dict) -> None:  # type: ignore[type-arg]
        now = time.time()
        for n in range(max(seen, default=0) + 1, int(header["number"], 16) + 1):
            seen[n] = now

    async def follow(ws, method: str, unsubscribe: str, seen: dict[int, float]) -> None:  # type: ignore[no-untyped-def]
        async with ws.subscribe(method, [], unsubscribe) as headers:
            async for header in headers:
                mark(seen, header)

    async def main() -> None:
        async with open_ws(url.replace("http://", "ws://")) as ws, trio.open_nursery() as nursery:
            nursery.start_soon(follow, ws, "chain_subscribeNewHeads", "chain_unsubscribeNewHeads", seen_best)
            nursery.start_soon(follow, ws, "chain_subscribeFinalizedHeads", "chain_unsubscribeFinalizedHeads",
                               seen_final)
            while not stop.is_set():
                await trio.sleep(0.1)
            nursery.cancel_scope.cancel()

    trio.run(main)


def bench_devnet(validators: int, seconds: float, tps: float, work: Path) -> float | None:
    """Runs the devnet and prints its figures; returns the median finality lag (s)."""
    spec = work / "spec.json"
    spec.write_text(dev_spec(validators, slot_ms=1000).to_json())
    names = validator_names(validators)
    nodes = [Proc(work, spec, names[0])]
    nodes[0].wait_ready()
    nodes += [Proc(work, spec, name, "--bootnodes", nodes[0].multiaddr) for name in names[1:]]
    try:
        for node in nodes[1:]:
            node.wait_ready()
        wait(lambda: all(rpc(n.url, "system_health")["peers"] == validators - 1 for n in nodes), 120, "mesh")
        wait(lambda: min(best(n.url) for n in nodes) >= 3, 120, "first blocks")
        submitted: dict[bytes, float] = {}
        stop = threading.Event()
        loader = threading.Thread(target=load, args=(nodes, tps, stop, submitted))
        seen_best: dict[int, float] = {}
        seen_final: dict[int, float] = {}
        watcher = threading.Thread(target=watch_heads, args=(nodes[0].url, stop, seen_best, seen_final))
        start_best = best(nodes[0].url)
        cpu0 = [n.cpu_seconds() for n in nodes]
        gossip0 = [n.metric("gensyn_gossip_received") + n.metric("gensyn_gossip_sent") for n in nodes]
        kinds0 = [n.metric_by_label("gensyn_gossip_messages") for n in nodes]
        authored0 = sum(n.metric("gensyn_blocks_authored_total") for n in nodes)
        skipped0 = sum(n.metric("gensyn_slots_skipped_syncing_total") for n in nodes)
        t0 = time.time()
        loader.start()
        watcher.start()
        time.sleep(seconds)
        stop.set()
        loader.join()
        watcher.join()
        elapsed = time.time() - t0
        cpu = [(n.cpu_seconds() - c) / elapsed for n, c in zip(nodes, cpu0, strict=True)]
        gossip = [(n.metric("gensyn_gossip_received") + n.metric("gensyn_gossip_sent") - g) / elapsed
                  for n, g in zip(nodes, gossip0, strict=True)]
        kinds: dict[str, float] = {}  # messages per second per node, by kind, averaged over nodes
        for n, k0 in zip(nodes, kinds0, strict=True):
            for kind, count in n.metric_by_label("gensyn_gossip_messages").items():
                kinds[kind] = kinds.get(kind, 0.0) + (count - k0.get(kind, 0.0)) / elapsed / len(nodes)
        authored = sum(n.metric("gensyn_blocks_authored_total") for n in nodes) - authored0
        skipped = sum(n.metric("gensyn_slots_skipped_syncing_total") for n in nodes) - skipped0
        time.sleep(3)  # the last transfers' blocks
        end_best = best(nodes[0].url)
        blocks, included = [], {}
        for number in range(start_best + 1, end_best + 1):
            block = rpc(nodes[0].url, "chain_getBlock", rpc(nodes[0].url, "chain_getBlockHash", number))["block"]
            slot = slot_of(block)
            blocks.append(slot)
            for xt in block["extrinsics"]:
                included[blake2_256(bytes.fromhex(xt[2:]))] = slot
        window = [s for s in blocks if t0 <= s < t0 + elapsed]
        slots = int(t0 + elapsed) - int(t0)
        dead = [n for n in nodes if n.proc.poll() is not None]
        if dead:  # a node that died mid-run is the finding: its log says why
            for n in dead:
                print(f"{n.name} exited with {n.proc.returncode}:\n{Path(n.log.name).read_text()[-4000:]}",
                      file=sys.stderr)
            raise SystemExit(f"{len(dead)} of {validators} nodes died during the run")
        agree = len({rpc(n.url, "chain_getBlockHash", end_best - 2) for n in nodes}) == 1
        latency = [included[h] + 0.0 - t for h, t in submitted.items() if h in included]
        print(json.dumps({"figure": "slots_filled", "validators": validators, "value": round(len(window) / slots, 3),
                          "blocks": len(window), "slots": slots, "target": 0.95, "all_nodes_agree": agree,
                          # why a slot stays empty: its leader authored nothing, or its block lost a fork
                          "authored_all_nodes": int(authored), "slots_skipped_major_syncing": int(skipped)}))
        print(json.dumps({"figure": "transfer_submit_to_inclusion_s", "validators": validators,
                          "median": round(statistics.median(latency), 3) if latency else None,
                          "p95": round(percentile(latency, 0.95) or 0, 3) if latency else None,
                          "submitted": len(submitted), "included": len(latency), "tps_offered": tps,
                          "measured_to": "the slot start of the including block"}))
        print(json.dumps({"figure": "gossip_messages_per_s_per_node", "validators": validators,
                          "values": [round(g, 2) for g in gossip], "limit": 50,
                          "by_kind_mean": {k: round(v, 2) for k, v in sorted(kinds.items())},
                          "cpu_share": [round(c, 3) for c in cpu],
                          "cpu_share_is": "CPU seconds of each node process / wall seconds (2-core machine)"}))
        lags = [seen_final[n] - seen_best[n] for n in seen_best if n in seen_final and seen_best[n] > t0 + 5]
        final_latency = [seen_final[n] - t for h, t in submitted.items() if h in included
                         for n in [_number_of_slot(blocks, start_best, included[h])] if n in seen_final]
        print(json.dumps({"figure": "finality_lag", "validators": validators,
                          "median_s": round(statistics.median(lags), 3) if lags else None,
                          "p95_s": round(percentile(lags, 0.95) or 0, 3) if lags else None,
                          "median_slots": round(statistics.median(lags), 2) if lags else None,
                          "p95_slots": round(percentile(lags, 0.95) or 0, 2) if lags else None,
                          "blocks_measured": len(lags), "finalized_at_end": max(seen_final, default=0),
                          "best_at_end": max(seen_best, default=0), "targets_slots": {"median": 2, "p95": 4},
                          "is": "finalized-head minus new-head notification receipt on one node (WebSocket subscriptions), 1 s slots"}))
        print(json.dumps({"figure": "transfer_submit_to_finalized_s", "validators": validators,
                          "median": round(statistics.median(final_latency), 3) if final_latency else None,
                          "p95": round(percentile(final_latency, 0.95) or 0, 3) if final_latency else None,
                          "count": len(final_latency)}))
        return statistics.median(lags) if lags else None
    finally:
        for node in nodes:
            node.stop()


def author_offline(base: Path, spec_path: Path, count: int) -> None:
    """`count` blocks of a one-validator chain authored in past slots straight into LevelDB."""
    from gensyn_node.chain_spec import load_chain_spec
    from gensyn_node.keyring import keypair_from_uri
    from gensyn_node.service import Node, NodeConfig
    from runtime.crypto import ED25519

    spec = load_chain_spec(str(spec_path))
    node = Node(NodeConfig(spec=spec, base_path=str(base), validator=True, network_enabled=False,
                           session_key=keypair_from_uri("//Alice", ED25519)))
    try:
        first = int(time.time()) - count - 60
        for slot in range(first, first + count):
            node.try_author(slot)
    finally:
        node.close()


def bench_sync(blocks: int, work: Path) -> None:
    spec = work / "sync-spec.json"
    spec.write_text(dev_spec(1, slot_ms=1000).to_json())
    source_dir = work / "source"
    author_offline(source_dir, spec, blocks)
    exported = work / "blocks.bin"
    subprocess.run([*NODE, "export-blocks", "--base-path", str(source_dir), "--chain", str(spec), str(exported)],
                   cwd=ROOT, check=True, capture_output=True)
    empty = work / "empty.bin"
    empty.write_bytes(b"")

    def timed_import(path: Path, target: Path) -> float:
        started = time.perf_counter()
        subprocess.run([*NODE, "import-blocks", "--base-path", str(target), "--chain", str(spec), str(path)],
                       cwd=ROOT, check=True, capture_output=True)
        return time.perf_counter() - started

    startup = timed_import(empty, work / "import-empty")
    import_s = timed_import(exported, work / "import-full") - startup
    source = Proc(work, spec, "source", validator=False)
    try:
        source.wait_ready()
        syncer = Proc(work, spec, "syncer", "--bootnodes", source.multiaddr, validator=False, log="info")
        try:
            syncer.wait_ready()
            started = time.perf_counter()
            wait(lambda: best(syncer.url) >= blocks, 1800, "sync")
            sync_s = time.perf_counter() - started
            parts = sync_breakdown(Path(syncer.log.name).read_text())
        finally:
            syncer.stop()
    finally:
        source.stop()
    in_sync_s = parts.get("total_s") or sync_s
    print(json.dumps({"figure": "sync_blocks_per_s", "blocks": blocks, "value": round(blocks / sync_s, 1),
                      "baseline": round(blocks / import_s, 1), "ratio": round(import_s / sync_s, 3), "target": 0.5,
                      "value_in_sync": round(blocks / in_sync_s, 1), "ratio_in_sync": round(import_s / in_sync_s, 3),
                      "breakdown_s": {"ready_to_synced": round(sync_s, 3), **parts},
                      "value_is": "node ready (RPC up) to best >= blocks, polled every 0.25 s: includes dialing the "
                                  "bootnode and the status exchange; value_in_sync counts only the syncer's sync loop",
                      "baseline_is": "import-blocks of the same blocks from a file, same run, process start "
                                     "subtracted", "blocks_are": "one timestamp inherent each (no transfers)"}))


def sync_breakdown(log_text: str) -> dict[str, float]:
    """The syncer's own account of its sync rounds ("sync done ... waiting_s=..."), summed."""
    parts: dict[str, float] = {}
    for line in log_text.splitlines():
        if "sync done" not in line:
            continue
        for word in line.split():
            name, _, value = word.partition("=")
            if name.endswith("_s"):
                parts[name] = round(parts.get(name, 0.0) + float(value), 3)
    return parts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--validators", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--tps", type=float, default=5.0)
    parser.add_argument("--sync-blocks", type=int, default=2000)
    parser.add_argument("--skip-devnet", action="store_true")
    parser.add_argument("--compare-validators", type=int, default=0,
                        help="also run a devnet of this many validators and print its finality lag over ours")
    parser.add_argument("--workdir", default=None, help="keep the nodes' stores and logs here (a fresh directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-devnet-") as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        if not args.skip_devnet:
            (work / "devnet").mkdir()
            lag = bench_devnet(args.validators, args.seconds, args.tps, work / "devnet")
            if args.compare_validators:
                (work / "devnet-compare").mkdir()
                other = bench_devnet(args.compare_validators, args.seconds, args.tps, work / "devnet-compare")
                print(json.dumps({"figure": "finality_lag_ratio", "validators": [args.compare_validators, args.validators],
                                  "value": round(other / lag, 3) if lag and other is not None else None,
                                  "median_lag_s": [other, lag], "target": 1.5,
                                  "is": "median finality lag with more validators over fewer, same run"}))
        if args.sync_blocks:
            (work / "sync").mkdir()
            bench_sync(args.sync_blocks, work / "sync")


if __name__ == "__main__":
    main()
