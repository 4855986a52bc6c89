"""What a finality vote signs. Shared by the finality gadget (consensus/), which signs and checks
votes, and the runtime, which checks the two signed votes of an equivocation report: one
definition, so both sides agree byte for byte.

The payload is canonical msgpack: [context, genesis hash, set id, round, step, target hash,
target number]. The genesis hash keeps votes of one chain from counting on another.
"""

from __future__ import annotations

from runtime.codec import canonical

VOTE_CONTEXT = b"gsyn-grandpa-vote"
PREVOTE = 0
PRECOMMIT = 1
STEPS = (PREVOTE, PRECOMMIT)
MAX_ROUND = 2**63 - 1
MAX_SET_ID = 2**63 - 1
MAX_BLOCK_NUMBER = 2**32 - 1


def compute_vote_payload(genesis_hash: bytes, set_id: int, round_number: int, step: int, target_hash: bytes,
                         target_number: int) -> bytes:
    return canonical.encode([VOTE_CONTEXT, genesis_hash, set_id, round_number, step, target_hash, target_number])
