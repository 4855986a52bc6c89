"""`gensyn-node devnet`: N validator processes from one command, connected and producing one
chain, described in devnet.json, stopped cleanly by Ctrl-C, and resumed by a second run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading

import httpx

from tests.integration.nodeproc import NODE, ROOT, wait_until


def rpc(url: str, method: str, *params):  # type: ignore[no-untyped-def]
    try:
        return httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
                          timeout=10).json()["result"]
    except httpx.HTTPError:
        return None


def best(url: str) -> int:
    header = rpc(url, "chain_getHeader")
    return int(header["number"], 16) if header else -1


def start_devnet(base, validators: int = 3):  # type: ignore[no-untyped-def]
    proc = subprocess.Popen([*NODE, "devnet", "--validators", str(validators), "--base-path", str(base), "--no-live"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()  # type: ignore[arg-type]
    wait_until(lambda: any("devnet.json written" in ln for ln in lines), timeout=60)
    return proc, lines, json.loads((base / "devnet.json").read_text())


def stop_devnet(proc, lines, info) -> None:  # type: ignore[no-untyped-def]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 0
    assert any(ln.startswith("devnet: stopped alice=0, bob=0, charlie=0") for ln in lines), lines[-5:]
    for node in info["nodes"]:
        assert not _alive(node["pid"])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_devnet_starts_connected_validators_stops_cleanly_and_resumes(tmp_path):
    proc, lines, info = start_devnet(tmp_path)
    try:
        assert [n["name"] for n in info["nodes"]] == ["alice", "bob", "charlie"]
        urls = [n["rpc_url"] for n in info["nodes"]]
        assert all(n["p2p"].endswith("/p2p/" + n["peer_id"]) for n in info["nodes"])
        wait_until(lambda: all((rpc(u, "system_health") or {}).get("peers") == 2 for u in urls), timeout=90,
                   interval=0.5)
        wait_until(lambda: min(best(u) for u in urls) >= 4, timeout=90, interval=0.5)
        height = min(best(u) for u in urls) - 1
        hashes = {rpc(u, "chain_getBlockHash", height) for u in urls}
        assert len(hashes) == 1 and None not in hashes
        wait_until(lambda: any(ln.startswith("alice") and "best #" in ln for ln in lines), timeout=30)
    finally:
        stop_devnet(proc, lines, info)
    (known,) = hashes
    proc, lines, info = start_devnet(tmp_path)
    try:
        assert any("resumed 3 validators" in ln for ln in lines)
        urls = [n["rpc_url"] for n in info["nodes"]]
        wait_until(lambda: all(best(u) > height for u in urls), timeout=90, interval=0.5)
        assert {rpc(u, "chain_getBlockHash", height) for u in urls} == {known}  # the same chain, resumed
    finally:
        stop_devnet(proc, lines, info)
