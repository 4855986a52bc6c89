"""The chain database: headers, bodies, the canonical number index, justifications, state trie
nodes and the meta pointers (best, finalized, genesis), on one key-value store.

Data path step: block import commits a block with `commit_block`, which writes everything of
that block, the meta pointers included, in ONE atomic synced batch. Reopening the store gives
back exactly the last committed head and its state root; a killed node loses nothing it
acknowledged and never sees half a block.

Pruning (gensyn_node/db/pruning.py for the modes, state_db.py for the counts) is driven from here,
whoever finalizes: `set_finalized` folds the journals of the blocks whose states leave the window,
discards the forks finality ruled out and drops old bodies, in bounded atomic steps after the
finality pointer; opening the store finishes any step a kill interrupted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from consensus.fork_choice import ForkChoiceError, is_descendant, select_best, validate_finalizable
from gensyn_node.db import keys
from gensyn_node.db.kv import KVStore, open_kv
from gensyn_node.db.pruning import (
    ARCHIVE,
    BlocksPruning,
    PruningModeError,
    StatePruning,
    check_blocks_mode,
    check_state_mode,
)
from gensyn_node.db.state_db import Batch, NodeCounts, StateDbError, StateJournal, count_extra_positions
from gensyn_node.db.trie_store import open_state, trie_node_puts
from runtime.block import Block, Header
from runtime.codec import canonical
from runtime.codec.errors import CodecError
from runtime.executive import ExecutedBlock
from runtime.trie import NodeCache, Trie

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_LEAVES = 1024  # forks above the finalized block; pruned on finalization
# Work per atomic step of pruning: small enough that finalizing a long run of blocks at once (or
# catching up after a crash) never builds one huge batch.
BLOCKS_PER_PRUNE_STEP = 8
BODIES_PER_PRUNE_STEP = 256
# Decoded trie nodes kept in memory: all branches of a 1M-account state (~70k) and the most
# recently used leaves; with LevelDB's own cache this keeps a 1M-account node under 400 MB.
DEFAULT_NODE_CACHE_BYTES = 160 * 1024 * 1024


@dataclass(frozen=True)
class BestChange:
    """The best chain moved to another fork: where the two forked, and the blocks that left
    the canonical chain with their extrinsics (read before pruning drops their bodies), for
    the tx pool to take back."""

    fork_number: int  # the number of the common ancestor of the old and the new best block
    retracted_blocks: list[bytes]  # hashes, from the fork point up
    retracted: list[bytes]


class ChainStoreError(Exception):
    """The database does not hold a consistent chain (or another chain's)."""


class GenesisMismatch(ChainStoreError):
    """The database was created for another chain spec."""


class FinalityRevertError(ChainStoreError, ForkChoiceError):
    """Finalizing this block would revert a finalized block (or it is unknown)."""


class PruningMismatch(ChainStoreError):
    """The database was created with another kind of pruning than the one asked for."""


class StateDiscarded(ChainStoreError):
    """The block's state was pruned (Substrate's words: "State already discarded for <hash>")."""

    def __init__(self, block_hash: bytes):
        super().__init__(f"State already discarded for 0x{block_hash.hex()}")
        self.block_hash = block_hash


class ChainStore:
    """`state_pruning` / `blocks_pruning` None: the modes recorded in the database (for a new one,
    256 and archive-canonical); `initialize` checks given ones against the recorded ones."""

    def __init__(self, kv: KVStore, cache: NodeCache | None = None, *,
                 state_pruning: StatePruning | None = None, blocks_pruning: BlocksPruning | None = None):
        self.kv = kv
        # (an empty cache is falsy: `cache or ...` would drop the one passed in)
        self.cache = cache if cache is not None else NodeCache(max_bytes=DEFAULT_NODE_CACHE_BYTES)
        self._header_cache: dict[bytes, Header] = {}
        self._wanted = (state_pruning, blocks_pruning)
        self._counts = NodeCounts(kv)
        self.state_pruning = state_pruning or StatePruning()
        self.blocks_pruning = blocks_pruning or BlocksPruning()
        if kv.get(keys.META_GENESIS) is not None:
            self._open_modes()

    @classmethod
    def open(cls, path: str | None, *, state_pruning: StatePruning | None = None,
             blocks_pruning: BlocksPruning | None = None) -> ChainStore:
        """The store at `path`; PruningMismatch if it was made with another kind of pruning."""
        kv = open_kv(path)
        try:
            return cls(kv, state_pruning=state_pruning, blocks_pruning=blocks_pruning)
        except BaseException:
            kv.close()
            raise

    def close(self) -> None:
        self.kv.close()

    def load_node_counts(self) -> None:
        """Read the node counts and build the node filter now rather than in the first commit
        (a scan of every trie node key: about a second at 1M accounts). Archive stores skip it."""
        if not self.state_pruning.is_archive:
            self._counts.load()

    # --- genesis -------------------------------------------------------------------------------

    def initialize(self, genesis: Header, genesis_nodes: dict[bytes, bytes]) -> None:
        """Write genesis into an empty store, or verify that the store holds this chain (and was
        made with the same kinds of pruning) and finish any pruning a kill interrupted."""
        existing = self.kv.get(keys.META_GENESIS)
        if existing is not None:
            if existing != genesis.hash:
                raise GenesisMismatch(
                    f"the database holds chain {existing.hex()[:16]}..., not this spec's genesis "
                    f"{genesis.hash.hex()[:16]}... (use another --base-path or purge-chain)")
            self.prune()
            return
        genesis_hash = genesis.hash
        batch = Batch(self.kv, self._counts)
        if self.state_pruning.is_archive:
            batch.puts.update(trie_node_puts(genesis_nodes))
        else:
            batch.add_nodes(genesis_nodes, count_extra_positions(genesis.state_root, genesis_nodes))
        batch.put(keys.header_key(genesis_hash), genesis.encode())
        batch.put(keys.body_key(genesis_hash), canonical.encode([]))
        batch.put(keys.number_key(0), genesis_hash)
        batch.put(keys.META_GENESIS, genesis_hash)
        batch.put(keys.META_BEST, genesis_hash)
        batch.put(keys.META_FINALIZED, genesis_hash)
        batch.put(keys.META_LEAVES, canonical.encode([genesis_hash]))
        batch.put(keys.META_STATE_PRUNING, str(self.state_pruning).encode())
        batch.put(keys.META_BLOCKS_PRUNING, str(self.blocks_pruning).encode())
        batch.put(keys.META_STATE_PRUNED, _u64(0))
        batch.put(keys.META_BODIES_PRUNED, _u64(0))
        batch.write()
        log.info("genesis written hash=0x%s state_pruning=%s blocks_pruning=%s", genesis_hash.hex(),
                 self.state_pruning, self.blocks_pruning)

    def _open_modes(self) -> None:
        """Take the recorded pruning modes, refusing a wanted mode of another kind (a database
        from before pruning existed is an archive)."""
        state_raw = self.kv.get(keys.META_STATE_PRUNING)
        blocks_raw = self.kv.get(keys.META_BLOCKS_PRUNING)
        try:
            recorded_state = StatePruning.parse(state_raw.decode() if state_raw else ARCHIVE)
            recorded_blocks = BlocksPruning.parse(blocks_raw.decode() if blocks_raw else ARCHIVE)
            wanted_state, wanted_blocks = self._wanted
            if wanted_state is not None:
                check_state_mode(recorded_state, wanted_state)
            if wanted_blocks is not None:
                check_blocks_mode(recorded_blocks, wanted_blocks)
        except PruningModeError as exc:
            raise PruningMismatch(str(exc)) from None
        self.state_pruning = wanted_state or recorded_state
        self.blocks_pruning = wanted_blocks or recorded_blocks
        puts = {}
        if (wanted_state, wanted_blocks) != (None, None):
            # Another window of the same kind (as Substrate allows): record it.
            puts[keys.META_STATE_PRUNING] = str(self.state_pruning).encode()
            puts[keys.META_BLOCKS_PRUNING] = str(self.blocks_pruning).encode()
        if self.kv.get(keys.META_BODIES_PRUNED) is None:
            puts[keys.META_BODIES_PRUNED] = _u64(0)
        if self.kv.get(keys.META_STATE_PRUNED) is None:
            puts[keys.META_STATE_PRUNED] = _u64(0)
        if puts:
            self.kv.write(puts)

    # --- reads ---------------------------------------------------------------------------------

    def _meta(self, key: bytes) -> bytes:
        value = self.kv.get(key)
        if value is None:
            raise ChainStoreError("the database has no chain (genesis was never written)")
        return value

    @property
    def genesis_hash(self) -> bytes:
        return self._meta(keys.META_GENESIS)

    @property
    def best_hash(self) -> bytes:
        return self._meta(keys.META_BEST)

    @property
    def finalized_hash(self) -> bytes:
        return self._meta(keys.META_FINALIZED)

    def best_header(self) -> Header:
        return self.require_header(self.best_hash)

    def finalized_header(self) -> Header:
        return self.require_header(self.finalized_hash)

    def get_header(self, block_hash: bytes) -> Header | None:
        header = self._header_cache.get(block_hash)
        if header is not None:
            return header
        if len(block_hash) != keys.HASH_LEN:
            return None
        raw = self.kv.get(keys.header_key(block_hash))
        if raw is None:
            return None
        header = Header.decode(raw)
        if len(self._header_cache) > 4096:
            self._header_cache.clear()
        self._header_cache[block_hash] = header
        return header

    def require_header(self, block_hash: bytes) -> Header:
        header = self.get_header(block_hash)
        if header is None:
            raise ChainStoreError(f"header 0x{block_hash.hex()} is missing from the database")
        return header

    def get_body(self, block_hash: bytes) -> tuple[bytes, ...] | None:
        if len(block_hash) != keys.HASH_LEN:
            return None
        raw = self.kv.get(keys.body_key(block_hash))
        if raw is None:
            return None
        body = canonical.decode(raw, max_bytes=MAX_BODY_BYTES)
        if not isinstance(body, list) or not all(isinstance(x, bytes) for x in body):
            raise CodecError("stored body is not a list of extrinsics")
        return tuple(body)

    def get_block(self, block_hash: bytes) -> Block | None:
        header = self.get_header(block_hash)
        body = self.get_body(block_hash)
        if header is None or body is None:
            return None
        return Block(header, body)

    def has_block(self, block_hash: bytes) -> bool:
        return self.get_header(block_hash) is not None

    def hash_at(self, number: int) -> bytes | None:
        """The canonical (best-chain) block hash at `number`."""
        if not 0 <= number < 2**64:
            return None
        return self.kv.get(keys.number_key(number))

    def get_justification(self, block_hash: bytes) -> bytes | None:
        if len(block_hash) != keys.HASH_LEN:
            return None
        return self.kv.get(keys.justification_key(block_hash))

    def leaf_hashes(self) -> list[bytes]:
        """Blocks without children (the heads of every fork), in the order they were seen."""
        raw = self.kv.get(keys.META_LEAVES)
        if raw is None:  # a database from before leaves were tracked
            return [self.best_hash]
        leaves = canonical.decode(raw, max_bytes=64 * MAX_LEAVES)
        if not isinstance(leaves, list) or not all(isinstance(x, bytes) for x in leaves):
            raise ChainStoreError("stored leaves are not a list of hashes")
        return leaves

    def state_at(self, block_hash: bytes) -> Trie:
        """The state after block `block_hash`; StateDiscarded if pruning has deleted it."""
        header = self.require_header(block_hash)
        if not self.is_state_kept(header):
            raise StateDiscarded(block_hash)
        return open_state(self.kv, header.state_root, self.cache)

    def pending_state(self, root: bytes, nodes: Mapping[bytes, bytes]) -> Trie:
        """The state at `root` of a block executed but not committed yet: its trie nodes are in
        `nodes` (the new nodes of it and of the uncommitted blocks before it) or in the store."""
        return open_state(self.kv, root, self.cache, nodes)

    def is_state_kept(self, header: Header) -> bool:
        """Whether the store still holds the state after `header`'s block."""
        if self.state_pruning.is_archive:
            return True
        number, block_hash = header.number, header.hash
        if number >= _read_u64(self.kv, keys.META_STATE_PRUNED) and self.hash_at(number) == block_hash:
            return True
        return self.kv.get(keys.unfinalized_key(number, block_hash)) is not None

    def iter_canonical(self, start: int = 0) -> Iterator[Block]:
        number = start
        while (block_hash := self.hash_at(number)) is not None:
            block = self.get_block(block_hash)
            if block is None:
                raise ChainStoreError(f"block #{number} is indexed but missing")
            yield block
            number += 1

    # --- writes --------------------------------------------------------------------------------

    def commit_block(self, block: Block, executed: ExecutedBlock, make_best: bool) -> None:
        """Store the block, its state nodes and (when it becomes best) the canonical index and
        the best pointer, in one atomic synced batch."""
        header = block.header
        block_hash = header.hash
        batch = Batch(self.kv, self._counts)
        if self.state_pruning.is_archive:
            batch.puts.update(trie_node_puts(executed.new_nodes))
        else:
            batch.add_nodes(executed.new_nodes, executed.inserted_again)
            journal = StateJournal(tuple(executed.new_nodes), executed.inserted_again, executed.removed_nodes)
            batch.put(keys.state_journal_key(header.number, block_hash), journal.encode())
        batch.put(keys.unfinalized_key(header.number, block_hash), b"")
        batch.put(keys.header_key(block_hash), header.encode())
        batch.put(keys.body_key(block_hash), canonical.encode(list(block.extrinsics)))
        leaves = [h for h in self.leaf_hashes() if h != header.parent_hash] + [block_hash]
        batch.put(keys.META_LEAVES, canonical.encode(leaves[-MAX_LEAVES:]))
        if make_best:
            for key, value in self._reindex(header, block_hash).items():
                batch.put(key, value)
            old_best = self.best_header()
            for number in range(header.number + 1, old_best.number + 1):
                batch.delete(keys.number_key(number))
            batch.put(keys.META_BEST, block_hash)
        batch.write()
        self._header_cache[block_hash] = header

    def _reindex(self, header: Header, block_hash: bytes) -> dict[bytes, bytes]:
        """Number-index entries that make `header`'s chain canonical (a reorg rewrites them
        back to the common ancestor)."""
        puts = {keys.number_key(header.number): block_hash}
        parent_hash, number = header.parent_hash, header.number - 1
        while number >= 0 and self.hash_at(number) != parent_hash:
            puts[keys.number_key(number)] = parent_hash
            parent_hash = self.require_header(parent_hash).parent_hash
            number -= 1
        return puts

    def set_finalized(self, block_hash: bytes, justification: bytes | None = None) -> BestChange | None:
        """Finalize `block_hash` (and so all its ancestors) with its justification, then prune
        what that lets go. The block must descend from the finalized block; if it is not on the
        best chain, the longest chain that contains it becomes best. Forks that no longer contain
        the finalized block are forgotten as leaves (and pruned with their states). Returns how
        the best chain changed, or None when it did not."""
        header = self.get_header(block_hash)
        if header is None:
            raise FinalityRevertError(f"cannot finalize unknown block 0x{block_hash.hex()}")
        finalized = self.finalized_header()
        # Verify that finality moves forward along one chain.
        validate_finalizable(self, header, finalized)
        batch = Batch(self.kv, self._counts)
        batch.put(keys.META_FINALIZED, block_hash)
        if justification is not None:
            batch.put(keys.justification_key(block_hash), justification)
        leaves = [leaf for h in self.leaf_hashes() if (leaf := self.get_header(h)) is not None]
        kept = [leaf for leaf in leaves if is_descendant(self, leaf, header)]
        best = self.best_header()
        new_best = best if is_descendant(self, best, header) else select_best(self, kept, header)
        change = None
        if new_best.hash != best.hash:
            change = self.compare_forks(best, new_best)
            for key, value in self._reindex(new_best, new_best.hash).items():
                batch.put(key, value)
            for number in range(new_best.number + 1, best.number + 1):
                batch.delete(keys.number_key(number))
            batch.put(keys.META_BEST, new_best.hash)
            log.info("finalized block is off the best chain: best=#%d 0x%s", new_best.number, new_best.hash.hex()[:16])
        batch.put(keys.META_LEAVES, canonical.encode([leaf.hash for leaf in kept] or [block_hash]))
        more = self._prune_step(batch, header)
        batch.write()
        while more:
            more = self.prune()
        return change

    def compare_forks(self, old: Header, new: Header) -> BestChange:
        """What moving the best block from `old` to `new` retracts: the blocks from `old` down to
        their common ancestor (hashes, from the fork point up) and their extrinsics."""
        retracted: list[tuple[bytes, tuple[bytes, ...]]] = []
        a: Header | None = old
        b: Header | None = new
        while a is not None and b is not None and a.hash != b.hash:
            if a.number >= b.number:
                retracted.append((a.hash, tuple(self.get_body(a.hash) or ())))
                a = self.get_header(a.parent_hash)
            else:
                b = self.get_header(b.parent_hash)
        retracted.reverse()
        fork_number = a.number if a is not None else 0
        return BestChange(fork_number, [h for h, _ in retracted], [xt for _, body in retracted for xt in body])

    # --- pruning -------------------------------------------------------------------------------

    def prune(self) -> bool:
        """Finish the pruning the finalized block allows, one atomic step after another."""
        finalized = self.finalized_header()
        steps = 0
        while True:
            batch = Batch(self.kv, self._counts)
            more = self._prune_step(batch, finalized)
            if batch.is_empty:
                return False
            batch.write()
            steps += 1
            if not more:
                if steps > 1:
                    log.info("pruning caught up steps=%d state_pruned=%d", steps,
                             _read_u64(self.kv, keys.META_STATE_PRUNED))
                return False

    def _prune_step(self, batch: Batch, finalized: Header) -> bool:
        """Add one bounded step of pruning to `batch`; return whether more work remains."""
        more = self._settle_unfinalized(batch, finalized)
        if not self.state_pruning.is_archive:
            more = self._fold_window(batch, finalized) or more
        return self._prune_bodies(batch, finalized) or more

    def _settle_unfinalized(self, batch: Batch, finalized: Header) -> bool:
        """Blocks finalized now stop being "unfinalized"; blocks that finality ruled out (not an
        ancestor nor a descendant of `finalized`) are discarded with their states."""
        entries = [keys.split_numbered_key(k) for k, _v in self.kv.iterate(keys.UNFINALIZED)]
        if not entries:
            return False
        # The finalized block's ancestors down to the lowest unfinalized number.
        lowest = entries[0][0]
        chain: dict[int, bytes] = {}
        header = finalized
        while header.number >= lowest and header.number > 0:
            chain[header.number] = header.hash
            header = self.require_header(header.parent_hash)
        descendants = {finalized.hash}
        discarded = 0
        for number, block_hash in entries:
            if number <= finalized.number:
                if chain.get(number) == block_hash:
                    batch.delete(keys.unfinalized_key(number, block_hash))
                    continue
            else:
                header = self.require_header(block_hash)
                if header.parent_hash in descendants:
                    descendants.add(block_hash)
                    continue
            if discarded == BLOCKS_PER_PRUNE_STEP:
                return True
            self._discard_fork_block(batch, number, block_hash)
            discarded += 1
        return False

    def _discard_fork_block(self, batch: Batch, number: int, block_hash: bytes) -> None:
        if not self.state_pruning.is_archive:
            journal = self._journal(number, block_hash)
            batch.drop_nodes(journal.inserted)
            batch.drop_nodes(journal.inserted_again)
            batch.delete(keys.state_journal_key(number, block_hash))
        batch.delete(keys.unfinalized_key(number, block_hash))
        if not self.blocks_pruning.keeps_forks:
            batch.delete(keys.header_key(block_hash))
            batch.delete(keys.body_key(block_hash))
            batch.delete(keys.justification_key(block_hash))
            self._header_cache.pop(block_hash, None)
        log.debug("fork block discarded number=%d hash=0x%s", number, block_hash.hex()[:16])

    def _fold_window(self, batch: Batch, finalized: Header) -> bool:
        """Fold the journals of the canonical blocks whose parents' states leave the window: the
        states of the last `window` finalized blocks stay."""
        window = self.state_pruning.window
        assert window is not None
        target = finalized.number - window + 1  # the oldest state to keep
        pruned = _read_u64(self.kv, keys.META_STATE_PRUNED)
        if target <= pruned:
            return False
        stop = min(target, pruned + BLOCKS_PER_PRUNE_STEP)
        for number in range(pruned + 1, stop + 1):
            block_hash = self.hash_at(number)
            if block_hash is None:
                raise ChainStoreError(f"finalized block #{number} is missing from the index")
            batch.drop_nodes(self._journal(number, block_hash).removed)
            batch.delete(keys.state_journal_key(number, block_hash))
        batch.put(keys.META_STATE_PRUNED, _u64(stop))
        return stop < target

    def _journal(self, number: int, block_hash: bytes) -> StateJournal:
        raw = self.kv.get(keys.state_journal_key(number, block_hash))
        if raw is None:
            raise ChainStoreError(f"the state journal of block #{number} 0x{block_hash.hex()[:16]}... is missing")
        try:
            return StateJournal.decode(raw)
        except StateDbError as exc:
            raise ChainStoreError(str(exc)) from None

    def _prune_bodies(self, batch: Batch, finalized: Header) -> bool:
        """Delete the bodies of the canonical blocks older than the last `window` finalized ones."""
        window = self.blocks_pruning.window
        if window is None:
            return False
        target = finalized.number - window
        pruned = _read_u64(self.kv, keys.META_BODIES_PRUNED)
        if target <= pruned:
            return False
        stop = min(target, pruned + BODIES_PER_PRUNE_STEP)
        for number in range(pruned + 1, stop + 1):
            block_hash = self.hash_at(number)
            if block_hash is not None:
                batch.delete(keys.body_key(block_hash))
        batch.put(keys.META_BODIES_PRUNED, _u64(stop))
        return stop < target


def _u64(number: int) -> bytes:
    return number.to_bytes(8, "big")


def _read_u64(kv: KVStore, key: bytes) -> int:
    raw = kv.get(key)
    return 0 if raw is None else int.from_bytes(raw, "big")
