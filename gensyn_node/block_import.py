"""`import_block`: the one path by which a block enters the chain, for the local author, gossip
and sync alike.

Checks, in order: not already known; parent known; number follows the parent's; not a fork
below the finalized block (such a block is still seal-checked, so that the node can see an
equivocation in it); the consensus check (seal, slot leader) when one is given; then the
runtime re-executes the block against the parent's state and compares the roots (skipped only
for a block this node just built, whose execution result it already holds). A peer's blocks
are checked and executed off the event loop first (`execute_for_import`, or
`execute_chain_for_import` for a run of them, each on the uncommitted state the one before
leaves); their commit checks only the chaining again. The block, its state and the best
pointer then go to disk in one atomic batch. Fork choice
(`consensus.fork_choice`): the longest chain that contains the last finalized block; on a tie
the block seen first stays best.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from consensus.fork_choice import HeaderSource, is_better, is_descendant
from consensus.verification import FutureSlot
from gensyn_node.chain_db import ChainStore, ChainStoreError
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


class ImportErrorKind(enum.Enum):
    """Why a block was refused, so that the network can tell useless data (ignored) from
    invalid data (its sender punished)."""

    UNKNOWN_PARENT = "unknown_parent"    # useless until sync fetches the parent
    BELOW_FINALIZED = "below_finalized"  # a fork we can never take (a slow or stale peer)
    FUTURE_SLOT = "future_slot"          # a header a slot or more early (clock drift)
    INVALID = "invalid"                  # wrong number, seal, leader or execution

    @property
    def is_punishable(self) -> bool:
        return self is ImportErrorKind.INVALID


class BlockImportError(Exception):
    """The block was not imported; `reason` says why and `kind` what sort of failure it is.
    The store is unchanged. `sealed_header` is the block's header when it was refused only as
    unfinalizable after its seal and slot leader passed the consensus check: a block that can
    never be imported still proves what its author signed (an equivocation stays evidence)."""

    def __init__(self, reason: str, kind: ImportErrorKind = ImportErrorKind.INVALID,
                 sealed_header: Header | None = None):
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.sealed_header = sealed_header

    @property
    def unknown_parent(self) -> bool:
        return self.kind is ImportErrorKind.UNKNOWN_PARENT


@dataclass(frozen=True, slots=True)
class ImportResult:
    status: ImportStatus
    block_hash: bytes
    number: int
    reorg: bool = False
    seconds: float = 0.0          # in `import_block`: the checks and the commit
    execute_seconds: float = 0.0  # the re-execution off the event loop: its share of the thread call


def import_block(store: ChainStore, block: Block, *, seal_check: SealCheck | None = None,
                 executed: ExecutedBlock | None = None, verify: SignatureChecker = verify_signature,
                 seal_checked: bool = False) -> ImportResult:
    """Verify and commit `block`; raise BlockImportError with the reason if it is invalid.
    `executed` with `seal_checked` is what `execute_for_import` (or `execute_chain_for_import`)
    returned with this `seal_check`: the seal and the leader are facts of the header and its
    parent's state, so only the chaining is checked again (finality may have moved since)."""
    started = time.perf_counter()
    header = block.header
    block_hash = header.hash
    if store.has_block(block_hash):
        return ImportResult(ImportStatus.ALREADY_KNOWN, block_hash, header.number)
    if executed is None or executed.state_root != header.state_root:
        executed = execute_for_import(store, block, seal_check=seal_check, verify=verify)
    else:
        _validate_chaining(store, header, seal_check)
        if seal_check is not None and not seal_checked:
            _check_seal(seal_check, header, store)
    best = store.best_header()
    make_best = is_better(header, best)
    reorg = make_best and header.parent_hash != best.hash
    store.commit_block(block, executed, make_best)
    seconds = time.perf_counter() - started
    status = ImportStatus.IMPORTED_BEST if make_best else ImportStatus.IMPORTED_FORK
    log.debug("imported number=%d hash=0x%s status=%s reorg=%s ms=%.1f", header.number, block_hash.hex()[:16],
              status.value, reorg, seconds * 1000)
    return ImportResult(status, block_hash, header.number, reorg, seconds)


def execute_for_import(store: ChainStore, block: Block, *, seal_check: SealCheck | None = None,
                       verify: SignatureChecker = verify_signature,
                       after: PendingParent | None = None) -> ExecutedBlock:
    """Every check of `import_block` and the re-execution, without writing anything: safe to
    run in a worker thread while the event loop serves, the commit following on the loop.
    `after`: the parent was executed but is not committed yet; its state is read from its new
    nodes over the store's."""
    header = block.header
    if after is not None and header.parent_hash == after.header.hash:
        parent = _validate_chaining(store, header, seal_check, after)
        parent_state = store.pending_state(after.header.state_root, after.nodes)
    else:
        parent = _validate_chaining(store, header, seal_check)
        parent_state = store.state_at(header.parent_hash)
    if seal_check is not None:
        _check_seal(seal_check, header, store, parent, parent_state)
    try:
        return _execute(parent_state, block, verify)
    except InvalidBlock as exc:
        raise BlockImportError(f"invalid block #{header.number}: {exc}") from None


@dataclass(frozen=True, slots=True)
class PendingParent:
    """A block executed but not yet committed, as the parent of the next: its header, and the
    headers and trie nodes (their states' new nodes) of every such block since the last
    committed one, itself included."""

    header: Header
    headers: dict[bytes, Header]
    nodes: dict[bytes, bytes]


class _PendingChain:
    """The store's headers and those of blocks executed but not committed (a HeaderSource)."""

    def __init__(self, store: ChainStore, pending: PendingParent):
        self._store, self._pending = store, pending

    def get_header(self, block_hash: bytes) -> Header | None:
        return self._pending.headers.get(block_hash) or self._store.get_header(block_hash)

    def hash_at(self, number: int) -> bytes | None:
        return self._store.hash_at(number)


def execute_chain_for_import(store: ChainStore, blocks: Sequence[Block], *, seal_check: SealCheck | None = None,
                             verify: SignatureChecker = verify_signature,
                             budget_seconds: float = 0.05) -> tuple[list[ExecutedBlock], BlockImportError | None]:
    """`execute_for_import` of a chain (each block the parent of the next), each on the state the
    one before leaves, nothing written: the executed blocks, in order, and the refusal of the
    first block that failed (None if none did). It stops after the block that takes it past
    `budget_seconds`, so that one worker-thread call covers many small blocks (a sync range)
    and the loop commits what it has before holding more nodes in memory."""
    started = time.perf_counter()
    executed: list[ExecutedBlock] = []
    # One growing set of the uncommitted blocks' headers and nodes, not a copy per block.
    headers: dict[bytes, Header] = {}
    nodes: dict[bytes, bytes] = {}
    after: PendingParent | None = None
    for block in blocks:
        try:
            result = execute_for_import(store, block, seal_check=seal_check, verify=verify, after=after)
        except BlockImportError as exc:
            return executed, exc
        executed.append(result)
        if time.perf_counter() - started >= budget_seconds:
            break
        headers[block.header.hash] = block.header
        nodes.update(result.new_nodes)
        after = PendingParent(block.header, headers, nodes)
    return executed, None


def _validate_chaining(store: ChainStore, header: Header, seal_check: SealCheck | None = None,
                       pending: PendingParent | None = None) -> Header:
    """The parent's header, once the block is known to chain onto the finalized chain. A block
    refused as below the finalized one carries its header in the error if `seal_check` passes.
    `pending`: the blocks before it that are executed but not committed yet."""
    chain: HeaderSource = store if pending is None else _PendingChain(store, pending)
    parent = chain.get_header(header.parent_hash)
    # Verify that the parent is known (else the caller should sync it first).
    if parent is None:
        raise BlockImportError(f"unknown parent 0x{header.parent_hash.hex()}", ImportErrorKind.UNKNOWN_PARENT)
    # Verify that the block number follows the parent's.
    if header.number != parent.number + 1:
        raise BlockImportError(f"block number {header.number} does not follow parent #{parent.number}")
    finalized = store.finalized_header()
    # Verify that the block does not fork off below the finalized block.
    if header.number <= finalized.number or not is_descendant(chain, parent, finalized):
        sealed = header if seal_check is not None and _is_validly_sealed(seal_check, header, store, parent) else None
        raise BlockImportError("block is not a descendant of the finalized block", ImportErrorKind.BELOW_FINALIZED,
                               sealed)
    return parent


def _is_validly_sealed(seal_check: SealCheck, header: Header, store: ChainStore, parent: Header) -> bool:
    """Whether the slot's leader sealed `header` (False too when the parent's state is pruned,
    or not committed yet)."""
    try:
        _check_seal(seal_check, header, store, parent)
    except (BlockImportError, ChainStoreError):
        return False
    return True


def _check_seal(seal_check: SealCheck, header: Header, store: ChainStore, parent: Header | None = None,
                parent_state: Trie | None = None) -> None:
    # `is None`, not `or`: a Trie's truth value would count every key in the state.
    if parent is None:
        parent = store.require_header(header.parent_hash)
    if parent_state is None:
        parent_state = store.state_at(header.parent_hash)
    try:
        seal_check(header, parent, parent_state)
    except FutureSlot as exc:
        raise BlockImportError(f"block #{header.number}: {exc}", ImportErrorKind.FUTURE_SLOT) from None
    except InvalidBlock as exc:
        raise BlockImportError(f"invalid block #{header.number}: {exc}") from None


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

