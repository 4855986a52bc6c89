"""The node service: one trio program wiring the chain store, the tx pool, block authoring,
finality, the JSON-RPC server and metrics. Every long-lived part is a task in one nursery and
signals readiness with `task_status.started()`.

Data path: `submit_extrinsic` (RPC) → pool (validated against the best state) → gossip → the
slot's author builds, seals and imports the block through `import_block` and gossips it →
peers verify, re-execute (off the event loop) and commit it through the same `import_block` →
pool pruned and revalidated → subscribers notified (new heads, extrinsic watchers) → finality:
the gadget (`consensus.finality`, wired in `gensyn_node.finality`) votes, finalizes, and the
node notifies finalized-head subscribers and transaction watchers.

The network's seam: inbound finality messages go to `on_gossip_vote(data, peer)` (its verdict
scores the peer), outbound ones to `network.publish_vote(data)`, and a justification received
by sync to `import_justification(block_hash, data)`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import trio

from consensus.authoring import DoubleSignRefused, author_block, find_slot_author
from consensus.finality import Equivocation
from consensus.finality import Verdict as FinalityVerdict
from consensus.slots import compute_slot
from consensus.verification import make_seal_check
from gensyn_node.block_import import BlockImportError, ImportResult, execute_chain_for_import, import_block
from gensyn_node.chain_db import BestChange, ChainStore
from gensyn_node.chain_spec import ChainSpec
from gensyn_node.db.checkpoints import DEFAULT_CAPACITY_BYTES, CheckpointStore
from gensyn_node.db.pruning import BlocksPruning, StatePruning
from gensyn_node.equivocation import SlotWatch, encode_block_report, encode_vote_report
from gensyn_node.events import Broadcast, TxStatusHub
from gensyn_node.finality import make_gadget
from gensyn_node.keyring import Keypair
from gensyn_node.metrics import NodeMetrics
from gensyn_node.published_checkpoints import keep_published_checkpoints
from gensyn_node.rpc.limits import ConnectionStats
from gensyn_node.rpc.methods import build_api
from gensyn_node.rpc.server import RpcConfig, serve_rpc
from gensyn_node.sigcache import SignatureCache
from gensyn_node.signing_record import KVSigningRecord
from gensyn_node.txpool import Invalid, PoolError, TxPool
from p2p.messages import MAX_BLOCKS_RESPONSE, BlocksRequest, Status, SyncedBlock
from p2p.reputation import Verdict as PeerVerdict
from runtime.block import Block, Header
from runtime.codec.errors import CodecError
from runtime.executive import get_next_block_runtime, validate_transaction
from runtime.hashing import blake2_256
from runtime.storage import OverlayState
from runtime.transaction_validity import ValidTransaction
from runtime.trie import Trie

log = logging.getLogger(__name__)
MAX_BRANCH_WALK = 4096  # headers walked back from a requested fork tip
# One worker-thread call executes peers' blocks until this much time is spent (then the loop
# commits them): many small blocks share a hand-off, and a big one still goes alone.
EXECUTE_BUDGET_SECONDS = 0.05


@dataclass
class NodeConfig:
    spec: ChainSpec
    base_path: str
    name: str = "gensyn-node"
    validator: bool = False
    session_key: Keypair | None = None
    rpc: RpcConfig = field(default_factory=RpcConfig)
    rpc_enabled: bool = True
    prometheus_port: int | None = None
    p2p_port: int = 30333
    bootnodes: list[str] = field(default_factory=list)
    network_enabled: bool = True
    node_key: bytes | None = None          # ed25519 seed; None: <base_path>/network/secret
    listen_addrs: list[str] = field(default_factory=list)  # default: /ip4/0.0.0.0/tcp/<p2p_port>
    public_addrs: list[str] = field(default_factory=list)
    reserved_nodes: list[str] = field(default_factory=list)
    reserved_only: bool = False
    informant: Callable[[str], None] | None = None  # where progress lines go (the CLI: stderr)
    pool_max_count: int = 8192
    max_block_extrinsics: int = 5000
    state_pruning: StatePruning | None = None  # None: the database's recorded mode (256 for a new one)
    blocks_pruning: BlocksPruning | None = None
    checkpoint_capacity_bytes: int = DEFAULT_CAPACITY_BYTES


class Node:
    def __init__(self, config: NodeConfig, clock: Callable[[], float] = time.time):
        self.config = config
        self.clock = clock
        self.spec = config.spec
        self.genesis, _storage, genesis_nodes = config.spec.build_genesis()
        self.params = config.spec.params
        self.slot_ms = self.params.slot_duration_ms
        self.store = ChainStore.open(f"{config.base_path}/db", state_pruning=config.state_pruning,
                                     blocks_pruning=config.blocks_pruning)
        try:
            self.store.initialize(self.genesis, genesis_nodes)
            # At startup, not inside the first block import (a second at 1M accounts, a slot lost).
            self.store.load_node_counts()
        except BaseException:
            self.store.close()
            raise
        self.checkpoints = CheckpointStore(self.store.kv, capacity_bytes=config.checkpoint_capacity_bytes,
                                           clock_ms=lambda: int(self.clock() * 1000))
        self.verify = SignatureCache()
        self.signing_record = KVSigningRecord(self.store.kv)
        self.pool = TxPool(self._validate_for_pool, blake2_256, max_count=config.pool_max_count, clock=clock)
        self.metrics = NodeMetrics()
        self.rpc_connections = ConnectionStats()
        self.metrics.watch_rpc_connections(self.rpc_connections)
        self.seal_check = make_seal_check(self.slot_ms, lambda: int(self.clock() * 1000))
        self.new_head = Broadcast()
        self.finalized_head = Broadcast()
        self.tx_status = TxStatusHub()
        self.pool.on_event(self.tx_status.on_pool_event)
        self._best_state: tuple[bytes, Trie] | None = None
        self.started_at = clock()
        self.rpc_port: int | None = None
        self.network: Any = None  # p2p.network.Network once `run` starts it
        self.sync: Any = None     # gensyn_node.sync.ChainSync, with the network
        self._authoring_paused = False  # major-syncing: no slot is claimed (logged when it changes)
        self._import_lock = trio.Lock()
        self.slot_watch = SlotWatch()
        self._vote_peer: str | None = None  # the peer whose finality message the gadget is handling
        self.gadget = make_gadget(self.store, self.slot_ms, self._now_ms(), self._publish_vote, self._on_finalized,
                                  config.session_key if config.validator else None, self.signing_record,
                                  self._on_vote_equivocation, self._on_unknown_vote_target)
        self._update_metrics()

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # --- state access ------------------------------------------------------------------------

    def best_state(self) -> tuple[Header, Trie]:
        best = self.store.best_header()
        if self._best_state is None or self._best_state[0] != best.hash:
            self._best_state = (best.hash, self.store.state_at(best.hash))
        return best, self._best_state[1]

    def _validate_for_pool(self, data: bytes, _at: Any) -> ValidTransaction:
        best, state = self.best_state()
        valid, _xt = validate_transaction(OverlayState(state.get, state.iter_prefix), best, data, self.verify)
        return valid

    # --- transactions ------------------------------------------------------------------------

    def submit_extrinsic(self, data: bytes) -> bytes:
        """Validate and pool a transaction; raises PoolError (with the reason) when refused."""
        best = self.store.best_header()
        tx_hash, _status = self.pool.submit(data, best.hash, best.number)
        self.metrics.pool_size.set(len(self.pool))
        if self.network is not None:
            self.network.queue_transaction(data)
        return tx_hash

    # --- blocks ------------------------------------------------------------------------------

    def import_block(self, block: Block, executed: Any = None, *, seal_checked: bool = False) -> ImportResult:
        """The node's one entry for new blocks (its own, gossip's and sync's); `executed` and
        `seal_checked` as `block_import.import_block` takes them."""
        previous_best = self.store.best_hash
        with self.metrics.import_seconds.time():
            try:
                result = import_block(self.store, block, seal_check=self.seal_check, executed=executed,
                                      verify=self.verify, seal_checked=seal_checked)
            except BlockImportError as exc:
                self._watch_refused(exc)
                raise
        if result.status.value == "best":
            self._on_new_best(block, previous_best, result)
        if result.status.value != "known":
            keep_published_checkpoints(self.store, self.checkpoints, block)
            self._watch_slot(block.header)
            self.gadget.on_block(self._now_ms())
        return result

    def _watch_slot(self, header: Header) -> None:
        """Report `header` if its author sealed another header for its slot."""
        earlier = self.slot_watch.on_header(header)
        if earlier is not None:
            self._submit_report("block", lambda runtime: encode_block_report(runtime, earlier, header))

    def _watch_refused(self, exc: BlockImportError) -> None:
        """A block refused only as unfinalizable, whose seal and leader passed, still shows what
        its author signed: the twin of a block finalized before it arrived is an equivocation."""
        if exc.sealed_header is not None:
            self._watch_slot(exc.sealed_header)

    async def import_block_async(self, block: Block) -> ImportResult:
        """A peer's block (gossip or sync), as `import_chain_async` imports it."""
        results: list[ImportResult] = []
        await self.import_chain_async([block], lambda _block, result: results.append(result))
        return results[0]

    async def import_chain_async(self, blocks: Sequence[Block],
                                 on_imported: Callable[[Block, ImportResult], None]) -> None:
        """Peers' blocks, each the parent of the next (a sync range, or one gossip block):
        verified and re-executed in a worker thread, so RPC, gossip and the slot timer keep
        running, and committed here on the event loop, each reported to `on_imported`. One
        thread call executes as many blocks as fit its time budget, each on the state the one
        before leaves, so small blocks do not each pay a thread hand-off; the loop gets a turn
        between commits. One import at a time, so that blocks commit in the order they arrive.
        Raises the BlockImportError of the first block refused; the blocks before it are
        imported."""
        async with self._import_lock:
            index = 0
            while index < len(blocks):
                if self.store.has_block(blocks[index].header.hash):
                    on_imported(blocks[index], self.import_block(blocks[index]))
                    index += 1
                    continue
                pending = blocks[index:]
                started = time.perf_counter()
                executed, refused = await trio.to_thread.run_sync(partial(
                    execute_chain_for_import, self.store, pending, seal_check=self.seal_check, verify=self.verify,
                    budget_seconds=EXECUTE_BUDGET_SECONDS))
                share = (time.perf_counter() - started) / max(len(executed), 1)
                for block, result in zip(pending, executed, strict=False):
                    imported = self.import_block(block, result, seal_checked=True)
                    on_imported(block, replace(imported, execute_seconds=share))
                    index += 1
                    await trio.lowlevel.checkpoint()
                if refused is not None:
                    self._watch_refused(refused)
                    raise refused

    def _on_new_best(self, block: Block, previous_best: bytes, result: ImportResult) -> None:
        header = block.header
        if result.reorg:
            self._switch_fork(self.store.compare_forks(self.store.require_header(previous_best), header), header)
        else:
            included = [blake2_256(xt) for xt in block.extrinsics]
            self.pool.on_block_imported(included, header.hash, header.number)
            self.tx_status.on_block(header.hash, included)
        self.new_head.publish(header)
        self._update_metrics()

    def _switch_fork(self, change: BestChange, best: Header) -> None:
        """The best chain moved to another fork (a longer one imported, or finality's): the pool
        drops what any block of the new branch included (see TxPool.on_reorg) and takes back
        the abandoned blocks' transactions, and watchers see `retracted`, then `inBlock` of the
        block on the new chain."""
        self.tx_status.on_retracted(change.retracted_blocks)
        enacted = self._enacted(change.fork_number, best)
        self.pool.on_reorg(change.retracted, best.hash, best.number, [h for _, included in enacted for h in included])
        for block_hash, included in enacted:
            self.tx_status.on_block(block_hash, included)

    # --- finality ----------------------------------------------------------------------------

    def _on_finalized(self, header: Header, change: BestChange | None) -> None:
        """The gadget finalized `header` (stored with its justification). When that moved the
        best chain to another fork, it is a reorg as one by import is: the pool takes back the
        abandoned blocks' transactions and drops those the new chain included, and watchers see
        `retracted`, then `inBlock` of the block on the new chain."""
        if change is not None:
            best = self.store.best_header()
            log.warning("best chain moved to the finalized fork best=#%d retracted_blocks=%d", best.number,
                        len(change.retracted_blocks))
            self._switch_fork(change, best)
            self.new_head.publish(best)
        self.tx_status.on_finalized(header.hash, self.store)
        self.finalized_head.publish(header)
        self._update_metrics()

    def _enacted(self, fork_number: int, best: Header) -> list[tuple[bytes, list[bytes]]]:
        """The canonical blocks above the fork point, oldest first, each with the hashes of its
        extrinsics."""
        enacted: list[tuple[bytes, list[bytes]]] = []
        for number in range(fork_number + 1, best.number + 1):
            block_hash = self.store.hash_at(number)
            if block_hash is not None:
                enacted.append((block_hash, [blake2_256(xt) for xt in self.store.get_body(block_hash) or ()]))
        return enacted

    def _publish_vote(self, data: bytes) -> None:
        if self.network is not None:
            self.network.queue_vote(data)

    def _on_vote_equivocation(self, equivocation: Equivocation) -> None:
        self._submit_report("vote", lambda runtime: encode_vote_report(runtime, equivocation))

    def _submit_report(self, kind: str, encode: Callable[[Any], bytes]) -> None:
        """Put an equivocation report in our pool (and so, through gossip, in everyone's)."""
        _best, state = self.best_state()
        data = encode(get_next_block_runtime(OverlayState(state.get, state.iter_prefix)))
        try:
            tx_hash = self.submit_extrinsic(data)
        except PoolError as exc:  # already reported, already pooled: nothing more to do
            log.info("equivocation report not pooled kind=%s reason=%s", kind, exc)
            return
        log.warning("equivocation reported kind=%s tx=0x%s", kind, tx_hash.hex()[:16])

    def _on_unknown_vote_target(self, block_hash: bytes, number: int) -> None:
        """A vote names a block we lack (a fork we never saw, say across a healed partition):
        until we hold it the vote cannot count, and a round may wait on it forever. Fetch it."""
        if self.sync is not None:
            self.sync.want_voted_block(block_hash, number, self._vote_peer)

    def on_gossip_vote(self, data: bytes, peer: Any = None) -> FinalityVerdict:
        """A finality message from the network; the verdict (accept, ignore, reject) scores the peer."""
        self._vote_peer = peer
        try:
            verdict = self.gadget.on_message(data, self._now_ms())
        finally:
            self._vote_peer = None
        if verdict.kind == "reject":
            log.info("finality message rejected peer=%s reason=%s", peer, verdict.reason)
        return verdict

    def import_justification(self, block_hash: bytes, data: bytes) -> bool:
        """A justification received with a block (sync): checked, then the block is final.
        Raises consensus.finality_messages.JustificationError with the reason."""
        return self.gadget.import_justification(block_hash, data, self._now_ms())

    async def run_finality(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The gadget's clock: timeouts and resending votes."""
        task_status.started()
        interval = max(0.05, self.slot_ms / 4000)
        while True:
            try:
                self.gadget.on_tick(self._now_ms())
            except Exception:  # an edge: a bug in one tick must not stop finality for good
                log.exception("finality tick failed")
            await trio.sleep(interval)

    def _update_metrics(self) -> None:
        if self.network is not None:
            self.metrics.peers.set(len(self.network.peers))
            self.metrics.gossip_received.set(self.network.gossip_received)
            self.metrics.gossip_sent.set(self.network.gossip_sent)
            for kind, count in self.network.gossip_by_kind.items():
                self.metrics.gossip_by_kind.labels(kind=kind).set(count)
        self.metrics.best.set(self.store.best_header().number)
        self.metrics.finalized.set(self.store.finalized_header().number)
        self.metrics.pool_size.set(len(self.pool))

    # --- authoring ---------------------------------------------------------------------------

    def set_session_key(self, key: Keypair) -> None:
        """Sign with `key` from the next slot (author_insertKey / author_rotateKeys)."""
        self.config.session_key = key
        if self.config.validator:
            self.gadget.signer = key
        log.info("session key set public=0x%s", key.public.hex())

    def try_author(self, slot: int) -> ImportResult | None:
        key = self.config.session_key
        if key is None:
            return None
        parent, state = self.best_state()
        if parent.number > 0 and parent.slot_and_author()[0] >= slot:
            return None
        author = find_slot_author(state, slot, key.public)
        if author is None:
            return None
        candidates = ((tx.hash, tx.data) for tx in self.pool.ready())
        try:
            authored = author_block(state, parent, slot, self.slot_ms, author, key, self.signing_record, candidates,
                                    self.config.max_block_extrinsics, self.verify)
        except DoubleSignRefused as exc:
            log.warning("authoring skipped slot=%d reason=%s", slot, exc)
            return None
        for tx_hash, reason in authored.invalid:
            self.pool.report_invalid(tx_hash, reason)
        result = self.import_block(authored.block, authored.executed)
        self.metrics.authored.inc()
        log.info("authored number=%d slot=%d extrinsics=%d hash=0x%s", authored.block.header.number, slot,
                 len(authored.block.extrinsics), authored.block.header.hash.hex()[:16])
        return result

    async def run_authoring(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            now_ms = self.clock() * 1000
            slot = compute_slot(int(now_ms), self.slot_ms)
            try:
                result = self.claim_slot(slot)
                if result is not None and self.network is not None:
                    block = self.store.get_block(result.block_hash)
                    if block is not None:
                        await self.network.publish_block(block.encode())
            except BlockImportError as exc:
                log.error("own block rejected slot=%d reason=%s", slot, exc.reason)
            except Exception:  # an edge: one slot's failure must not stop the validator
                log.exception("authoring failed slot=%d", slot)
            next_start = (slot + 1) * self.slot_ms
            await trio.sleep(max(0.0, (next_start - self.clock() * 1000) / 1000))

    def claim_slot(self, slot: int) -> ImportResult | None:
        """The block of `slot` if this node leads it, unless it is major-syncing."""
        return None if self._major_syncing() else self.try_author(slot)

    def _major_syncing(self) -> bool:
        syncing = self.sync is not None and self.sync.is_major_syncing()
        if syncing != self._authoring_paused:
            self._authoring_paused = syncing
            log.info("authoring %s best=%d", "paused: major-syncing" if syncing else "resumed",
                     self.store.best_header().number)
        if syncing:
            self.metrics.slots_skipped_syncing.inc()
        return syncing

    # --- network handlers (p2p.network.NetworkHandlers) ----------------------------------------

    def get_status(self) -> Status:
        best, finalized = self.store.best_header(), self.store.finalized_header()
        return Status(best.number, best.hash, finalized.number, finalized.hash, self.config.validator)

    def get_blocks(self, request: BlocksRequest) -> list[SyncedBlock]:
        """Canonical blocks from `request.start` (or those of `request.tip`'s branch), each with
        its stored justification."""
        hashes = self._branch_hashes(request) if request.tip is not None else \
            [self.store.hash_at(n) for n in range(request.start, request.start + request.count)]
        blocks: list[SyncedBlock] = []
        size = 0
        for block_hash in hashes:
            block = self.store.get_block(block_hash) if block_hash is not None else None
            if block is None:
                break
            data = block.encode()
            justification = self.store.get_justification(block.header.hash)
            size += len(data) + len(justification or b"") + 16
            if blocks and size > MAX_BLOCKS_RESPONSE - 1024:
                break
            blocks.append(SyncedBlock(data, justification))
        return blocks

    def _branch_hashes(self, request: BlocksRequest) -> list[bytes | None]:
        """The hashes from #start up to the tip on the tip's branch; none if we lack the tip or
        it lies too far above start to walk."""
        tip = self.store.get_header(request.tip) if request.tip is not None else None
        if tip is None or tip.number < request.start or tip.number - request.start > MAX_BRANCH_WALK:
            return []
        path: list[bytes | None] = []
        header: Header | None = tip
        while header is not None and header.number >= request.start:
            path.append(header.hash)
            header = self.store.get_header(header.parent_hash)
        return path[::-1][:request.count]

    def get_blob(self, blob_hash: bytes) -> bytes | None:
        """A blob for a peer: only bytes that still hash to their key are served."""
        from gensyn_node.db.kv import StoreCorruptError

        try:
            return self.checkpoints.get(blob_hash)
        except StoreCorruptError as exc:
            log.error("checkpoint not served reason=%s", exc)
            return None

    async def fetch_blob(self, blob_hash: bytes) -> bytes | None:
        """A blob this node lacks, from its peers (checked against its hash, then stored)."""
        from gensyn_node.blob_fetch import fetch_and_store_blob

        return await fetch_and_store_blob(self.network, self.checkpoints, blob_hash)

    def _on_peer_status(self, _peer: str, status: Any) -> None:
        """A peer's status: when it is ahead of us, sync looks now rather than at its next poll."""
        if self.sync is not None and status.best_number > self.store.best_header().number:
            self.sync.wake()

    async def on_gossip_block(self, data: bytes, peer: str) -> PeerVerdict:
        """A block announced by a peer: ignore what is known or not ours to judge yet (its
        parent unknown: sync fetches it), punish what is invalid."""
        try:
            block = Block.decode(data)
        except CodecError as exc:
            log.info("gossip block undecodable peer=%s reason=%s", peer, exc)
            return PeerVerdict.REJECT
        if self.store.has_block(block.header.hash):
            return PeerVerdict.IGNORE
        try:
            result = await self.import_block_async(block)
        except BlockImportError as exc:
            if exc.unknown_parent and self.sync is not None:
                self.sync.hold(block, peer)  # imported once sync brings its parent
                log.info("gossip block held number=%d peer=%s reason=%s", block.header.number, peer, exc.reason)
                return PeerVerdict.IGNORE
            log.info("gossip block refused number=%d peer=%s kind=%s reason=%s", block.header.number, peer,
                     exc.kind.value, exc.reason)
            return PeerVerdict.REJECT if exc.kind.is_punishable else PeerVerdict.IGNORE
        log.info("imported number=%d hash=0x%s peer=%s status=%s ms=%.1f", result.number, result.block_hash.hex()[:16],
                 peer, result.status.value, result.seconds * 1000)
        if self.sync is not None:
            self.sync.on_imported()  # a held block may have waited for this one
        return PeerVerdict.ACCEPT

    async def on_gossip_transactions(self, batch: list[bytes], peer: str) -> PeerVerdict:
        """Transactions a peer relays: pooled like a client's (the gossip layer relays them on);
        one that no honest node would relay (a bad signature, undecodable) costs the peer."""
        best = self.store.best_header()
        bad = 0
        for data in batch:
            try:
                self.pool.submit(data, best.hash, best.number)
            except Invalid as exc:
                if exc.kind in ("BadProof", "BadSigner") or "decode" in exc.reason:
                    bad += 1
            except PoolError:
                pass  # known, banned a while, or the pool is full: not the peer's fault
        self.metrics.pool_size.set(len(self.pool))
        return PeerVerdict.REJECT if bad else PeerVerdict.ACCEPT

    async def on_vote_message(self, data: bytes, peer: str) -> PeerVerdict:
        """A message of the votes topic, judged by the finality gadget (`on_gossip_vote`)."""
        return PeerVerdict(self.on_gossip_vote(data, peer).kind)

    def _inform(self, line: str) -> None:
        if self.config.informant is not None:
            self.config.informant(line)
        else:
            log.info("%s", line)

    def _network_config(self) -> Any:
        from p2p.network import NetworkConfig
        from p2p.nodekey import load_or_create_node_key

        seed = self.config.node_key or load_or_create_node_key(self.config.base_path)[0]
        listen = self.config.listen_addrs or [f"/ip4/0.0.0.0/tcp/{self.config.p2p_port}"]
        return NetworkConfig(genesis_hash=self.genesis.hash, node_key=seed, listen_addrs=listen,
                             bootnodes=list(self.config.bootnodes), public_addrs=list(self.config.public_addrs),
                             reserved_nodes=list(self.config.reserved_nodes), reserved_only=self.config.reserved_only)

    async def _start_network(self, nursery: trio.Nursery) -> None:
        from gensyn_node.sync import ChainSync
        from p2p.network import Network

        network = Network(self._network_config(), self)
        self._inform(f"🏷  Local node identity is: {network.local_peer_id}")
        self.network = await nursery.start(network.run)
        self.sync = ChainSync(self, self.network, self._inform)
        self.network.on_status = self._on_peer_status
        await nursery.start(self.sync.run)

    # --- lifecycle ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[Node] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                if self.config.rpc_enabled:
                    api = build_api(self)
                    self.rpc_port = await nursery.start(
                        partial(serve_rpc, api, self.config.rpc, stats=self.rpc_connections))
                if self.config.prometheus_port is not None:
                    self.metrics.serve(self.config.prometheus_port)
                if self.config.network_enabled:
                    await self._start_network(nursery)
                await nursery.start(self.run_finality)
                if self.config.validator:
                    await nursery.start(self.run_authoring)
                log.info("node started name=%s chain=%s best=%d rpc_port=%s", self.config.name, self.spec.id,
                         self.store.best_header().number, self.rpc_port)
                task_status.started(self)
                await trio.sleep_forever()
        finally:
            self.close()

    def close(self) -> None:
        self.metrics.stop()
        self.store.close()

