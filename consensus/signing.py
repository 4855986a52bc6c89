"""What consensus needs from the node to sign: a session key that signs, and a persisted record
of what that key last signed (slot for blocks; set, round and step for finality votes). The
node injects both; consensus never opens a key store or a database itself.

A validator records what it is about to sign, durably, before it releases the signature, so a
restart (or a second process with the same key) never signs two blocks for one slot or two
votes for one round and step.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol


class DoubleSignRefused(Exception):
    """This key already signed for this slot (or round and step), or a later one."""


class Signer(Protocol):
    """An ed25519 session key: its public key and a signing function."""

    @property
    def public(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


VotePosition = tuple[int, int, int]  # (set id, round, step): ordered as the gadget moves on
BlockRef = tuple[bytes, int]  # (hash, number)


@dataclass(frozen=True, slots=True)
class VoteRecord:
    """What a key voted in its latest round: the estimate of the round before (what its votes
    had to build on), its prevote and precommit targets, and its targets in the round before
    when it voted there. Enough for a restarted validator to re-issue exactly the same votes
    (ed25519 signatures are deterministic) and go on; peers that missed its votes of the round
    before need them to see that round complete, and only their signer resends them."""

    set_id: int
    round: int
    estimate: BlockRef
    prevote: BlockRef | None = None
    precommit: BlockRef | None = None
    previous_prevote: BlockRef | None = None  # in round - 1
    previous_precommit: BlockRef | None = None

    @property
    def position(self) -> VotePosition:
        return (self.set_id, self.round, 1 if self.precommit is not None else 0)

    def target(self, step: int) -> BlockRef | None:
        return self.prevote if step == 0 else self.precommit


def compute_next_vote_record(last: VoteRecord | None, set_id: int, round_number: int, step: int,
                             target: BlockRef, estimate: BlockRef) -> VoteRecord:
    """The record after voting `target` at (set_id, round, step); raises DoubleSignRefused when
    that vote would conflict with one already signed (the same vote again is allowed)."""
    if last is not None and (last.set_id, last.round) == (set_id, round_number):
        signed = last.target(step)
        if signed is not None:
            if signed != target:
                raise DoubleSignRefused(f"already voted {signed[1]} at {(set_id, round_number, step)}")
            return last
        if step == 0 and last.precommit is not None:
            raise DoubleSignRefused(f"already precommitted in round {round_number}")
        return replace(last, prevote=target) if step == 0 else replace(last, precommit=target)
    if last is not None and (last.set_id, last.round) > (set_id, round_number):
        raise DoubleSignRefused(f"already voted in set {last.set_id} round {last.round}")
    new = VoteRecord(set_id, round_number, estimate)
    if last is not None and (last.set_id, last.round) == (set_id, round_number - 1):
        new = replace(new, previous_prevote=last.prevote, previous_precommit=last.precommit)
    return replace(new, prevote=target) if step == 0 else replace(new, precommit=target)


class SigningRecord(Protocol):
    """Durable, monotonic record of what each session key signed."""

    def record_slot(self, session_key: bytes, slot: int) -> None:
        """Persist (synced) that `session_key` signs `slot`; raise DoubleSignRefused unless
        `slot` is above the last slot it signed."""
        ...

    def record_vote(self, session_key: bytes, set_id: int, round_number: int, step: int, target: BlockRef,
                    estimate: BlockRef) -> None:
        """Persist (synced) that `session_key` votes `target` at (set_id, round, step); raise
        DoubleSignRefused if that conflicts with what it signed (see compute_next_vote_record)."""
        ...

    def get_vote_record(self, session_key: bytes) -> VoteRecord | None:
        """What `session_key` voted in its latest round, if anything."""
        ...
