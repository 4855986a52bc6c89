"""What a call sees while a block executes: the state overlay, the chain parameters, the block
number, author and phase, and the block's events."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from runtime.codec.scale import Enum
from runtime.crypto import verify_signature
from runtime.params import ChainParameters
from runtime.storage import OverlayState

_U32 = struct.Struct("<I")
PHASE_INITIALIZATION = b"\x02"
PHASE_FINALIZATION = b"\x01"


def phase_apply_extrinsic(index: int) -> bytes:
    return b"\x00" + _U32.pack(index)


class BlockContext:
    """Mutable execution context of one block (or of one transaction validation)."""

    __slots__ = (
        "_event_marks",
        "author",
        "block_number",
        "events",
        "extra",
        "length_used",
        "params",
        "parent_hash",
        "phase",
        "slot",
        "state",
        "timestamp",
        "verify",
        "weight_used",
    )

    def __init__(self, state: OverlayState, params: ChainParameters, block_number: int = 0,
                 parent_hash: bytes = bytes(32), author: bytes | None = None, slot: int = 0):
        self.state = state
        self.params = params
        self.block_number = block_number
        self.parent_hash = parent_hash
        self.author = author
        self.slot = slot
        self.phase = PHASE_INITIALIZATION
        self.events: list[bytes] = []
        self.timestamp: int | None = None
        self.weight_used = 0
        self.length_used = 0
        self.extra: dict[str, Any] = {}
        self._event_marks: list[int] = []
        # The signature check (scheme, public, message, signature) -> bool; the node may inject a
        # memoizing one: the result is a pure function of its inputs.
        self.verify: Callable[[str, bytes, bytes, bytes], bool] = verify_signature

    # A transactional layer covers storage and events alike (Substrate's events are storage).

    def start_layer(self) -> None:
        self.state.start_layer()
        self._event_marks.append(len(self.events))

    def commit_layer(self) -> None:
        self.state.commit_layer()
        self._event_marks.pop()

    def rollback_layer(self) -> None:
        self.state.rollback_layer()
        del self.events[self._event_marks.pop():]

    def deposit_event(self, pallet_index: int, events: Enum, name: str, payload: Any = None) -> None:
        """Record a pallet's event `name` as an EventRecord (phase, RuntimeEvent, no topics)."""
        event = bytes((pallet_index,)) + events.encode((name, payload))
        self.events.append(self.phase + event + b"\x00")

    def deposit_event_raw(self, pallet_index: int, event_index: int, fields: bytes) -> None:
        """Fast path for hot events whose fields the caller has already SCALE-encoded."""
        self.events.append(self.phase + bytes((pallet_index, event_index)) + fields + b"\x00")
