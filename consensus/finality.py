"""The finality gadget (GRANDPA-style), separate from block production.

Validators of the set (the elected set at the last finalized block, weighted by stake) vote in
rounds. In round r a voter prevotes for the head of its best chain (containing the previous
round's estimate), precommits for the prevote ghost (the highest block with more than 2/3 of
the stake in prevotes, counting a vote for a descendant for its ancestors) once the prevotes
have settled or a timeout passed, and moves to round r+1 when round r is completable. A block
with more than 2/3 of the stake in precommits is final with all its ancestors; those precommits
are its justification, stored with the block and sent as a commit message.

The gadget is a core driven by injected inputs: incoming message bytes (`on_message`), new
blocks (`on_block`), a clock tick (`on_tick`), justifications from sync
(`import_justification`). It reaches the chain through `FinalityChain`, sends through
`broadcast(bytes)`, signs with an injected `Signer` after persisting each vote's position in
the `SigningRecord`, and reports equivocations through `on_equivocation`.

A voter set changes only when the block whose state elects the new set is finalized by the old
set: the old set never votes past that block, and a justification that skips it is refused.
A node that finds others in a later round (more than 1/3 of the stake) joins it as an observer
and votes again from the round after, once it has seen that round complete.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from consensus.finality_messages import (
    Commit,
    Justification,
    JustificationError,
    KeyCheck,
    SkipsSetChange,
    Vote,
    VoterSet,
    build_ancestry,
    decode_justification,
    decode_message,
    verify_justification,
)
from consensus.finality_rounds import EQUIVOCATION, RoundState, RoundView, compute_round_view
from consensus.fork_choice import HeaderSource, is_descendant
from consensus.signing import BlockRef, DoubleSignRefused, Signer, SigningRecord, VoteRecord
from runtime.block import Header
from runtime.codec.errors import CodecError
from runtime.crypto import ss58_encode, verify_ed25519
from runtime.finality_vote import PRECOMMIT, PREVOTE

log = logging.getLogger(__name__)

ACCEPT, IGNORE, REJECT = "accept", "ignore", "reject"


class FinalityChain(HeaderSource, Protocol):
    """What the gadget reads and changes of the chain (the node's store, or a test's)."""

    def best_header(self) -> Header: ...

    def finalized_header(self) -> Header: ...

    def get_voter_set(self, block_hash: bytes) -> VoterSet:
        """The voter set elected in the state after `block_hash`."""
        ...

    def finalize(self, block_hash: bytes, justification: bytes) -> None:
        """Finalize `block_hash` with its encoded justification (checks ancestry)."""
        ...


@dataclass(frozen=True, slots=True)
class Verdict:
    """What became of an inbound message: accept (valid, worth relaying), ignore (valid or
    harmless but useless now), reject (invalid: the sender should lose reputation)."""

    kind: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Equivocation:
    """Two different signed votes by one voter in one set, round and step."""

    first: Vote
    second: Vote


@dataclass(frozen=True, slots=True)
class FinalityConfig:
    genesis_hash: bytes
    precommit_wait_ms: int = 2000   # precommit after this long even if prevotes may still move
    idle_round_ms: int = 5000       # prevote with no new block after this long (keeps rounds moving)
    rebroadcast_ms: int = 2000      # resend our current votes and the last commit while our round
                                    # is stuck (lossy gossip), ask again for blocks held votes name
    full_rebroadcast_ms: int = 8000  # resend them even while rounds move (a peer may still lack them)
    commit_spacing_ms: int = 250    # a voter's turn to send a round's commit (see _schedule_commit)
    future_rounds: int = 2          # rounds ahead of ours whose votes we keep


class FinalityGadget:
    def __init__(self, chain: FinalityChain, config: FinalityConfig, broadcast: Callable[[bytes], None],
                 now_ms: int, signer: Signer | None = None, record: SigningRecord | None = None,
                 on_equivocation: Callable[[Equivocation], None] | None = None,
                 on_finalized: Callable[[bytes], None] | None = None, check: KeyCheck = verify_ed25519,
                 on_unknown_target: Callable[[bytes, int], None] | None = None):
        self.chain = chain
        self.config = config
        self.broadcast = broadcast
        self.signer = signer
        self.record = record
        self.on_equivocation = on_equivocation
        self.on_finalized = on_finalized
        self.on_unknown_target = on_unknown_target  # a held vote names a block we lack: fetch it
        self.check = check
        self.rounds: dict[int, RoundState] = {}
        self.round = 0
        self.sightings: dict[bytes, int] = {}  # voter -> highest round it was seen voting in
        self.reported: set[tuple[bytes, int, int, int]] = set()
        self.last_commit: bytes | None = None
        self.last_rebroadcast_ms = self.last_full_rebroadcast_ms = now_ms
        self._pending_commit: tuple[int, int, bytes] | None = None  # (when, target number, message)
        # Round views, memoized per (round, votes held, finalized block) and dropped whenever a
        # block arrives (a vote for a block we did not have may now count).
        self._views: dict[tuple[int, int, int, bytes], RoundView] = {}
        self.finalized = chain.finalized_header()
        self.voters = chain.get_voter_set(self.finalized.hash)
        self._start_set(now_ms)

    # --- inputs --------------------------------------------------------------------------------

    def on_block(self, now_ms: int) -> None:
        """A block was imported (our best chain may have grown)."""
        self._views.clear()
        self._step(now_ms)

    def on_tick(self, now_ms: int) -> None:
        self._step(now_ms)
        self._send_due_commit(now_ms)
        if now_ms - self.last_rebroadcast_ms >= self.config.rebroadcast_ms:
            self.last_rebroadcast_ms = now_ms
            # While rounds complete, everyone has the votes: resending them every interval was
            # most of an 8-validator devnet's gossip. Resent when our round is stuck, and now
            # and then regardless.
            stuck = now_ms - self.rounds[self.round].started_ms >= self.config.rebroadcast_ms
            if stuck or now_ms - self.last_full_rebroadcast_ms >= self.config.full_rebroadcast_ms:
                self.last_full_rebroadcast_ms = now_ms
                self._rebroadcast()
            self._ask_for_unknown_targets(self._get_held_votes(self.round - 1, self.round))

    def on_message(self, data: bytes, now_ms: int) -> Verdict:
        """Handle one gossiped finality message (a vote or a commit)."""
        try:
            message = decode_message(data)
        except CodecError as exc:
            return Verdict(REJECT, f"malformed finality message: {exc}")
        if isinstance(message, Commit):
            return self._on_commit(message.justification, now_ms)
        return self._on_vote(message, now_ms)

    def import_justification(self, block_hash: bytes, data: bytes, now_ms: int) -> bool:
        """Check and apply a justification received with a block (sync); raises
        JustificationError with the reason. Returns whether it finalized something new."""
        try:
            justification = decode_justification(data)
        except CodecError as exc:
            raise JustificationError(f"malformed justification: {exc}") from None
        if justification.target_hash != block_hash:
            raise JustificationError("the justification is for another block")
        target = self.chain.get_header(block_hash)
        if target is None:
            raise JustificationError(f"unknown block 0x{block_hash.hex()}")
        if target.number <= self.finalized.number:
            if self.chain.hash_at(target.number) != target.hash:
                raise JustificationError("the block conflicts with the finalized chain")
            return False
        self._apply_justification(justification, target, data, now_ms)
        self._step(now_ms)
        return True

    # --- state for RPC -------------------------------------------------------------------------

    def get_round_state(self) -> dict[str, Any]:
        """`grandpa_roundState` in Substrate's shape."""
        def step_state(rnd: RoundState, step: int) -> dict[str, Any]:
            votes = rnd.step_votes(step)
            weights = self.voters.weights
            present = set(votes.votes) | set(votes.equivocations)
            return {"currentWeight": sum(weights[v] for v in present if v in weights),
                    "missing": sorted(ss58_encode(k) for k in weights if k not in present)}

        def round_state(rnd: RoundState) -> dict[str, Any]:
            return {"round": rnd.number, "totalWeight": self.voters.total, "thresholdWeight": self.voters.threshold(),
                    "prevotes": step_state(rnd, PREVOTE), "precommits": step_state(rnd, PRECOMMIT)}

        current = self.rounds[self.round]
        background = [round_state(r) for n, r in sorted(self.rounds.items()) if n < self.round]
        return {"setId": self.voters.set_id, "best": round_state(current), "background": background}

    # --- votes ---------------------------------------------------------------------------------

    def _on_vote(self, vote: Vote, now_ms: int) -> Verdict:
        if vote.set_id != self.voters.set_id:
            return Verdict(IGNORE, f"vote for set {vote.set_id}, ours is {self.voters.set_id}")
        if vote.voter not in self.voters.weights:
            return Verdict(REJECT, f"vote by 0x{vote.voter.hex()[:16]}, not a voter of set {vote.set_id}")
        if not vote.is_signed_by_voter(self.config.genesis_hash, self.check):
            return Verdict(REJECT, "bad vote signature")
        if vote.round > self.sightings.get(vote.voter, 0):
            self.sightings[vote.voter] = vote.round
        if vote.round < self.round - 1:
            return Verdict(IGNORE, f"vote for old round {vote.round}")
        if vote.round > self.round + self.config.future_rounds:
            self._step(now_ms)  # may join the later round others are in
            return Verdict(IGNORE, f"vote for round {vote.round}, too far ahead of {self.round}")
        verdict = self._add_vote(vote, now_ms)
        self._step(now_ms)
        return verdict

    def _add_vote(self, vote: Vote, now_ms: int) -> Verdict:
        rnd = self.rounds.get(vote.round)
        if rnd is None:
            rnd = self.rounds[vote.round] = RoundState(vote.round, now_ms)
        outcome = rnd.step_votes(vote.step).add(vote)
        if outcome == EQUIVOCATION:
            self._report(rnd.step_votes(vote.step).equivocations[vote.voter])
            return Verdict(ACCEPT, "equivocation")
        if outcome != "added":
            return Verdict(IGNORE, "duplicate vote")
        self._ask_for_unknown_targets([vote])
        return Verdict(ACCEPT)

    def _ask_for_unknown_targets(self, votes: Iterable[Vote]) -> None:
        """Ask (`on_unknown_target`) for each block above our finalized one that these votes
        name and we lack: until we hold it such a vote counts as not cast, and a round that
        needs it never completes in our view. Asked when the vote arrives and again at each
        rebroadcast while its round is current or previous: a fetch can fail (no peer yet, a
        timeout, a block far above our best) and a resent vote is a duplicate that asks nothing."""
        if self.on_unknown_target is None:
            return
        unknown = {v.target_hash: v.target_number for v in votes
                   if v.target_number > self.finalized.number and self.chain.get_header(v.target_hash) is None}
        for block_hash, number in unknown.items():
            self.on_unknown_target(block_hash, number)

    def _get_held_votes(self, *numbers: int) -> list[Vote]:
        """The prevotes and precommits we hold of these rounds (each voter's first)."""
        votes: list[Vote] = []
        for number in numbers:
            rnd = self.rounds.get(number)
            if rnd is not None:
                votes += [*rnd.prevotes.votes.values(), *rnd.precommits.votes.values()]
        return votes

    def _report(self, pair: tuple[Vote, Vote]) -> None:
        first, second = pair
        key = (first.voter, first.set_id, first.round, first.step)
        if key in self.reported:
            return
        if len(self.reported) >= 4096:  # bounded; a repeat report is refused on chain anyway
            self.reported.clear()
        self.reported.add(key)
        log.warning("finality equivocation voter=0x%s set=%d round=%d step=%d", first.voter.hex()[:16],
                    first.set_id, first.round, first.step)
        if self.on_equivocation is not None:
            self.on_equivocation(Equivocation(first, second))

    def _cast(self, rnd: RoundState, step: int, target: Header, estimate: Header) -> Vote | None:
        """Record, sign, keep and broadcast our vote; None when we may not vote."""
        signer = self.signer
        if signer is None or self.record is None:
            return None
        try:
            self.record.record_vote(signer.public, self.voters.set_id, rnd.number, step,
                                    (target.hash, target.number), (estimate.hash, estimate.number))
        except DoubleSignRefused as exc:
            log.info("finality vote skipped set=%d round=%d step=%d reason=%s", self.voters.set_id, rnd.number,
                     step, exc)
            return None
        return self._issue(signer, rnd, step, (target.hash, target.number))

    def _issue(self, signer: Signer, rnd: RoundState, step: int, target: BlockRef) -> Vote:
        """Sign, keep and broadcast a vote the signing record already holds."""
        unsigned = Vote(self.voters.set_id, rnd.number, step, target[0], target[1], signer.public, b"")
        vote = Vote(unsigned.set_id, unsigned.round, step, target[0], target[1], signer.public,
                    signer.sign(unsigned.payload(self.config.genesis_hash)))
        rnd.step_votes(step).add(vote)
        self.broadcast(vote.encode())
        log.debug("finality vote set=%d round=%d step=%d target=#%d", self.voters.set_id, rnd.number, step,
                  target[1])
        return vote

    def _is_voter(self) -> bool:
        return self.signer is not None and self.signer.public in self.voters.weights

    # --- the round machine ---------------------------------------------------------------------

    def _start_set(self, now_ms: int) -> None:
        """Begin the voter set of the finalized block at round 1, or, after a restart, in the
        round we last voted in, re-issuing the very votes we signed there and in the round
        before it."""
        self._views = {}
        self.rounds = {}
        self.sightings = {}
        self.first_round, self.first_estimate = 1, self.finalized
        record = None
        if self.signer is not None and self.record is not None:
            record = self.record.get_vote_record(self.signer.public)
        if record is not None and record.set_id == self.voters.set_id:
            self.first_round = record.round
            estimate = self.chain.get_header(record.estimate[0])
            self.first_estimate = estimate if estimate is not None else self.finalized
        self._enter_round(self.first_round, now_ms)
        if record is not None and record.set_id == self.voters.set_id:
            self._resume(record, now_ms)
        log.info("finality voter set set_id=%d voters=%d total=%d finalized=#%d round=%d", self.voters.set_id,
                 len(self.voters.voters), self.voters.total, self.finalized.number, self.round)

    def _resume(self, record: VoteRecord, now_ms: int) -> None:
        """Re-issue the votes the record holds, of our last round and of the round before it:
        we are the only ones who resend them, and a peer that missed them (one that joins our
        round, say) may need them to see that round complete. We do not vote again in a step
        we voted in."""
        signer = self.signer
        if signer is None:
            return
        for number, prevote, precommit in ((record.round - 1, record.previous_prevote, record.previous_precommit),
                                           (record.round, record.prevote, record.precommit)):
            if prevote is None and precommit is None:
                continue
            rnd = self.rounds.setdefault(number, RoundState(number, now_ms))
            if prevote is not None:
                rnd.our_prevote, rnd.prevoted = self._issue(signer, rnd, PREVOTE, prevote), True
            if precommit is not None:
                rnd.our_precommit, rnd.precommitted = self._issue(signer, rnd, PRECOMMIT, precommit), True

    def _enter_round(self, number: int, now_ms: int) -> None:
        rnd = self.rounds.get(number)
        if rnd is None:
            rnd = self.rounds[number] = RoundState(number, now_ms)
        else:
            rnd.started_ms = now_ms
        self.round = number
        for old in [n for n in self.rounds if n < number - 1]:
            del self.rounds[old]

    def _view(self, number: int) -> RoundView:
        rnd = self.rounds[number]
        key = (number, len(rnd.prevotes.votes) + len(rnd.prevotes.equivocations),
               len(rnd.precommits.votes) + len(rnd.precommits.equivocations), self.finalized.hash)
        view = self._views.get(key)
        if view is None:
            if len(self._views) > 64:
                self._views.clear()
            view = self._views[key] = compute_round_view(rnd, self.voters, self.finalized, self.chain)
        return view

    def _previous_estimate(self, number: int) -> Header | None:
        """E_{r-1}: what our votes in round `number` must build on, or None while we do not
        know it (we have not seen round r-1 complete)."""
        if number == self.first_round:
            return self.first_estimate if self.first_estimate.number >= self.finalized.number else self.finalized
        previous = self.rounds.get(number - 1)
        if previous is None:
            return None
        view = self._view(previous.number)
        if not view.completable or view.estimate is None:
            return None
        return self.chain.get_header(view.estimate)

    def _step(self, now_ms: int) -> None:
        for _ in range(8):
            before = (self.round, self.finalized.hash, len(self.rounds))
            self._try_prevote(now_ms)
            self._try_precommit(now_ms)
            self._try_finalize(now_ms)
            self._try_advance(now_ms)
            self._try_join_later_round(now_ms)
            if (self.round, self.finalized.hash, len(self.rounds)) == before:
                break

    def _try_prevote(self, now_ms: int) -> None:
        rnd = self.rounds[self.round]
        if rnd.prevoted or not self._is_voter():
            return
        estimate = self._previous_estimate(rnd.number)
        if estimate is None:
            return
        target = self._get_vote_target()
        if not is_descendant(self.chain, target, estimate):
            target = estimate
        # Nothing new to vote on yet: our head is final already, or it is the previous round's
        # estimate, which that round's precommits may still finalize. A round is completable
        # before its precommits finalize anything (with 8 voters, once 3 precommitted), and
        # prevoting the same head again at once ran two rounds per block: twice the votes.
        if (target.number <= self.finalized.number or target.hash == estimate.hash) \
                and now_ms - rnd.started_ms < self.config.idle_round_ms:
            return
        rnd.our_prevote = self._cast(rnd, PREVOTE, target, estimate)
        rnd.prevoted = True

    def _try_precommit(self, now_ms: int) -> None:
        rnd = self.rounds[self.round]
        if not rnd.prevoted or rnd.precommitted or not self._is_voter():
            return
        view = self._view(rnd.number)
        ghost = self.chain.get_header(view.prevote_ghost) if view.prevote_ghost is not None else None
        if ghost is None:
            return
        if not view.prevotes_settled and now_ms - rnd.started_ms < self.config.precommit_wait_ms:
            return
        estimate = self._previous_estimate(rnd.number)
        if estimate is None or not is_descendant(self.chain, ghost, estimate):
            return
        rnd.our_precommit = self._cast(rnd, PRECOMMIT, ghost, estimate)
        rnd.precommitted = True

    def _try_finalize(self, now_ms: int) -> None:
        best: tuple[Header, RoundState] | None = None
        for rnd in list(self.rounds.values()):
            ghost = self._view(rnd.number).precommit_ghost
            header = self.chain.get_header(ghost) if ghost is not None else None
            if header is not None and header.number > self.finalized.number and (
                    best is None or header.number > best[0].number):
                best = (header, rnd)
        if best is None:
            return
        header, rnd = best
        justification = self._build_justification(rnd, header)
        self._finalize(header, justification.encode(), now_ms)
        self.last_commit = Commit(justification).encode()
        self._schedule_commit(rnd.number, header.number, self.last_commit, now_ms)

    def _schedule_commit(self, round_number: int, target_number: int, commit: bytes, now_ms: int) -> None:
        """Send the commit of what we just finalized in our turn: every voter that saw the
        precommits finalizes at about the same time, and when each sent its commit at once, every
        node received one per voter per round. The voters take turns, rotating with the round
        (observers last), and each sends only if no commit as high has reached it before its turn."""
        keys = [key for key, _stake in self.voters.voters]
        ours = self.signer.public if self.signer is not None else None
        turn = (keys.index(ours) - round_number) % len(keys) if ours in keys else len(keys)
        self._pending_commit = (now_ms + turn * self.config.commit_spacing_ms, target_number, commit)
        self._send_due_commit(now_ms)

    def _send_due_commit(self, now_ms: int) -> None:
        pending = self._pending_commit
        if pending is not None and now_ms >= pending[0]:
            self._pending_commit = None
            self.broadcast(pending[2])

    def _on_commit_for_final_block(self, justification: Justification, target: Header) -> None:
        """A commit for a block we finalized already: if it is as high as the one we are waiting
        to send, and valid (a forged one must not silence ours), ours is not needed."""
        pending = self._pending_commit
        if pending is None or target.number < pending[1]:
            return
        try:
            verify_justification(justification, target, self.voters, self.config.genesis_hash, self.chain, self.check)
        except JustificationError:
            return
        self._pending_commit = None

    def _try_advance(self, now_ms: int) -> None:
        rnd = self.rounds[self.round]
        owes_precommit = rnd.prevoted and not rnd.precommitted and self._is_voter()
        if owes_precommit and now_ms - rnd.started_ms < self.config.precommit_wait_ms:
            return  # we still owe this round our precommit
        if self._view(rnd.number).completable:
            self._enter_round(rnd.number + 1, now_ms)

    def _try_join_later_round(self, now_ms: int) -> None:
        """If voters with more than 1/3 of the stake vote in a round above ours, at least one
        honest voter is there: join it. We vote there once we have seen the round before it
        complete (others resend their votes of that round)."""
        weights = self.voters.weights
        by_round = sorted(((r, weights[v]) for v, r in self.sightings.items()), reverse=True)
        weight = 0
        for number, stake in by_round:
            weight += stake
            if 3 * weight > self.voters.total:
                if number > self.round:
                    log.info("finality joining later round=%d from=%d", number, self.round)
                    self._enter_round(number, now_ms)
                return

    def _get_vote_target(self) -> Header:
        """The head of our best chain, but never past the first block that changes the voter set
        (the old set finalizes that block; the new set votes from there)."""
        best = self.chain.best_header()
        if not is_descendant(self.chain, best, self.finalized):
            return self.finalized
        chain: list[Header] = []
        header: Header | None = best
        while header is not None and header.number > self.finalized.number:
            chain.append(header)
            header = self.chain.get_header(header.parent_hash)
        for header in reversed(chain):
            if self.chain.get_voter_set(header.hash).set_id != self.voters.set_id:
                return header
        return best

    # --- finality ------------------------------------------------------------------------------

    def _build_justification(self, rnd: RoundState, target: Header) -> Justification:
        precommits: list[Vote] = []
        for voter, vote in rnd.precommits.votes.items():
            pair = rnd.precommits.equivocations.get(voter)
            if pair is not None:
                precommits.extend(pair)
            elif (header := self.chain.get_header(vote.target_hash)) is not None and \
                    is_descendant(self.chain, header, target):
                precommits.append(vote)
        ancestry = build_ancestry(self.chain, {v.target_hash for v in precommits}, target)
        return Justification(self.voters.set_id, rnd.number, target.hash, target.number, tuple(precommits), ancestry)

    def _on_commit(self, justification: Justification, now_ms: int) -> Verdict:
        target = self.chain.get_header(justification.target_hash)
        if target is None:
            return Verdict(IGNORE, "commit for an unknown block")
        if target.number <= self.finalized.number:
            self._on_commit_for_final_block(justification, target)
            return Verdict(IGNORE, "commit for a block already final")
        try:
            self._apply_justification(justification, target, justification.encode(), now_ms)
        except JustificationError as exc:
            return Verdict(REJECT, exc.reason)
        self._step(now_ms)
        return Verdict(ACCEPT)

    def _apply_justification(self, justification: Justification, target: Header, data: bytes, now_ms: int) -> None:
        # Verify that the block descends from our finalized block.
        if not is_descendant(self.chain, target, self.finalized):
            raise JustificationError("the block does not descend from the finalized block")
        parent = self.chain.get_header(target.parent_hash)
        # Verify that the justification does not skip a voter-set change (the old set finalizes it).
        if parent is None or self.chain.get_voter_set(parent.hash).set_id != self.voters.set_id:
            raise SkipsSetChange("the justification skips a voter-set change")
        verify_justification(justification, target, self.voters, self.config.genesis_hash, self.chain, self.check)
        self._finalize(target, data, now_ms)
        self.last_commit = Commit(justification).encode()
        if self._pending_commit is not None and self._pending_commit[1] <= target.number:
            self._pending_commit = None  # the network has a higher commit than ours

    def _finalize(self, header: Header, justification: bytes, now_ms: int) -> None:
        self.chain.finalize(header.hash, justification)
        self.finalized = header
        log.debug("finalized number=%d hash=0x%s round=%d", header.number, header.hash.hex()[:16], self.round)
        if self.on_finalized is not None:
            self.on_finalized(header.hash)
        voters = self.chain.get_voter_set(header.hash)
        if voters.set_id != self.voters.set_id:
            self.voters = voters
            self._start_set(now_ms)

    def _rebroadcast(self) -> None:
        for number in (self.round - 1, self.round):
            rnd = self.rounds.get(number)
            if rnd is None:
                continue
            for vote in (rnd.our_prevote, rnd.our_precommit):
                if vote is not None:
                    self.broadcast(vote.encode())
        if self.last_commit is not None:
            self.broadcast(self.last_commit)
