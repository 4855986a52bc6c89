"""`import_block`: the one path by which a block enters the chain, for the local author, gossip
and sync alike.

Checks, in order: not already known; parent known; number follows the parent's; not a fork
below the finalized block; the consensus check (seal, slot leader) when one is given; then the
runtime re-executes the block against the parent's state and compares the roots (skipped only
for a block this node just built, whose execution result it already holds). The block, its
state and the best pointer then go to disk in one atomic batch. Fork choice
(`consensus.fork_choice`): the longest chain that contains the last finalized block; on a tie
the block seen first stays best.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from consensus.fork_choice import is_better, is_descendant
from gensyn_node.chain_db import ChainStore
from runtime.block import Block, Header
from runtime.crypto import verify_signature
from runtime.executive import (
    ExecutedBlock,
    InvalidBlock,
    SignatureChecker,
    execute_block,
    get_signature_checks,
)
from runtime.trie import Trie

log = logging.getLogger(__name__)

# Consensus's check of a header against its parent's state (seal, slot leader); raises InvalidBlock.
SealCheck = Callable[[Header, Header, Trie], None]


class ImportStatus(enum.Enum):
    IMPORTED_BEST = "best"
    IMPORTED_FORK = "fork"
    ALREADY_KNOWN = "known"


class BlockImportError(Exception):
    """The block was not imported; `reason` says why. The store is unchanged."""

    def __init__(self, reason: str, unknown_parent: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.unknown_parent = unknown_parent


@dataclass(frozen=True, slots=True)
class ImportResult:
    status: ImportStatus
    block_hash: bytes
    number: int
    reorg: bool = False
    seconds: float = 0.0


def import_block(store: ChainStore, block: Block, *, seal_check: SealCheck | None = None,
                 executed: ExecutedBlock | None = None, verify: SignatureChecker = verify_signature) -> ImportResult:
    """Verify and commit `block`; raise BlockImportError with the reason if it is invalid."""
    started = time.perf_counter()
    header = block.header
    block_hash = header.hash
    if store.has_block(block_hash):
        return ImportResult(ImportStatus.ALREADY_KNOWN, block_hash, header.number)
    parent = store.get_header(header.parent_hash)
    # Verify that the parent is known (else the caller should sync it first).
    if parent is None:
        raise BlockImportError(f"unknown parent 0x{header.parent_hash.hex()}", unknown_parent=True)
    # Verify that the block number follows the parent's.
    if header.number != parent.number + 1:
        raise BlockImportError(f"block number {header.number} does not follow parent #{parent.number}")
    finalized = store.finalized_header()
    # Verify that the block does not fork off below the finalized block.
    if header.number <= finalized.number or not is_descendant(store, parent, finalized):
        raise BlockImportError("block is not a descendant of the finalized block")
    parent_state = store.state_at(header.parent_hash)
    try:
        if seal_check is not None:
            seal_check(header, parent, parent_state)
        if executed is None or executed.state_root != header.state_root:
            executed = _execute(parent_state, block, verify)
    except InvalidBlock as exc:
        raise BlockImportError(f"invalid block #{header.number}: {exc}") from None
    best = store.best_header()
    make_best = is_better(header, best)
    reorg = make_best and header.parent_hash != best.hash
    store.commit_block(block, executed, make_best)
    seconds = time.perf_counter() - started
    status = ImportStatus.IMPORTED_BEST if make_best else ImportStatus.IMPORTED_FORK
    log.debug("imported number=%d hash=0x%s status=%s reorg=%s ms=%.1f", header.number, block_hash.hex()[:16],
              status.value, reorg, seconds * 1000)
    return ImportResult(status, block_hash, header.number, reorg, seconds)


def _execute(parent_state: Trie, block: Block, verify: SignatureChecker) -> ExecutedBlock:
    """Execute the block; a signature checker that can run its checks ahead (the node's memo with its
    worker) gets the block's checks first and runs them beside the execution."""
    prefetch = getattr(verify, "prefetch", None)
    if prefetch is None:
        return execute_block(parent_state, block, verify)
    prefetch(get_signature_checks(parent_state, block))
    try:
        return execute_block(parent_state, block, verify)
    finally:
        verify.settle()  # type: ignore[attr-defined]

