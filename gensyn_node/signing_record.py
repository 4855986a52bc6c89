"""The validator's signing record on the node's LevelDB: for each session key, the last slot it
sealed and what it voted in its latest finality round (see `consensus.signing.VoteRecord`),
one synced record per key. Consensus calls it before it releases a signature, so a restart
never makes the validator sign twice, and a restarted validator resumes its round."""

from __future__ import annotations

import struct
import threading
from typing import Any

from consensus.signing import BlockRef, DoubleSignRefused, VoteRecord, compute_next_vote_record
from gensyn_node.db import keys
from gensyn_node.db.kv import KVStore
from runtime.codec import canonical
from runtime.codec.errors import CodecError

_U64 = struct.Struct(">Q")
_NO_SLOT = -1


def _ref(value: Any) -> BlockRef | None:
    if value is None:
        return None
    block_hash, number = value
    if type(block_hash) is not bytes or len(block_hash) != 32 or type(number) is not int:
        raise CodecError("a block reference is [32-byte hash, number]")
    return block_hash, number


def _encode_ref(ref: BlockRef | None) -> list[Any] | None:
    return None if ref is None else [ref[0], ref[1]]


class KVSigningRecord:
    """`SigningRecord` over a key-value store. Value: canonical [slot, None | [set_id, round,
    estimate, prevote | None, precommit | None, previous prevote | None, previous precommit | None]]
    (a record written before the previous round's targets has the first five fields)."""

    def __init__(self, kv: KVStore):
        self.kv = kv
        self._lock = threading.Lock()  # authoring and voting may run on different threads

    def _load(self, session_key: bytes) -> tuple[int, VoteRecord | None]:
        raw = self.kv.get(keys.signing_state_key(session_key))
        if raw is None:
            return _NO_SLOT, None
        if len(raw) == _U64.size:  # the record before finality votes: the slot alone
            return _U64.unpack(raw)[0], None
        try:
            slot, vote = canonical.decode(raw, max_bytes=512)
            if vote is None:
                return int(slot), None
            set_id, round_number, estimate, prevote, precommit, *previous = vote
            estimate_ref = _ref(estimate)
            if estimate_ref is None:
                raise CodecError("a vote record needs its estimate")
            previous_prevote, previous_precommit = previous or (None, None)
            return int(slot), VoteRecord(int(set_id), int(round_number), estimate_ref, _ref(prevote), _ref(precommit),
                                         _ref(previous_prevote), _ref(previous_precommit))
        except (CodecError, TypeError, ValueError) as exc:
            raise DoubleSignRefused(f"the signing record of 0x{session_key.hex()} is unreadable: {exc}") from None

    def _store(self, session_key: bytes, slot: int, vote: VoteRecord | None) -> None:
        fields = None if vote is None else [vote.set_id, vote.round, _encode_ref(vote.estimate),
                                             _encode_ref(vote.prevote), _encode_ref(vote.precommit),
                                             _encode_ref(vote.previous_prevote), _encode_ref(vote.previous_precommit)]
        self.kv.write({keys.signing_state_key(session_key): canonical.encode([slot, fields])})

    def record_slot(self, session_key: bytes, slot: int) -> None:
        with self._lock:
            last, vote = self._load(session_key)
            if last >= slot:
                raise DoubleSignRefused(f"already signed slot {last}, refusing slot {slot}")
            self._store(session_key, slot, vote)

    def record_vote(self, session_key: bytes, set_id: int, round_number: int, step: int, target: BlockRef,
                    estimate: BlockRef) -> None:
        with self._lock:
            slot, last = self._load(session_key)
            new = compute_next_vote_record(last, set_id, round_number, step, target, estimate)
            if new != last:
                self._store(session_key, slot, new)

    def get_vote_record(self, session_key: bytes) -> VoteRecord | None:
        with self._lock:
            return self._load(session_key)[1]
