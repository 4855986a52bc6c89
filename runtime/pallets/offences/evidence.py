"""Equivocation evidence and its checks, as pure functions over a block's state: what each
report must prove, the offence's id (one per offender and slot, or offender, set, round and
step), and the offender's stash."""

from __future__ import annotations

import struct
from typing import Any

from runtime.block import Header
from runtime.codec.errors import CodecError
from runtime.codec.scale import H256, Bytes, FixedBytes, Struct, u8, u32, u64
from runtime.context import BlockContext
from runtime.crypto import verify_ed25519
from runtime.finality_vote import STEPS, compute_vote_payload
from runtime.hashing import blake2_256
from runtime.pallets.offences.errors import ERRORS
from runtime.pallets.staking import storage as staking
from runtime.pallets.staking.api import get_validator_by_session_key
from runtime.pallets.system import storage as system
from runtime.storage import OverlayState

KIND_VOTE = 0
KIND_BLOCK = 1
MAX_HEADER_BYTES = 4096
Signature = FixedBytes(64, ("sp_core", "ed25519", "Signature"))
SessionKey = FixedBytes(32, ("sp_core", "ed25519", "Public"))
SignedTarget = Struct(("gensyn_runtime", "offences", "SignedTarget"),
                      [("target_hash", H256), ("target_number", u32), ("signature", Signature)])
VoteEquivocation = Struct(("gensyn_runtime", "offences", "VoteEquivocation"), [
    ("voter", SessionKey), ("set_id", u64), ("round", u64), ("step", u8), ("first", SignedTarget),
    ("second", SignedTarget)])
HeaderBytes = Bytes(max_len=MAX_HEADER_BYTES)


def compute_offence_id(kind: int, offender: bytes, *position: int) -> bytes:
    return blake2_256(bytes([kind]) + offender + b"".join(struct.pack("<Q", p) for p in position))


def get_genesis_hash(ctx: BlockContext) -> bytes:
    """The chain's genesis hash as this block sees it (block 1's parent is genesis itself)."""
    if ctx.block_number == 1 and ctx.parent_hash is not None:
        return ctx.parent_hash
    return system.BlockHash.get(ctx.state, 0)


def validate_vote_equivocation(ctx: BlockContext, proof: dict[str, Any]) -> tuple[bytes, bytes]:
    """Verify that `proof` holds two different votes signed by one voter for one set, round
    and step; returns (offender stash, offence id)."""
    state = ctx.state
    first, second = proof["first"], proof["second"]
    # Verify that the two votes differ and are for one step.
    if proof["step"] not in STEPS or first["target_hash"] == second["target_hash"]:
        raise ERRORS("InvalidEquivocationProof", "two votes for the same block are not an equivocation")
    # Verify that the set has existed (ids only grow).
    if proof["set_id"] > staking.ValidatorSetId.get(state):
        raise ERRORS("InvalidSetId", f"voter set {proof['set_id']} has not existed yet")
    offender = get_validator_by_session_key(state, proof["voter"])
    # Verify that the voter is a bonded validator.
    if offender is None or not staking.Bonded.contains(state, offender):
        raise ERRORS("UnknownOffender", "the voter's key belongs to no bonded validator")
    genesis = get_genesis_hash(ctx)
    for vote in (first, second):
        payload = compute_vote_payload(genesis, proof["set_id"], proof["round"], proof["step"], vote["target_hash"],
                                       vote["target_number"])
        # Verify that the voter signed each vote.
        if not verify_ed25519(proof["voter"], payload, vote["signature"]):
            raise ERRORS("InvalidSignature", "a vote is not signed by the voter")
    return offender, compute_offence_id(KIND_VOTE, proof["voter"], proof["set_id"], proof["round"], proof["step"])


def _decode_sealed(raw: bytes) -> tuple[Header, int, bytes, bytes]:
    try:
        header = Header.decode(raw)
        slot, author = header.slot_and_author()
    except CodecError as exc:
        raise ERRORS("InvalidEquivocationProof", f"a header does not decode: {exc}") from None
    seal = header.seal()
    if seal is None:
        raise ERRORS("InvalidEquivocationProof", "a header carries no seal")
    return header, slot, author, seal


def get_author_keys(state: OverlayState, author: bytes) -> list[bytes]:
    """The session keys `author` may have sealed with: its key in the active set, its current one."""
    keys = [key for account, key, _stake in staking.ActiveValidators.get(state) if account == author]
    current = staking.SessionKeys.get(state, author)
    return keys + ([current] if current is not None and current not in keys else [])


def validate_block_equivocation(state: OverlayState, first_raw: bytes, second_raw: bytes) -> tuple[bytes, bytes]:
    """Verify that the two headers are different blocks for one slot sealed by one author;
    returns (offender stash, offence id)."""
    first, slot_a, author_a, seal_a = _decode_sealed(first_raw)
    second, slot_b, author_b, seal_b = _decode_sealed(second_raw)
    # Verify that both blocks claim the same slot and author, and differ.
    if slot_a != slot_b or author_a != author_b or first.pre_seal().hash == second.pre_seal().hash:
        raise ERRORS("InvalidEquivocationProof", "the headers are not two blocks of one author for one slot")
    # Verify that the author is a bonded validator.
    if not staking.Bonded.contains(state, author_a):
        raise ERRORS("UnknownOffender", "the author is not a bonded validator")
    keys = get_author_keys(state, author_a)
    for header, seal in ((first, seal_a), (second, seal_b)):
        # Verify that the author's session key sealed each header.
        if not any(verify_ed25519(key, header.pre_seal().hash, seal) for key in keys):
            raise ERRORS("InvalidSignature", "a seal is not the author's")
    return author_a, compute_offence_id(KIND_BLOCK, author_a, slot_a)
