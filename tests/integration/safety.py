"""Finality safety across a whole multi-node test: every node's finalized chain is read over
RPC (the finalized head, then the canonical hash at each height up to it, in one batch) and
recorded; the first height at which two nodes, or one node at two times, report different
finalized blocks fails the test, and so does a node whose finalized number goes backwards
(a restart included: the database keeps it)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx

from tests.integration.nodeproc import NodeProcess

BATCH = 500


class SafetyViolation(AssertionError):
    """Two finalized blocks at one height, or a finalized block reverted."""


def rpc(node: NodeProcess, method: str, *params):  # type: ignore[no-untyped-def]
    reply = httpx.post(node.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
                       timeout=30).json()
    if "error" in reply:
        raise RuntimeError(f"{method} on {node.base_path.name}: {reply['error']}")
    return reply["result"]


def rpc_batch(node: NodeProcess, method: str, params: list[list]) -> list:  # type: ignore[type-arg]
    out: list = []  # type: ignore[type-arg]
    for start in range(0, len(params), BATCH):
        chunk = params[start:start + BATCH]
        replies = httpx.post(node.url, json=[{"jsonrpc": "2.0", "id": i, "method": method, "params": p}
                                             for i, p in enumerate(chunk)], timeout=60).json()
        by_id = {r["id"]: r for r in replies}
        for i in range(len(chunk)):
            if "error" in by_id[i]:
                raise RuntimeError(f"{method} on {node.base_path.name}: {by_id[i]['error']}")
            out.append(by_id[i]["result"])
    return out


def is_running(node: NodeProcess) -> bool:
    return node.proc is not None and node.proc.poll() is None


def best_number(node: NodeProcess) -> int:
    return int(rpc(node, "chain_getHeader")["number"], 16)


@dataclass
class SafetyMonitor:
    """Call `check()` as often as the test likes (every wait below does); it raises
    SafetyViolation at the first conflict and returns each running node's finalized number."""

    nodes: list[NodeProcess]
    finalized: dict[int, str] = field(default_factory=dict)       # height -> the one finalized hash
    checked: dict[str, int] = field(default_factory=dict)         # node name -> heights read so far
    reader: dict[int, str] = field(default_factory=dict)          # height -> the node it was first read from

    def add(self, node: NodeProcess) -> None:
        self.nodes.append(node)

    def check(self) -> dict[str, int]:
        numbers: dict[str, int] = {}
        for node in self.nodes:
            if not is_running(node):
                continue
            try:
                numbers[node.base_path.name] = self._check_node(node)
            except httpx.TransportError:
                continue  # starting, or just killed: read it next time
        return numbers

    def _check_node(self, node: NodeProcess) -> int:
        name = node.base_path.name
        head = rpc(node, "chain_getFinalizedHead")
        number = int(rpc(node, "chain_getHeader", head)["number"], 16)
        done = self.checked.get(name, 0)
        if number < done:
            raise SafetyViolation(f"{name} finalized #{done} earlier and now reports #{number}")
        heights = list(range(done + 1, number + 1))
        hashes = rpc_batch(node, "chain_getBlockHash", [[h] for h in heights])
        if heights and hashes[-1] != head:
            raise SafetyViolation(f"{name}: finalized head {head} is not its canonical block #{number}")
        for height, block_hash in zip(heights, hashes, strict=True):
            known = self.finalized.setdefault(height, block_hash)
            self.reader.setdefault(height, name)
            if known != block_hash:
                raise SafetyViolation(f"#{height} finalized as {known} by {self.reader[height]} and as "
                                      f"{block_hash} by {name}")
        self.checked[name] = number
        return number

    def wait(self, predicate, timeout: float, what: str, interval: float = 0.5):  # type: ignore[no-untyped-def]
        """Poll `predicate(finalized numbers by node name)` with a deadline, checking safety each time."""
        deadline = time.monotonic() + timeout
        while True:
            numbers = self.check()
            value = predicate(numbers)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not reached in {timeout:.0f} s; finalized {numbers}")
            time.sleep(interval)

    def wait_finalized(self, names: list[str], at_least: int, timeout: float) -> dict[str, int]:
        return self.wait(lambda numbers: numbers if all(numbers.get(n, -1) >= at_least for n in names) else None,
                         timeout, f"{names} finalize #{at_least}")
