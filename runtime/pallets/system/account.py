"""Fast access to `System.Account`, the hottest storage item (every transfer reads and writes
two of them): a fixed 80-byte layout decoded with one struct call instead of the generic
codec. `tests/test_runtime_codec.py` checks it against the generic `AccountInfo` type."""

from __future__ import annotations

import struct

from runtime.hashing import blake2_128
from runtime.pallets.system.storage import Account
from runtime.storage import OverlayState

_LAYOUT = struct.Struct("<IIII16s16s16s16s")
ACCOUNT_INFO_LEN = _LAYOUT.size


class AccountRecord:
    __slots__ = ("consumers", "flags", "free", "frozen", "nonce", "providers", "reserved", "sufficients")

    def __init__(self, nonce: int = 0, consumers: int = 0, providers: int = 0, sufficients: int = 0,
                 free: int = 0, reserved: int = 0, frozen: int = 0, flags: int = 1 << 127):
        self.nonce, self.consumers, self.providers, self.sufficients = nonce, consumers, providers, sufficients
        self.free, self.reserved, self.frozen, self.flags = free, reserved, frozen, flags

    @classmethod
    def from_bytes(cls, raw: bytes) -> AccountRecord:
        n, c, p, s, free, reserved, frozen, flags = _LAYOUT.unpack(raw)
        return cls(n, c, p, s, int.from_bytes(free, "little"), int.from_bytes(reserved, "little"),
                   int.from_bytes(frozen, "little"), int.from_bytes(flags, "little"))

    def to_bytes(self) -> bytes:
        return _LAYOUT.pack(self.nonce, self.consumers, self.providers, self.sufficients,
                            self.free.to_bytes(16, "little"), self.reserved.to_bytes(16, "little"),
                            self.frozen.to_bytes(16, "little"), self.flags.to_bytes(16, "little"))

    @property
    def total(self) -> int:
        return self.free + self.reserved

    def is_empty(self) -> bool:
        return self.providers == 0 and self.consumers == 0 and self.sufficients == 0


_KEY_MEMO: dict[bytes, bytes] = {}


def account_key(who: bytes) -> bytes:
    key = _KEY_MEMO.get(who)
    if key is None:
        if len(_KEY_MEMO) > 200_000:
            _KEY_MEMO.clear()
        key = _KEY_MEMO[who] = Account.prefix + blake2_128(who) + who
    return key


def get_account(state: OverlayState, who: bytes) -> AccountRecord:
    raw = state.get(account_key(who))
    return AccountRecord() if raw is None else AccountRecord.from_bytes(raw)


def account_exists(state: OverlayState, who: bytes) -> bool:
    return state.get(account_key(who)) is not None


def put_account(state: OverlayState, who: bytes, record: AccountRecord) -> None:
    """Write the record, or remove the entry when nothing references the account any more."""
    if record.is_empty():
        state.delete(account_key(who))
    else:
        state.set(account_key(who), record.to_bytes())
