"""Block authoring: in its slot, the leader takes ready transactions up to the block's weight
and size limits, builds the block through the executive, persists that it signed this slot
(so a restart never makes it sign twice), seals the header with its session key, and hands
the block to `import_block` like any other."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from consensus.authorities import get_authorities, get_randomness
from consensus.signing import DoubleSignRefused, Signer, SigningRecord
from consensus.slots import get_slot_leader
from runtime.block import Block, Header
from runtime.crypto import verify_signature
from runtime.executive import BlockBuilder, ExecutedBlock, SignatureChecker
from runtime.transaction_validity import InvalidTransaction, TransactionValidityError
from runtime.trie import Trie

log = logging.getLogger(__name__)

__all__ = ["AuthoredBlock", "DoubleSignRefused", "author_block", "find_slot_author"]


@dataclass(frozen=True, slots=True)
class AuthoredBlock:
    block: Block
    executed: ExecutedBlock
    invalid: tuple[tuple[bytes, str], ...]  # (tx hash, reason) found invalid while building


def find_slot_author(state: Trie, slot: int, session_key: bytes) -> bytes | None:
    """The author account if `session_key` leads `slot` at `state`, else None."""
    leader = get_slot_leader(get_authorities(state), get_randomness(state), slot)
    return leader.account if leader is not None and leader.session_key == session_key else None


def author_block(state: Trie, parent: Header, slot: int, slot_ms: int, author: bytes, key: Signer,
                 record: SigningRecord, candidates: Iterable[tuple[bytes, bytes]], max_extrinsics: int = 5000,
                 verify: SignatureChecker = verify_signature) -> AuthoredBlock:
    """Build and seal the block of `slot` on `parent` from `candidates` ((hash, bytes), best first)."""
    builder = BlockBuilder(state, parent, slot, author, slot * slot_ms, verify)
    invalid: list[tuple[bytes, str]] = []
    count = 0
    for tx_hash, data in candidates:
        if count >= max_extrinsics:
            break
        try:
            builder.push(data)
            count += 1
        except InvalidTransaction as exc:
            if exc.kind == "ExhaustsResources":
                break
            if exc.kind != "Future":
                invalid.append((tx_hash, str(exc)))
        except TransactionValidityError as exc:
            invalid.append((tx_hash, str(exc)))
    block, executed = builder.build()
    record.record_slot(key.public, slot)
    seal = key.sign(block.header.hash)
    sealed = Block(block.header.with_seal(seal), block.extrinsics)
    log.debug("authored number=%d slot=%d extrinsics=%d", block.header.number, slot, len(block.extrinsics))
    return AuthoredBlock(sealed, executed, tuple(invalid))
