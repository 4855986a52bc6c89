"""One finality round's votes and GRANDPA's functions over them, relative to a base block (the
last finalized block): the weight behind each block (a vote for a descendant counts for its
ancestors; an equivocator counts for every block), the ghost (the highest block with more
than 2/3 of the stake), whether a block can still reach a supermajority, the round's estimate
and whether the round is completable. Pure: the caller gives the headers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consensus.finality_messages import Vote, VoterSet
from consensus.fork_choice import HeaderSource
from runtime.block import Header

ADDED, DUPLICATE, EQUIVOCATION = "added", "duplicate", "equivocation"


@dataclass
class StepVotes:
    """The votes of one step of one round: each voter's first vote, and equivocators' pairs."""

    votes: dict[bytes, Vote] = field(default_factory=dict)
    equivocations: dict[bytes, tuple[Vote, Vote]] = field(default_factory=dict)

    def add(self, vote: Vote) -> str:
        first = self.votes.get(vote.voter)
        if first is None:
            self.votes[vote.voter] = vote
            return ADDED
        if first.target_hash == vote.target_hash or vote.voter in self.equivocations:
            return DUPLICATE
        self.equivocations[vote.voter] = (first, vote)
        return EQUIVOCATION

    def voters(self) -> set[bytes]:
        return set(self.votes)


@dataclass
class Tally:
    """Weights of one step's votes over the block tree above `base`."""

    base: Header
    weight: dict[bytes, int]            # block hash -> stake of (honest) votes for it or a descendant
    children: dict[bytes, list[bytes]]  # block hash -> children that carry votes
    numbers: dict[bytes, int]
    equivocating: int                   # stake of equivocators (counted for every block)
    unvoted: int                        # stake that has not voted, or whose vote we cannot place yet
    voters: VoterSet

    def get_weight(self, block_hash: bytes) -> int:
        return self.weight.get(block_hash, 0) + self.equivocating

    def is_possible(self, block_hash: bytes) -> bool:
        """Whether the votes still to come could give `block_hash` a supermajority."""
        return self.voters.is_supermajority(self.get_weight(block_hash) + self.unvoted)

    def get_ghost(self) -> bytes | None:
        """The highest block above the base (inclusive) with a supermajority, if any."""
        current = self.base.hash
        if not self.voters.is_supermajority(self.get_weight(current)):
            return None
        while True:
            heavy = [c for c in self.children.get(current, []) if self.voters.is_supermajority(self.get_weight(c))]
            if not heavy:
                return current
            current = heavy[0]  # at most one child can hold a supermajority

    def can_any_child_reach_supermajority(self, block_hash: bytes) -> bool:
        """Whether some child of `block_hash` (voted for or not yet) could still get a supermajority."""
        if self.voters.is_supermajority(self.equivocating + self.unvoted):
            return True  # even a child nobody voted for yet
        return any(self.is_possible(c) for c in self.children.get(block_hash, []))


def path_to_base(chain: HeaderSource, target_hash: bytes, target_number: int, base: Header,
                 cache: dict[bytes, list[bytes] | None]) -> list[bytes] | None:
    """Hashes from the base (inclusive) up to the target, or None if the target is unknown or
    not a descendant of the base."""
    if target_hash in cache:
        return cache[target_hash]
    path: list[bytes] = []
    block_hash, number = target_hash, target_number
    while number > base.number:
        header = chain.get_header(block_hash)
        if header is None or header.number != number:
            cache[target_hash] = None
            return None
        path.append(block_hash)
        block_hash, number = header.parent_hash, number - 1
    result = [base.hash] + path[::-1] if number == base.number and block_hash == base.hash else None
    cache[target_hash] = result
    return result


def compute_tally(step: StepVotes, voters: VoterSet, base: Header, chain: HeaderSource,
                  cache: dict[bytes, list[bytes] | None] | None = None) -> Tally:
    cache = {} if cache is None else cache
    weights = voters.weights
    weight: dict[bytes, int] = {}
    children: dict[bytes, list[bytes]] = {}
    numbers: dict[bytes, int] = {}
    equivocating = sum(weights.get(v, 0) for v in step.equivocations)
    placed = 0
    for voter, vote in step.votes.items():
        if voter in step.equivocations:
            continue
        stake = weights.get(voter, 0)
        if vote.target_number < base.number:
            placed += stake  # a vote below the base supports nothing above it
            continue
        path = path_to_base(chain, vote.target_hash, vote.target_number, base, cache)
        if path is None:
            if chain.get_header(vote.target_hash) is not None:
                placed += stake  # a known block off the finalized chain
            continue  # an unknown block: it may yet turn out to descend from the base
        placed += stake
        for i, block_hash in enumerate(path):
            weight[block_hash] = weight.get(block_hash, 0) + stake
            numbers[block_hash] = base.number + i
            if i + 1 < len(path):
                kids = children.setdefault(block_hash, [])
                if path[i + 1] not in kids:
                    kids.append(path[i + 1])
    unvoted = voters.total - placed - equivocating
    return Tally(base, weight, children, numbers, equivocating, unvoted, voters)


@dataclass
class RoundState:
    """One round of one voter set: its prevotes and precommits, when we entered it, and what
    we voted in it (a step is done once we voted, or chose or were refused not to)."""

    number: int
    started_ms: int
    prevotes: StepVotes = field(default_factory=StepVotes)
    precommits: StepVotes = field(default_factory=StepVotes)
    our_prevote: Vote | None = None
    our_precommit: Vote | None = None
    prevoted: bool = False
    precommitted: bool = False

    def step_votes(self, step: int) -> StepVotes:
        return self.prevotes if step == 0 else self.precommits


@dataclass(frozen=True, slots=True)
class RoundView:
    prevote_ghost: bytes | None
    precommit_ghost: bytes | None
    estimate: bytes | None
    completable: bool
    prevotes_settled: bool  # no child of the prevote ghost can still reach a supermajority


def compute_round_view(rnd: RoundState, voters: VoterSet, base: Header, chain: HeaderSource) -> RoundView:
    cache: dict[bytes, list[bytes] | None] = {}
    prevotes = compute_tally(rnd.prevotes, voters, base, chain, cache)
    precommits = compute_tally(rnd.precommits, voters, base, chain, cache)
    g_prevote = prevotes.get_ghost()
    g_precommit = precommits.get_ghost()
    if g_prevote is None:
        return RoundView(None, g_precommit, None, False, False)
    # The estimate: the highest ancestor of the prevote ghost that precommits could still finalize.
    path = path_to_base(chain, g_prevote, prevotes.numbers[g_prevote], base, cache) or [base.hash]
    estimate = base.hash
    for block_hash in reversed(path):
        if precommits.is_possible(block_hash):
            estimate = block_hash
            break
    completable = estimate != g_prevote or not precommits.can_any_child_reach_supermajority(g_prevote)
    settled = not prevotes.can_any_child_reach_supermajority(g_prevote)
    return RoundView(g_prevote, g_precommit, estimate, completable, settled)
