"""Equivocation detection on the node and the reports it submits.

Any node watches what it imports and hears: two blocks sealed by one author for one slot (seen
by block import), or two different votes by one voter in one finality round and step (seen by
the gadget). Either becomes an unsigned `Offences` report extrinsic, submitted to the node's
own pool like any transaction (the pool validates it by dispatching it on the best state), so
the next author includes it and the runtime slashes the offender.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from consensus.finality import Equivocation
from runtime.block import Header
from runtime.codec.errors import CodecError
from runtime.extrinsic import encode_unsigned
from runtime.version import Runtime

log = logging.getLogger(__name__)
MAX_TRACKED_SLOTS = 4096


def encode_vote_report(runtime: Runtime, equivocation: Equivocation) -> bytes:
    """The unsigned `Offences.report_vote_equivocation` extrinsic for `equivocation`."""
    first, second = equivocation.first, equivocation.second
    proof = {"voter": first.voter, "set_id": first.set_id, "round": first.round, "step": first.step,
             "first": {"target_hash": first.target_hash, "target_number": first.target_number,
                       "signature": first.signature},
             "second": {"target_hash": second.target_hash, "target_number": second.target_number,
                        "signature": second.signature}}
    return encode_unsigned(runtime.encode_call("Offences", "report_vote_equivocation", {"equivocation": proof}))


def encode_block_report(runtime: Runtime, first: Header, second: Header) -> bytes:
    """The unsigned `Offences.report_block_equivocation` extrinsic for two sealed headers."""
    return encode_unsigned(runtime.encode_call("Offences", "report_block_equivocation",
                                               {"first": first.encode(), "second": second.encode()}))


class SlotWatch:
    """Remembers the first header seen for each (slot, author); a second, different one is an
    equivocation. Bounded: the oldest slots are forgotten first."""

    def __init__(self, capacity: int = MAX_TRACKED_SLOTS):
        self.capacity = capacity
        self._seen: OrderedDict[tuple[int, bytes], Header] = OrderedDict()

    def on_header(self, header: Header) -> Header | None:
        """The earlier header of the same author and slot, if `header` equivocates with it."""
        try:
            key = header.slot_and_author()
        except CodecError:
            return None
        first = self._seen.get(key)
        if first is None:
            self._seen[key] = header
            if len(self._seen) > self.capacity:
                self._seen.popitem(last=False)
            return None
        if first.pre_seal().hash == header.pre_seal().hash:
            return None
        return first
