"""Header verification before execution: the slot is later than the parent's and not in the
future, the author is the slot's leader at the parent's state, and the seal is the leader's
session-key signature of the pre-seal header hash. A failure raises InvalidBlock."""

from __future__ import annotations

from collections.abc import Callable

from consensus.authorities import get_authorities, get_randomness
from consensus.slots import compute_slot, get_slot_leader
from runtime.block import Header
from runtime.codec.errors import CodecError
from runtime.crypto import verify_ed25519
from runtime.executive import InvalidBlock
from runtime.trie import Trie

# How many slots ahead of our clock a header may claim (clock drift between nodes).
MAX_FUTURE_SLOTS = 2


class FutureSlot(InvalidBlock):
    """A header for a slot still ahead of our clock: not valid yet, but not the sender's fault
    either (clocks drift), so it is ignored rather than punished."""


def make_seal_check(slot_ms: int, now_ms: Callable[[], int]) -> Callable[[Header, Header, Trie], None]:
    def check_seal(header: Header, parent: Header, parent_state: Trie) -> None:
        try:
            slot, author = header.slot_and_author()
        except CodecError as exc:
            raise InvalidBlock(str(exc)) from None
        # Verify that the slot moves forward from the parent's.
        if parent.number > 0 and slot <= parent.slot_and_author()[0]:
            raise InvalidBlock(f"slot {slot} is not after the parent's slot")
        # Verify that the slot is not in the future.
        if slot > compute_slot(now_ms(), slot_ms) + MAX_FUTURE_SLOTS:
            raise FutureSlot(f"slot {slot} is in the future")
        leader = get_slot_leader(get_authorities(parent_state), get_randomness(parent_state), slot)
        # Verify that the author is the slot's leader.
        if leader is None or leader.account != author:
            raise InvalidBlock(f"the author is not the leader of slot {slot}")
        seal = header.seal()
        # Verify that the leader's session key sealed the header.
        if seal is None or not verify_ed25519(leader.session_key, header.pre_seal().hash, seal):
            raise InvalidBlock("missing or bad seal")

    return check_seal
