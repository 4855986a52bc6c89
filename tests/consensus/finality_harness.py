"""An in-memory network of finality gadgets: each node has its own view of a shared block tree
(it only knows the blocks it was given), its own signing record, and a bus that delivers
messages in shuffled order, with drops, under a simulated clock."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from consensus.finality import FinalityConfig, FinalityGadget
from consensus.finality_messages import Commit, VoterSet, decode_message
from consensus.fork_choice import is_descendant, select_best, validate_finalizable
from consensus.signing import DoubleSignRefused, compute_next_vote_record
from runtime.block import Header
from runtime.crypto import ED25519
from runtime.hashing import blake2_256

GENESIS = Header(bytes(32), 0, b"\x01" * 32, b"\x02" * 32)


def make_keys(n):
    from gensyn_node.keyring import keypair_from_seed

    return [keypair_from_seed(bytes([i + 1]) * 32, ED25519) for i in range(n)]


def child(parent: Header, tag: int = 0) -> Header:
    return Header(parent.hash, parent.number + 1, blake2_256(parent.hash + bytes([tag])), bytes(32))


class MemoryRecord:
    def __init__(self):
        self.slots = {}
        self.votes = {}

    def record_slot(self, key, slot):
        if self.slots.get(key, -1) >= slot:
            raise DoubleSignRefused("slot")
        self.slots[key] = slot

    def record_vote(self, key, set_id, round_number, step, target, estimate):
        self.votes[key] = compute_next_vote_record(self.votes.get(key), set_id, round_number, step, target, estimate)

    def get_vote_record(self, key):
        return self.votes.get(key)


class MemoryChain:
    """One node's view of the block tree; `voter_sets` maps a block number to the set its
    state elects from that number on (the set stays until the next entry)."""

    def __init__(self, voter_sets: dict[int, VoterSet]):
        self.headers = {GENESIS.hash: GENESIS}
        self.order = [GENESIS.hash]
        self.finalized = GENESIS
        self.best = GENESIS
        self.justifications: dict[bytes, bytes] = {}
        self.finalized_log: list[Header] = []
        self.voter_sets = voter_sets

    def add(self, header: Header) -> None:
        if header.hash in self.headers or header.parent_hash not in self.headers:
            return
        if not is_descendant(self, self.headers[header.parent_hash], self.finalized):
            return
        self.headers[header.hash] = header
        self.order.append(header.hash)
        if header.number > self.best.number:
            self.best = header

    def get_header(self, block_hash):
        return self.headers.get(block_hash)

    def hash_at(self, number):
        header = self.best
        while header.number > number:
            header = self.headers[header.parent_hash]
        return header.hash if header.number == number else None

    def best_header(self):
        return self.best

    def finalized_header(self):
        return self.finalized

    def get_voter_set(self, block_hash):
        number = self.headers[block_hash].number
        return self.voter_sets[max(n for n in self.voter_sets if n <= number)]

    def finalize(self, block_hash, justification):
        header = self.headers[block_hash]
        validate_finalizable(self, header, self.finalized)
        self.finalized = header
        self.finalized_log.append(header)
        self.justifications[block_hash] = justification
        leaves = [self.headers[h] for h in self.order]
        if not is_descendant(self, self.best, header):
            self.best = select_best(self, leaves, header)

    def finalized_chain(self) -> dict[int, bytes]:
        """Every finalized block by number (ancestors of the last finalized included)."""
        out = {}
        header = self.finalized
        while True:
            out[header.number] = header.hash
            if header.number == 0:
                return out
            header = self.headers[header.parent_hash]


@dataclass
class Node:
    name: str
    chain: MemoryChain
    gadget: FinalityGadget | None
    record: MemoryRecord
    key: object
    outbox: list[bytes] = field(default_factory=list)
    equivocations: list = field(default_factory=list)
    wanted: list[tuple[bytes, int]] = field(default_factory=list)  # blocks its votes named that it lacked
    online: bool = True


class Network:
    def __init__(self, n_voters, *, stakes=None, seed=0, drop=0.0, voter_sets=None, config=None, observers=0):
        self.rng = random.Random(seed)
        self.keys = make_keys(n_voters)
        stakes = stakes or [100] * n_voters
        self.voter_sets = voter_sets or {0: VoterSet(0, tuple((k.public, s) for k, s in zip(self.keys, stakes)))}
        self.config = config or FinalityConfig(genesis_hash=GENESIS.hash, precommit_wait_ms=2000,
                                               idle_round_ms=5000, rebroadcast_ms=2000)
        self.drop = drop
        self.now = 0
        self.queue: list[tuple[int, str, bytes]] = []  # (deliver at, destination, data)
        self.nodes: dict[str, Node] = {}
        self.blocks: dict[bytes, Header] = {GENESIS.hash: GENESIS}
        for i, key in enumerate(self.keys + [None] * observers):
            name = f"n{i}"
            chain = MemoryChain(self.voter_sets)
            node = Node(name, chain, None, MemoryRecord(), key)
            self.nodes[name] = node
            self.start(name)
        self.partition: list[set[str]] | None = None
        self.cut: set[tuple[str, str]] = set()  # (from, to): links that lose every message
        self.commits_only: set[str] = set()  # nodes that receive commit messages and no votes
        self.sent: list[tuple[str, bytes]] = []  # every message broadcast: (sender, data)

    def start(self, name):
        node = self.nodes[name]
        node.online = True

        def send(data, node=node):
            node.outbox.append(data)

        def want(block_hash, number, node=node):
            node.wanted.append((block_hash, number))

        node.gadget = FinalityGadget(node.chain, self.config, send, self.now, signer=node.key, record=node.record,
                                     on_equivocation=node.equivocations.append, on_unknown_target=want)

    def crash(self, name):
        node = self.nodes[name]
        node.online = False
        node.gadget = None
        node.outbox.clear()

    def can_reach(self, a, b):
        if (a, b) in self.cut:
            return False
        if self.partition is None:
            return True
        return any(a in side and b in side for side in self.partition)

    def give_block(self, header, names=None):
        self.blocks[header.hash] = header
        for name in names or self.nodes:
            node = self.nodes[name]
            node.chain.add(header)
            if node.gadget is not None:
                node.gadget.on_block(self.now)

    def sync_blocks(self, name):
        """A restarted or lagging node learns every block (in order)."""
        for header in sorted(self.blocks.values(), key=lambda h: h.number):
            self.nodes[name].chain.add(header)

    def run(self, ms, step=100, on_step=None):
        end = self.now + ms
        while self.now < end:
            self.now += step
            self._flush()
            due = [m for m in self.queue if m[0] <= self.now]
            self.queue = [m for m in self.queue if m[0] > self.now]
            self.rng.shuffle(due)
            for _at, dest, data in due:
                node = self.nodes[dest]
                if node.gadget is not None:
                    node.gadget.on_message(data, self.now)
            for node in self.nodes.values():
                if node.gadget is not None:
                    node.gadget.on_tick(self.now)
            if on_step is not None:
                on_step(self)
            self.assert_safe()
        self._flush()

    def _flush(self):
        for node in self.nodes.values():
            for data in node.outbox:
                self.sent.append((node.name, data))
                is_commit = isinstance(decode_message(data), Commit)
                for other in self.nodes:
                    if other == node.name or not self.can_reach(node.name, other):
                        continue
                    if other in self.commits_only and not is_commit:
                        continue
                    if self.rng.random() < self.drop:
                        continue
                    self.queue.append((self.now + self.rng.randint(10, 300), other, data))
            node.outbox.clear()

    def assert_safe(self):
        """No two nodes ever finalized different blocks at one height."""
        seen: dict[int, bytes] = {}
        for node in self.nodes.values():
            for number, block_hash in node.chain.finalized_chain().items():
                assert seen.setdefault(number, block_hash) == block_hash, f"conflicting finality at #{number}"

    def finalized_numbers(self, names=None):
        return {n: self.nodes[n].chain.finalized.number for n in (names or self.nodes)}
