"""Validators over libp2p: real node processes on loopback, each with its own LevelDB, connected
through the first as bootnode. They produce one chain that every node agrees on, a node joining
late syncs and follows the tip, a plaintext dial is refused, a garbage-sending peer is scored
down and dropped while the others keep producing, and a busy p2p port gives one clear line."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

import httpx
import pytest

from gensyn_node.chain_spec import dev_spec
from gensyn_node.client import NodeClient
from gensyn_node.keyring import dev_account
from tests.integration.nodeproc import NODE, ROOT, NodeProcess, free_port, wait_until

NAMES = ("alice", "bob", "charlie")


def rpc(node: NodeProcess, method: str, *params):  # type: ignore[no-untyped-def]
    try:
        reply = httpx.post(node.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
                           timeout=30).json()
    except httpx.ConnectError:
        raise RuntimeError(f"node {node.base_path.name} is not serving:\n" + "".join(node.stderr_lines[-40:])) from None
    if "error" in reply:
        raise RuntimeError(reply["error"])
    return reply["result"]


def best(node: NodeProcess) -> int:
    return int(rpc(node, "chain_getHeader")["number"], 16)


def canonical_hashes(node: NodeProcess, upto: int) -> list[str]:
    return [rpc(node, "chain_getBlockHash", n) for n in range(1, upto + 1)]


def agree(nodes: list[NodeProcess], upto: int) -> bool:
    """Every node holds the same canonical hash at every height 1..upto."""
    first = canonical_hashes(nodes[0], upto)
    return None not in first and all(canonical_hashes(n, upto) == first for n in nodes[1:])


def wait_agree(nodes: list[NodeProcess], at_least: int, timeout: float = 90.0) -> int:
    """Wait until all nodes are past `at_least` and hold the same block just below the lowest
    tip (a header commits to its parent, so the same block there is the same chain below)."""
    def check() -> int:
        low = min(best(n) for n in nodes)
        return low if low > at_least and len({rpc(n, "chain_getBlockHash", low - 1) for n in nodes}) == 1 else 0

    return wait_until(check, timeout=timeout, interval=0.5)


@pytest.fixture(scope="module")
def validators(tmp_path_factory):
    base = tmp_path_factory.mktemp("net")
    spec = base / "spec.json"
    spec.write_text(dev_spec(3).to_json())
    nodes: list[NodeProcess] = []
    try:
        first = NodeProcess(base / NAMES[0], "--log", "info", chain=str(spec),
                            key_args=("--validator", "--key", "//Alice")).start(timeout=60)
        nodes.append(first)
        for name in NAMES[1:]:
            nodes.append(NodeProcess(base / name, "--log", "info", "--bootnodes", first.multiaddr, chain=str(spec),
                                     key_args=("--validator", "--key", f"//{name.capitalize()}")).start(timeout=60))
        yield spec, nodes
    finally:
        for node in nodes:
            node.stop()


def test_network_validators_produce_one_chain(validators):
    _spec, nodes = validators
    # The network becomes a mesh: the second and third learn each other from the bootnode.
    wait_until(lambda: all(rpc(n, "system_health")["peers"] == 2 for n in nodes), timeout=60, interval=0.5)
    low = wait_agree(nodes, at_least=9)
    assert agree(nodes, low - 1)  # the same hash at every height, read from each node
    authors = {node.peer_id for node in nodes if any("authored number=" in line for line in node.stderr_lines)}
    assert len(authors) >= 2, "blocks come from more than one validator"
    imported = [node for node in nodes if any("imported number=" in line and "peer=" in line for line in node.stderr_lines)]
    assert len(imported) == 3, "every validator imports the others' blocks"
    for node in nodes:
        assert rpc(node, "system_localPeerId") == node.peer_id
        peers = rpc(node, "system_peers")
        assert {p["peerId"] for p in peers} == {n.peer_id for n in nodes} - {node.peer_id}
        assert all(p["roles"] == "AUTHORITY" for p in peers)
        health = rpc(node, "system_health")
        assert health == {"peers": 2, "isSyncing": False, "shouldHavePeers": True}
    assert low > 9


def test_network_late_node_syncs_and_follows_the_tip(validators, tmp_path):
    spec, nodes = validators
    target = wait_agree(nodes, at_least=12)
    late = NodeProcess(tmp_path / "dave", "--log", "info", "--bootnodes", nodes[0].multiaddr, chain=str(spec),
                       key_args=()).start(timeout=60)
    try:
        wait_until(lambda: best(late) >= target, timeout=90, interval=0.5)
        wait_until(lambda: any("Syncing" in line and "bps, target=#" in line for line in late.stderr_lines), timeout=30)
        state = rpc(late, "system_syncState")
        assert state["highestBlock"] >= target and state["currentBlock"] >= target
        following = best(late)
        wait_until(lambda: best(late) > following + 2, timeout=60, interval=0.5)  # then gossip keeps it at the tip
        wait_agree([*nodes, late], at_least=following)
        _transfer_through_full_node_lands(late, nodes[0])
        peer_id = late.peer_id
        late.kill9()
        late.start(timeout=60)
        assert late.peer_id == peer_id, "the network key in the base path keeps the PeerId"
        wait_agree([*nodes, late], at_least=following + 3)
    finally:
        late.stop()


def _transfer_through_full_node_lands(full: NodeProcess, validator: NodeProcess) -> None:
    """A transaction submitted to a node that does not author is gossiped to the validators,
    lands in a block, and the block comes back to the full node."""
    sender, dest = dev_account("ferdie"), dev_account("eve")
    client, on_validator = NodeClient(full.url), NodeClient(validator.url)
    before = on_validator.balance(dest.public).free
    call = client.encode_call("Balances", "transfer_keep_alive", {"dest": ("Id", dest.public), "value": 5 * 10**12})
    client.rpc.call("author_submitExtrinsic", "0x" + client.sign(sender, call).hex())
    wait_until(lambda: on_validator.balance(dest.public).free == before + 5 * 10**12, timeout=60, interval=0.5)
    wait_until(lambda: client.balance(dest.public).free == before + 5 * 10**12, timeout=60, interval=0.5)
    client.close()
    on_validator.close()


def _multistream(sock: socket.socket, protocol: str) -> str:
    """Propose `protocol` by multistream-select; the listener's answer (the protocol, or "na")."""
    def frame(text: str) -> bytes:
        data = (text + "\n").encode()
        return bytes([len(data)]) + data

    def read_message() -> str:
        length = sock.recv(1)[0]
        data = b""
        while len(data) < length:
            chunk = sock.recv(length - len(data))
            if not chunk:
                break
            data += chunk
        return data.decode().strip()

    sock.sendall(frame("/multistream/1.0.0") + frame(protocol))
    assert read_message() == "/multistream/1.0.0"
    return read_message()


def test_network_plaintext_dial_is_refused(validators):
    _spec, nodes = validators
    for protocol, expected in (("/plaintext/2.0.0", "na"), ("/secio/1.0.0", "na"), ("/noise", "/noise")):
        with socket.create_connection(("127.0.0.1", nodes[0].p2p_port), timeout=20) as sock:
            sock.settimeout(20)
            assert _multistream(sock, protocol) == expected, protocol
    assert best(nodes[0]) >= 1  # and the node serves on


def test_network_garbage_peer_is_banned_and_others_keep_producing(validators, tmp_path):
    _spec, nodes = validators
    genesis = rpc(nodes[0], "chain_getBlockHash", 0)
    proc = subprocess.Popen([sys.executable, "-m", "tests.integration.garbage_peer", genesis, nodes[0].multiaddr,
                             str(free_port()), "60"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()  # type: ignore[arg-type]
    try:
        adversary = wait_until(lambda: next((ln.split()[1] for ln in lines if ln.startswith("identity")), None),
                               timeout=60)
        wait_until(lambda: any(ln.startswith("published") for ln in lines), timeout=60)
        assert lines.index("in mesh\n") < next(i for i, ln in enumerate(lines) if ln.startswith("published"))
        wait_until(lambda: any("peer banned" in ln and adversary in ln for ln in nodes[0].stderr_lines), timeout=60)
        assert any("peer reported" in ln and adversary in ln and "reason=invalid block" in ln for ln in nodes[0].stderr_lines)
        wait_until(lambda: adversary not in {p["peerId"] for p in rpc(nodes[0], "system_peers")}, timeout=30)
        # Garbage is never relayed, so no honest node is ever blamed for it, and the honest peers stay.
        honest = {n.peer_id for n in nodes}
        for node in nodes:
            banned = {ln.split("peer=")[1].split()[0] for ln in node.stderr_lines if "peer banned" in ln}
            assert not banned & honest
        assert {p["peerId"] for p in rpc(nodes[0], "system_peers")} == {n.peer_id for n in nodes[1:]}
        height = min(best(n) for n in nodes)
        wait_agree(nodes, at_least=height + 2)
    finally:
        proc.kill()
        proc.wait(10)


def test_network_busy_p2p_port_gets_one_clear_line(validators, tmp_path):
    spec, nodes = validators
    run = subprocess.run([*NODE, "run", "--chain", str(spec), "--base-path", str(tmp_path / "x"), "--rpc-port",
                          str(free_port()), "--no-prometheus", "--listen-addr",
                          f"/ip4/127.0.0.1/tcp/{nodes[0].p2p_port}"],
                         check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "p2p port" in run.stderr and "not free" in run.stderr and "Traceback" not in run.stderr
    assert len([ln for ln in run.stderr.splitlines() if ln.startswith("error:")]) == 1
