"""A hostile peer for the network tests: it speaks Noise and gossipsub correctly, dials the node
given on the command line, then publishes garbage on the chain's block topic. It prints one line
per event (`connected`, `in mesh`, `published N peers=N`) so the test can follow it.

Mode `blobs` (the fifth argument) lies instead: it publishes nothing and answers every blob
request with bytes that do not hash to the requested hash, printing `lied N` for each."""

from __future__ import annotations

import sys

import trio

from p2p.messages import BlocksRequest, Status, SyncedBlock
from p2p.network import Network, NetworkConfig
from p2p.reputation import Verdict


class Quiet:
    """Handlers that answer like an empty node and accept nothing."""

    def __init__(self, genesis_hash: bytes) -> None:
        self.genesis_hash = genesis_hash
        self.lies = 0

    def get_status(self) -> Status:
        return Status(0, self.genesis_hash, 0, self.genesis_hash, False)

    def get_blocks(self, request: BlocksRequest) -> list[SyncedBlock]:
        return []

    def get_blob(self, blob_hash: bytes) -> bytes | None:
        return None

    async def on_gossip_block(self, data: bytes, peer: str) -> Verdict:
        return Verdict.IGNORE

    async def on_gossip_transactions(self, batch: list[bytes], peer: str) -> Verdict:
        return Verdict.IGNORE

    async def on_vote_message(self, data: bytes, peer: str) -> Verdict:
        return Verdict.IGNORE


class BlobLiar(Quiet):
    """Claims to hold every blob, and serves other bytes for it."""

    def get_blob(self, blob_hash: bytes) -> bytes | None:
        self.lies += 1
        print(f"lied {self.lies}", flush=True)
        return b"not the blob of " + blob_hash


async def main(genesis_hex: str, bootnode: str, port: int, seconds: float, mode: str = "blocks") -> None:
    genesis = bytes.fromhex(genesis_hex.removeprefix("0x"))
    config = NetworkConfig(genesis_hash=genesis, node_key=b"\x66" * 32,
                           listen_addrs=[f"/ip4/127.0.0.1/tcp/{port}"], bootnodes=[bootnode])
    async with trio.open_nursery() as nursery:
        network = await nursery.start(Network(config, BlobLiar(genesis) if mode == "blobs" else Quiet(genesis)).run)
        print(f"identity {network.local_peer_id}", flush=True)
        await network.peer_connected.wait()
        print("connected", flush=True)
        if mode == "blobs":
            with trio.move_on_after(seconds):
                await trio.sleep_forever()  # answering requests is the network's own task
            nursery.cancel_scope.cancel()
            return
        with trio.fail_after(30):  # the node joins our block mesh at a heartbeat (1 s)
            while not network.block_mesh_peers():
                await trio.sleep(0.05)
        print("in mesh", flush=True)
        with trio.move_on_after(seconds):
            sent = 0
            while True:
                await network.publish_block(b"\x93garbage" + sent.to_bytes(4, "little"))
                sent += 1
                print(f"published {sent} peers={len(network.connected_peers())}", flush=True)
                await trio.sleep(0.25)
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), *sys.argv[5:6])
