"""Real node processes on loopback for integration tests: free ports, a LevelDB base path,
readiness read from the node's own "ready" line (no sleeping)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NODE = [sys.executable, "-m", "gensyn_node.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NodeProcess:
    def __init__(self, base_path: Path, *extra: str, chain: str = "dev", key_args: tuple[str, ...] = ("--alice",),
                 p2p_port: int | None = None, program: list[str] = NODE):
        self.base_path = base_path
        self.rpc_port = free_port()
        self.metrics_port = free_port()
        self.p2p_port = p2p_port or free_port()
        self.args = [*program, "run", "--chain", chain, "--base-path", str(base_path), *key_args,
                     "--rpc-port", str(self.rpc_port), "--prometheus-port", str(self.metrics_port),
                     "--listen-addr", f"/ip4/127.0.0.1/tcp/{self.p2p_port}", *extra]
        self.peer_id: str | None = None
        self.proc: subprocess.Popen | None = None
        self.stderr_lines: list[str] = []
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rpc_port}"

    def start(self, timeout: float = 30.0) -> NodeProcess:
        self.stderr_lines = []
        self._ready.clear()
        self.proc = subprocess.Popen(self.args, cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        threading.Thread(target=self._read_stderr, daemon=True).start()
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError("node did not become ready:\n" + "".join(self.stderr_lines[-30:]))
        return self

    def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        self.base_path.mkdir(parents=True, exist_ok=True)
        with open(self.base_path / "node.log", "a") as log:  # kept across restarts, for a failed test
            for line in self.proc.stderr:
                log.write(line)
                self._on_line(line)

    def _on_line(self, line: str) -> None:
        self.stderr_lines.append(line)
        if "Local node identity is: " in line:
            self.peer_id = line.rsplit(" ", 1)[-1].strip()
        if "gensyn-node: ready" in line:
            self._ready.set()

    @property
    def multiaddr(self) -> str:
        """This node's p2p address, for another node's --bootnodes."""
        return f"/ip4/127.0.0.1/tcp/{self.p2p_port}/p2p/{self.peer_id}"

    def kill9(self) -> None:
        assert self.proc is not None
        kill9_process(self.proc)

    def stop(self) -> int:
        return stop_process(self.proc, grace_s=15)


def kill9_process(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def stop_process(proc: subprocess.Popen | None, grace_s: float) -> int:
    """SIGTERM, then SIGKILL past `grace_s`; the exit code (0 for a process never started)."""
    if proc is None or proc.poll() is not None:
        return proc.returncode if proc else 0
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05):  # type: ignore[no-untyped-def]
    """Poll an observable condition of a real process (a block number, a balance) until true."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(interval)
