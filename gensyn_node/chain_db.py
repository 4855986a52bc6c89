"""The chain database: headers, bodies, the canonical number index, justifications, state trie
nodes and the meta pointers (best, finalized, genesis), on one key-value store.

Data path step: block import commits a block with `commit_block`, which writes everything of
that block, the meta pointers included, in ONE atomic synced batch. Reopening the store gives
back exactly the last committed head and its state root; a killed node loses nothing it
acknowledged and never sees half a block.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from consensus.fork_choice import ForkChoiceError, is_descendant, select_best, validate_finalizable
from gensyn_node.db import keys
from gensyn_node.db.kv import KVStore, open_kv
from gensyn_node.db.trie_store import open_state, trie_node_puts
from runtime.block import Block, Header
from runtime.codec import canonical
from runtime.codec.errors import CodecError
from runtime.executive import ExecutedBlock
from runtime.trie import NodeCache, Trie

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_LEAVES = 1024  # forks above the finalized block; pruned on finalization


class ChainStoreError(Exception):
    """The database does not hold a consistent chain (or another chain's)."""


class GenesisMismatch(ChainStoreError):
    """The database was created for another chain spec."""


class FinalityRevertError(ChainStoreError, ForkChoiceError):
    """Finalizing this block would revert a finalized block (or it is unknown)."""


class ChainStore:
    def __init__(self, kv: KVStore, cache: NodeCache | None = None):
        self.kv = kv
        self.cache = cache or NodeCache()
        self._header_cache: dict[bytes, Header] = {}

    @classmethod
    def open(cls, path: str | None) -> ChainStore:
        return cls(open_kv(path))

    def close(self) -> None:
        self.kv.close()

    # --- genesis -------------------------------------------------------------------------------

    def initialize(self, genesis: Header, genesis_nodes: dict[bytes, bytes]) -> None:
        """Write genesis into an empty store, or verify that the store holds this chain."""
        existing = self.kv.get(keys.META_GENESIS)
        if existing is not None:
            if existing != genesis.hash:
                raise GenesisMismatch(
                    f"the database holds chain {existing.hex()[:16]}..., not this spec's genesis "
                    f"{genesis.hash.hex()[:16]}... (use another --base-path or purge-chain)")
            return
        genesis_hash = genesis.hash
        puts = trie_node_puts(genesis_nodes)
        puts[keys.header_key(genesis_hash)] = genesis.encode()
        puts[keys.body_key(genesis_hash)] = canonical.encode([])
        puts[keys.number_key(0)] = genesis_hash
        puts[keys.META_GENESIS] = genesis_hash
        puts[keys.META_BEST] = genesis_hash
        puts[keys.META_FINALIZED] = genesis_hash
        puts[keys.META_LEAVES] = canonical.encode([genesis_hash])
        self.kv.write(puts)
        log.info("genesis written hash=0x%s", genesis_hash.hex())

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
        return open_state(self.kv, self.require_header(block_hash).state_root, self.cache)

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
        puts = trie_node_puts(executed.new_nodes)
        puts[keys.header_key(block_hash)] = header.encode()
        puts[keys.body_key(block_hash)] = canonical.encode(list(block.extrinsics))
        deletes: list[bytes] = []
        leaves = [h for h in self.leaf_hashes() if h != header.parent_hash] + [block_hash]
        puts[keys.META_LEAVES] = canonical.encode(leaves[-MAX_LEAVES:])
        if make_best:
            puts.update(self._reindex(header, block_hash))
            old_best = self.best_header()
            for number in range(header.number + 1, old_best.number + 1):
                deletes.append(keys.number_key(number))
            puts[keys.META_BEST] = block_hash
        self.kv.write(puts, deletes)
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

    def set_finalized(self, block_hash: bytes, justification: bytes | None = None) -> bool:
        """Finalize `block_hash` (and so all its ancestors) with its justification, in one batch.
        The block must descend from the finalized block; if it is not on the best chain, the
        longest chain that contains it becomes best. Forks that no longer contain the finalized
        block are forgotten as leaves. Returns whether the best block changed."""
        header = self.get_header(block_hash)
        if header is None:
            raise FinalityRevertError(f"cannot finalize unknown block 0x{block_hash.hex()}")
        finalized = self.finalized_header()
        validate_finalizable(self, header, finalized)
        puts: dict[bytes, bytes] = {keys.META_FINALIZED: block_hash}
        deletes: list[bytes] = []
        if justification is not None:
            puts[keys.justification_key(block_hash)] = justification
        leaves = [leaf for h in self.leaf_hashes() if (leaf := self.get_header(h)) is not None]
        kept = [leaf for leaf in leaves if is_descendant(self, leaf, header)]
        best = self.best_header()
        new_best = best if is_descendant(self, best, header) else select_best(self, kept, header)
        if new_best.hash != best.hash:
            puts.update(self._reindex(new_best, new_best.hash))
            deletes.extend(keys.number_key(n) for n in range(new_best.number + 1, best.number + 1))
            puts[keys.META_BEST] = new_best.hash
        puts[keys.META_LEAVES] = canonical.encode([leaf.hash for leaf in kept] or [block_hash])
        self.kv.write(puts, deletes)
        if new_best.hash != best.hash:
            log.info("finalized block is off the best chain: best=#%d 0x%s", new_best.number, new_best.hash.hex()[:16])
        return new_best.hash != best.hash
