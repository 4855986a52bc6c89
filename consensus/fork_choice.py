"""Fork choice: the best chain is the longest chain that contains the last finalized block; on
a tie the block seen first stays best. Finalized blocks are never reverted: a block that does
not descend from the finalized block is never best and can never be finalized.

Pure functions over a small view of the header store, so the node's LevelDB store and the
tests' in-memory chains answer alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from runtime.block import Header


class ForkChoiceError(Exception):
    """A change the fork-choice rule forbids (finalizing off the finalized chain, or backwards)."""


class HeaderSource(Protocol):
    def get_header(self, block_hash: bytes) -> Header | None: ...

    def hash_at(self, number: int) -> bytes | None:
        """The canonical (best-chain) block hash at `number`."""
        ...


def is_descendant(chain: HeaderSource, header: Header, ancestor: Header) -> bool:
    """Whether `header` is `ancestor` or descends from it (walks parents down to its number)."""
    if header.number < ancestor.number:
        return False
    if chain.hash_at(ancestor.number) == ancestor.hash and chain.hash_at(header.number) == header.hash:
        return True  # both canonical: the canonical chain holds one block per number
    while header.number > ancestor.number:
        parent = chain.get_header(header.parent_hash)
        if parent is None:
            return False
        header = parent
    return header.hash == ancestor.hash


def is_better(candidate: Header, best: Header) -> bool:
    """Whether `candidate` (already known to descend from the finalized block) replaces `best`:
    only a strictly longer chain does, so the block seen first wins a tie."""
    return candidate.number > best.number


def select_best(chain: HeaderSource, leaves: Iterable[Header], finalized: Header) -> Header:
    """The longest of `leaves` (in the order they were seen) that contains `finalized`;
    `finalized` itself when none does."""
    best = finalized
    for leaf in leaves:
        if is_better(leaf, best) and is_descendant(chain, leaf, finalized):
            best = leaf
    return best


def validate_finalizable(chain: HeaderSource, header: Header, finalized: Header) -> None:
    """Verify that finalizing `header` keeps every block finalized so far final."""
    # Verify that finality never moves backwards.
    if header.number < finalized.number:
        raise ForkChoiceError(f"block #{header.number} is below the finalized block #{finalized.number}")
    # Verify that the block descends from the finalized block.
    if not is_descendant(chain, header, finalized):
        raise ForkChoiceError(f"block #{header.number} 0x{header.hash.hex()[:16]} does not descend from the "
                              f"finalized block #{finalized.number}")
