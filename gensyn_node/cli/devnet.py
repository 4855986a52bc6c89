"""`gensyn-node devnet --validators N --base-path D`: a local network of N validator processes
in seconds. It writes a chain spec with N validators (alice, bob, charlie, ...) of equal bonds,
gives each node its network key (so PeerIds are known before anything starts), starts the nodes
on free ports connected through the first as bootnode, writes `D/devnet.json` (each node's name,
RPC URL, p2p multiaddr, pid, log), shows one live line per node (best, finalized, peers) until
Ctrl-C, then stops them cleanly. A second run on the same base path resumes the same chain.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from gensyn_node.chain_spec import ChainSpec, ChainSpecError, dev_spec, validator_names
from gensyn_node.cli.errors import CliError

STOP_SECONDS = 20.0


@dataclass
class DevnetNode:
    name: str
    rpc_url: str
    p2p: str
    peer_id: str
    pid: int
    log: str


def add_commands(sub: argparse._SubParsersAction) -> None:
    devnet = sub.add_parser("devnet", help="run a local network of N validators (Ctrl-C stops it)")
    devnet.add_argument("--validators", type=int, default=4, help="how many validators (default 4)")
    devnet.add_argument("--base-path", required=True, help="where the spec, the nodes and devnet.json live")
    devnet.add_argument("--slot-ms", type=int, default=1000, help="slot length of a new devnet (default 1000)")
    devnet.add_argument("--no-live", action="store_true", help="print the nodes once instead of live lines")
    devnet.set_defaults(handler=cmd_devnet)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _load_or_write_spec(base: Path, validators: int, slot_ms: int) -> tuple[Path, ChainSpec]:
    path = base / "spec.json"
    if path.exists():
        try:
            spec = ChainSpec.from_json(path.read_text())
        except ChainSpecError as exc:
            raise CliError(f"{path}: {exc}") from None
        count = len(spec.genesis.get("validators", []))
        if count != validators:
            raise CliError(f"{base} holds a devnet of {count} validators, not {validators} "
                           f"(pass --validators {count} or another --base-path)")
        return path, spec
    spec = dev_spec(validators, slot_ms=slot_ms)
    spec.name, spec.id = f"Devnet ({validators} validators)", "devnet"
    base.mkdir(parents=True, exist_ok=True)
    path.write_text(spec.to_json())
    return path, spec


def _node_key(node_dir: Path) -> str:
    from p2p.addresses import peer_id_of
    from p2p.nodekey import load_or_create_node_key

    seed, _created = load_or_create_node_key(node_dir)
    return peer_id_of(seed)


def start_nodes(base: Path, spec_path: Path, names: list[str]) -> list[tuple[DevnetNode, subprocess.Popen]]:
    started: list[tuple[DevnetNode, subprocess.Popen]] = []
    bootnode: str | None = None
    for name in names:
        node_dir = base / name
        peer_id = _node_key(node_dir)
        rpc_port, p2p_port = free_port(), free_port()
        p2p = f"/ip4/127.0.0.1/tcp/{p2p_port}/p2p/{peer_id}"
        args = [sys.executable, "-m", "gensyn_node.cli", "--log", "info", "run", "--chain", str(spec_path),
                "--base-path", str(node_dir), "--name", name, "--validator", "--key", "//" + name.capitalize(),
                "--rpc-port", str(rpc_port), "--no-prometheus", "--listen-addr", f"/ip4/127.0.0.1/tcp/{p2p_port}"]
        if bootnode is not None:
            args += ["--bootnodes", bootnode]
        log_path = node_dir / "node.log"
        with open(log_path, "ab") as log_file:
            proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log_file, start_new_session=True)
        started.append((DevnetNode(name, f"http://127.0.0.1:{rpc_port}", p2p, peer_id, proc.pid, str(log_path)), proc))
        bootnode = bootnode or p2p
    return started


def _rpc(client: httpx.Client, url: str, method: str, *params: Any) -> Any:
    reply = client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).json()
    if "error" in reply:
        raise RuntimeError(reply["error"])
    return reply["result"]


def read_node(client: httpx.Client, node: DevnetNode) -> dict[str, int] | None:
    """Best, finalized and peers of one node, or None while it does not answer."""
    try:
        best = int(_rpc(client, node.rpc_url, "chain_getHeader")["number"], 16)
        finalized_hash = _rpc(client, node.rpc_url, "chain_getFinalizedHead")
        finalized = int(_rpc(client, node.rpc_url, "chain_getHeader", finalized_hash)["number"], 16)
        peers = _rpc(client, node.rpc_url, "system_health")["peers"]
    except (httpx.HTTPError, RuntimeError, ValueError, KeyError, TypeError):
        return None
    return {"best": best, "finalized": finalized, "peers": peers}


def _line(node: DevnetNode, proc: subprocess.Popen, state: dict[str, int] | None) -> str:
    if proc.poll() is not None:
        return f"{node.name:<12} exited with code {proc.returncode} (see {node.log})"
    if state is None:
        return f"{node.name:<12} starting..."
    return (f"{node.name:<12} best #{state['best']:<7} finalized #{state['finalized']:<7} peers {state['peers']:<3}"
            f" {node.rpc_url}")


def stop_nodes(nodes: list[tuple[DevnetNode, subprocess.Popen]]) -> None:
    for _node, proc in nodes:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    for _node, proc in nodes:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def cmd_devnet(args: argparse.Namespace) -> int:
    if not 1 <= args.validators <= 16:
        raise CliError(f"--validators {args.validators}: a devnet has 1 to 16 validators")
    base = Path(args.base_path).resolve()
    spec_path, _spec = _load_or_write_spec(base, args.validators, args.slot_ms)
    resumed = (base / "devnet.json").exists()
    nodes: list[tuple[DevnetNode, subprocess.Popen]] = []
    stop = False

    def on_signal(_signum: int, _frame: Any) -> None:
        nonlocal stop
        stop = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        nodes = start_nodes(base, spec_path, validator_names(args.validators))
        info = {"chain": str(spec_path), "validators": args.validators,
                "nodes": [asdict(node) for node, _proc in nodes]}
        (base / "devnet.json").write_text(json.dumps(info, indent=2))
        print(f"devnet: {'resumed' if resumed else 'started'} {args.validators} validators in {base} "
              f"(devnet.json written); Ctrl-C stops them", flush=True)
        for node, _proc in nodes:
            print(f"  {node.name:<12} rpc {node.rpc_url}  p2p {node.p2p}", flush=True)
        _show_live(nodes, live=not args.no_live and sys.stdout.isatty(), should_stop=lambda: stop)
    finally:
        print("devnet: stopping nodes...", flush=True)
        stop_nodes(nodes)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    codes = {node.name: proc.returncode for node, proc in nodes}
    print("devnet: stopped " + ", ".join(f"{name}={code}" for name, code in codes.items()), flush=True)
    return 0


def _show_live(nodes: list[tuple[DevnetNode, subprocess.Popen]], live: bool, should_stop: Any) -> None:
    """One line per node, redrawn in place on a terminal, printed every 5 s otherwise."""
    drawn = False
    last_print = 0.0
    with httpx.Client(timeout=2.0) as client:
        while not should_stop():
            lines = [_line(node, proc, read_node(client, node)) for node, proc in nodes]
            now = time.monotonic()
            if live:
                if drawn:
                    sys.stdout.write(f"\x1b[{len(lines)}F")
                sys.stdout.write("".join(f"\x1b[2K{line}\n" for line in lines))
                sys.stdout.flush()
                drawn = True
            elif now - last_print >= 5.0:
                print("\n".join(lines), flush=True)
                last_print = now
            if all(proc.poll() is not None for _node, proc in nodes):
                print("devnet: every node has exited", flush=True)
                return
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline and not should_stop():
                time.sleep(0.1)

