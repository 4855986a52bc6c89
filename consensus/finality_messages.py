"""Finality gadget messages and justifications: signed votes, the voter set they count in, the
justification (the precommits that finalize a block, with the headers that show each
precommit's target descends from it), and their strict, size-bounded canonical-msgpack
encodings. `verify_justification` is the one check a justification passes, whether it comes
with a commit message, from sync, or from the database.

Wire formats (positional arrays):
    vote          [0, set_id, round, step, target_hash, target_number, voter, signature]
    commit        [1, justification]
    justification [set_id, round, target_hash, target_number, precommits, ancestry]
        precommits [[target_hash, target_number, voter, signature], ...]
        ancestry   [encoded header, ...]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from consensus.fork_choice import HeaderSource
from runtime.block import Header
from runtime.codec import canonical
from runtime.codec.errors import CodecError
from runtime.crypto import verify_ed25519
from runtime.finality_vote import (
    MAX_BLOCK_NUMBER,
    MAX_ROUND,
    MAX_SET_ID,
    PRECOMMIT,
    STEPS,
    compute_vote_payload,
)

MSG_VOTE = 0
MSG_COMMIT = 1
MAX_VOTERS = 1024
MAX_ANCESTRY = 1024
MAX_VOTE_BYTES = 256
MAX_JUSTIFICATION_BYTES = 512 * 1024
MAX_HEADER_BYTES = 4096

KeyCheck = Callable[[bytes, bytes, bytes], bool]  # (public key, message, signature) -> valid


class JustificationError(Exception):
    """A justification that does not prove finality of its block; `reason` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class SkipsSetChange(JustificationError):
    """A justification by a later voter set than ours: the block that changes the set must be
    finalized (by the old set) first."""


@dataclass(frozen=True, slots=True)
class VoterSet:
    """The validators that vote in one set: session key -> stake, and the set's id."""

    set_id: int
    voters: tuple[tuple[bytes, int], ...]

    @property
    def weights(self) -> dict[bytes, int]:
        return dict(self.voters)

    @property
    def total(self) -> int:
        return sum(stake for _key, stake in self.voters)

    def is_supermajority(self, weight: int) -> bool:
        """More than 2/3 of the set's stake (exact integer arithmetic)."""
        return 3 * weight > 2 * self.total

    def threshold(self) -> int:
        """The least weight that is a supermajority."""
        return 2 * self.total // 3 + 1


@dataclass(frozen=True, slots=True)
class Vote:
    set_id: int
    round: int
    step: int
    target_hash: bytes
    target_number: int
    voter: bytes
    signature: bytes

    def payload(self, genesis_hash: bytes) -> bytes:
        return compute_vote_payload(genesis_hash, self.set_id, self.round, self.step, self.target_hash,
                                    self.target_number)

    def is_signed_by_voter(self, genesis_hash: bytes, check: KeyCheck = verify_ed25519) -> bool:
        return check(self.voter, self.payload(genesis_hash), self.signature)

    def encode(self) -> bytes:
        return canonical.encode([MSG_VOTE, self.set_id, self.round, self.step, self.target_hash,
                                 self.target_number, self.voter, self.signature])


@dataclass(frozen=True, slots=True)
class Justification:
    set_id: int
    round: int
    target_hash: bytes
    target_number: int
    precommits: tuple[Vote, ...]
    ancestry: tuple[Header, ...]

    def to_list(self) -> list[Any]:
        return [self.set_id, self.round, self.target_hash, self.target_number,
                [[v.target_hash, v.target_number, v.voter, v.signature] for v in self.precommits],
                [h.encode() for h in self.ancestry]]

    def encode(self) -> bytes:
        return canonical.encode(self.to_list())


@dataclass(frozen=True, slots=True)
class Commit:
    justification: Justification

    def encode(self) -> bytes:
        return canonical.encode([MSG_COMMIT, self.justification.to_list()])


# --- decoding --------------------------------------------------------------------------------------


def _uint(value: Any, limit: int, what: str) -> int:
    if type(value) is not int or not 0 <= value <= limit:
        raise CodecError(f"{what} must be an integer in [0, {limit}]")
    return value


def _bytes(value: Any, length: int, what: str) -> bytes:
    if type(value) is not bytes or len(value) != length:
        raise CodecError(f"{what} must be {length} bytes")
    return value


def _list(value: Any, limit: int, what: str) -> list[Any]:
    if type(value) is not list or len(value) > limit:
        raise CodecError(f"{what} must be a list of at most {limit} items")
    return value


def _decode_vote_fields(fields: list[Any]) -> Vote:
    if len(fields) != 7:
        raise CodecError("a vote has 7 fields")
    set_id, round_number, step, target_hash, target_number, voter, signature = fields
    step = _uint(step, 1, "step")
    if step not in STEPS:
        raise CodecError("unknown vote step")
    return Vote(_uint(set_id, MAX_SET_ID, "set id"), _uint(round_number, MAX_ROUND, "round"), step,
                _bytes(target_hash, 32, "target hash"), _uint(target_number, MAX_BLOCK_NUMBER, "target number"),
                _bytes(voter, 32, "voter key"), _bytes(signature, 64, "signature"))


def _justification_from_list(value: Any) -> Justification:
    fields = _list(value, 6, "a justification")
    if len(fields) != 6:
        raise CodecError("a justification has 6 fields")
    set_id = _uint(fields[0], MAX_SET_ID, "set id")
    round_number = _uint(fields[1], MAX_ROUND, "round")
    target_hash = _bytes(fields[2], 32, "target hash")
    target_number = _uint(fields[3], MAX_BLOCK_NUMBER, "target number")
    precommits = []
    for item in _list(fields[4], 2 * MAX_VOTERS, "precommits"):
        entry = _list(item, 4, "a precommit")
        if len(entry) != 4:
            raise CodecError("a precommit has 4 fields")
        precommits.append(_decode_vote_fields([set_id, round_number, PRECOMMIT, *entry]))
    ancestry = []
    for raw in _list(fields[5], MAX_ANCESTRY, "ancestry"):
        if type(raw) is not bytes or len(raw) > MAX_HEADER_BYTES:
            raise CodecError(f"an ancestry header is bytes of at most {MAX_HEADER_BYTES}")
        ancestry.append(Header.decode(raw))
    return Justification(set_id, round_number, target_hash, target_number, tuple(precommits), tuple(ancestry))


def decode_justification(data: bytes) -> Justification:
    """Decode a justification; raises CodecError on anything malformed, oversize or trailing."""
    return _justification_from_list(canonical.decode(data, max_bytes=MAX_JUSTIFICATION_BYTES))


def decode_message(data: bytes) -> Vote | Commit:
    """Decode a gossiped finality message; raises CodecError on anything malformed."""
    value = canonical.decode(data, max_bytes=MAX_JUSTIFICATION_BYTES + 64)
    if type(value) is not list or not value:
        raise CodecError("a finality message is a non-empty list")
    kind = value[0]
    if kind == MSG_VOTE and type(kind) is int:
        if len(data) > MAX_VOTE_BYTES:
            raise CodecError(f"a vote is at most {MAX_VOTE_BYTES} bytes")
        return _decode_vote_fields(value[1:])
    if kind == MSG_COMMIT and type(kind) is int:
        if len(value) != 2:
            raise CodecError("a commit has 2 fields")
        return Commit(_justification_from_list(value[1]))
    raise CodecError(f"unknown finality message kind {kind!r}")


# --- verification ----------------------------------------------------------------------------------


def _descends_via(target: bytes, number: int, base: Header, known: dict[bytes, Header],
                  chain: HeaderSource) -> bool:
    """Whether block (target, number) is `base` or descends from it, by the given headers or the chain."""
    while number > base.number:
        header = known.get(target) or chain.get_header(target)
        if header is None or header.number != number:
            return False
        target, number = header.parent_hash, number - 1
    return number == base.number and target == base.hash


def compute_justification_weight(justification: Justification, voters: VoterSet, genesis_hash: bytes,
                                 chain: HeaderSource, base: Header, check: KeyCheck = verify_ed25519) -> int:
    """The stake behind `justification` for `base` (its target); raises JustificationError for a
    vote that is not a valid precommit of the set."""
    weights = voters.weights
    known = {h.hash: h for h in justification.ancestry}
    seen: dict[bytes, list[Vote]] = {}
    for vote in justification.precommits:
        # Verify that the voter belongs to the set.
        if vote.voter not in weights:
            raise JustificationError(f"precommit by 0x{vote.voter.hex()[:16]}, not a voter of set {voters.set_id}")
        votes = seen.setdefault(vote.voter, [])
        # Verify that a voter appears at most twice, with two different votes (an equivocation).
        if len(votes) >= 2 or any(v.target_hash == vote.target_hash for v in votes):
            raise JustificationError(f"voter 0x{vote.voter.hex()[:16]} is listed twice")
        # Verify that the precommit is signed by its voter.
        if not vote.is_signed_by_voter(genesis_hash, check):
            raise JustificationError(f"bad signature on the precommit of 0x{vote.voter.hex()[:16]}")
        votes.append(vote)
    weight = 0
    for voter, votes in seen.items():
        # An equivocator counts as voting for every block (GRANDPA); others for what they voted.
        if len(votes) == 2 or _descends_via(votes[0].target_hash, votes[0].target_number, base, known, chain):
            weight += weights[voter]
    return weight


def verify_justification(justification: Justification, target: Header, voters: VoterSet, genesis_hash: bytes,
                         chain: HeaderSource, check: KeyCheck = verify_ed25519) -> None:
    """Verify that `justification` finalizes `target` for the set `voters`; raises JustificationError."""
    # Verify that the justification is for this block.
    if justification.target_hash != target.hash or justification.target_number != target.number:
        raise JustificationError("the justification is for another block")
    # Verify that it was made by the voter set that finalizes this block.
    if justification.set_id != voters.set_id:
        raise JustificationError(f"the justification is from set {justification.set_id}, expected set {voters.set_id}")
    weight = compute_justification_weight(justification, voters, genesis_hash, chain, target, check)
    # Verify that more than 2/3 of the set's stake precommitted the block or its descendants.
    if not voters.is_supermajority(weight):
        raise JustificationError(f"the precommits carry {weight} of {voters.total} stake, not more than 2/3")


def build_ancestry(chain: HeaderSource, targets: Iterable[bytes], base: Header) -> tuple[Header, ...]:
    """The headers from each target down to (not including) `base`, each once."""
    out: dict[bytes, Header] = {}
    for target in targets:
        header = chain.get_header(target)
        while header is not None and header.number > base.number and header.hash not in out:
            out[header.hash] = header
            header = chain.get_header(header.parent_hash)
    return tuple(out.values())
