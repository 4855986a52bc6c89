"""The one key-value interface of the node, over LevelDB (plyvel) or memory (unit tests only).

Data path step: a block import composes every key of the block (header, body, number index,
trie nodes, meta pointers) into one `write`, which is one atomic, synced LevelDB batch: a crash
leaves either the whole block or none of it, and a write that returned survives a kill.

Iteration runs over a snapshot taken when `iterate` is called, in key order (or reverse).
Within one `write`, deletes apply after puts.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol, Self

import plyvel

log = logging.getLogger(__name__)

Puts = Mapping[bytes, bytes] | Iterable[tuple[bytes, bytes]]

DEFAULT_CACHE_BYTES = 64 * 1024 * 1024
DEFAULT_WRITE_BUFFER_BYTES = 16 * 1024 * 1024


class StoreError(Exception):
    """The key-value store cannot serve the request."""


class StoreLockedError(StoreError):
    """Another process (or another handle in this one) has the database open."""


class StoreCorruptError(StoreError):
    """LevelDB reports corruption in the database files."""


class StoreClosedError(StoreError):
    """The store was used after `close`."""


class KVStore(Protocol):
    """Bytes to bytes, sorted iteration, and atomic synced batches."""

    def get(self, key: bytes) -> bytes | None:
        """The value at `key`, or None."""
        ...

    def iterate(
        self, prefix: bytes, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) under `prefix` in key order (descending if `reverse`), from `start`
        inclusive: keys >= start, or <= start when reversed. A snapshot as of the call."""
        ...

    def iterate_keys(self, prefix: bytes) -> Iterator[bytes]:
        """The keys under `prefix` in key order, without reading their values. A snapshot; a
        bulk scan, so it leaves the store's block cache to the reads that will come again."""
        ...

    def write(self, puts: Puts, deletes: Iterable[bytes] = ()) -> None:
        """One atomic, synced batch: all of it is durable when this returns, or none of it is
        written (an exception while composing it writes nothing). Deletes apply after puts."""
        ...

    def close(self) -> None:
        """Release the store; idempotent."""
        ...


def _pairs(puts: Puts) -> Iterable[tuple[bytes, bytes]]:
    if isinstance(puts, Mapping):
        return puts.items()
    return puts


def _check_key(key: object) -> bytes:
    if type(key) is not bytes:
        raise TypeError(f"a key-value key must be bytes, not {type(key).__name__}")
    return key


def _check_value(value: object) -> bytes:
    """`value` as bytes if it is bytes-like, as LevelDB takes it; TypeError otherwise."""
    if type(value) is bytes:
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"a key-value value must be bytes-like, not {type(value).__name__}")


def prefix_upper_bound(prefix: bytes) -> bytes | None:
    """The smallest key above every key starting with `prefix`; None when there is none."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def _bounds(prefix: bytes, start: bytes | None, reverse: bool) -> tuple[bytes, bytes | None]:
    """[lower, upper) of the keys an iteration visits; `start` is inclusive in either direction."""
    lower, upper = prefix, prefix_upper_bound(prefix)
    if start is not None:
        if reverse:
            after_start = start + b"\x00"
            upper = after_start if upper is None else min(upper, after_start)
        else:
            lower = max(lower, start)
    return lower, upper


class MemoryKV:
    """A dict with sorted iteration, behaving as LevelKV does. For unit tests only.

    Writes stay O(1) per key: new keys wait in a list and are merged into the sorted key list
    by the next iteration (a sort of two sorted runs, linear).
    """

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._sorted: list[bytes] = []
        self._added: list[bytes] = []
        self._deleted = False
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("the in-memory store is closed")

    def get(self, key: bytes) -> bytes | None:
        self._check_open()
        return self._data.get(key)

    def _sorted_keys(self) -> list[bytes]:
        if self._added or self._deleted:
            self._added.sort()
            keys = self._sorted + self._added
            keys.sort()
            if self._deleted:
                data = self._data
                keys = [k for i, k in enumerate(keys) if k in data and (i == 0 or keys[i - 1] != k)]
            self._sorted, self._added, self._deleted = keys, [], False
        return self._sorted

    def iterate(
        self, prefix: bytes, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        self._check_open()
        lower, upper = _bounds(prefix, start, reverse)
        keys = self._sorted_keys()
        lo = bisect_left(keys, lower)
        hi = len(keys) if upper is None else bisect_left(keys, upper, lo)
        snapshot = [(k, self._data[k]) for k in keys[lo:hi]]
        if reverse:
            snapshot.reverse()
        return iter(snapshot)

    def iterate_keys(self, prefix: bytes) -> Iterator[bytes]:
        return (key for key, _value in self.iterate(prefix))

    def write(self, puts: Puts, deletes: Iterable[bytes] = ()) -> None:
        self._check_open()
        # Check everything before touching the data, so a bad entry writes nothing.
        staged = [(_check_key(k), _check_value(v)) for k, v in _pairs(puts)]
        removed = [_check_key(k) for k in deletes]
        data = self._data
        for key, value in staged:
            if key not in data:
                self._added.append(key)
            data[key] = value
        for key in removed:
            if data.pop(key, None) is not None:
                self._deleted = True

    def close(self) -> None:
        self._closed = True


# LevelDB's lock is a POSIX record lock, which the process drops as soon as it closes any
# descriptor of the LOCK file: a second plyvel.DB() on an open path in this process fails, but
# closing its descriptor releases the first handle's lock, so another process could then open the
# same database. Refuse a second handle before LevelDB ever sees it.
_open_paths: set[str] = set()
_open_paths_lock = threading.Lock()


class LevelKV:
    """LevelDB through plyvel: synced atomic batches, a block cache, clear lock and corruption errors."""

    def __init__(
        self,
        path: str,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        write_buffer_bytes: int = DEFAULT_WRITE_BUFFER_BYTES,
    ) -> None:
        self.path = os.path.realpath(path)
        with _open_paths_lock:
            if self.path in _open_paths:
                raise StoreLockedError(f"the database at {self.path} is already open in this process")
            _open_paths.add(self.path)
        try:
            os.makedirs(self.path, exist_ok=True)
            self._db = self._open(cache_bytes, write_buffer_bytes)
        except BaseException:
            with _open_paths_lock:
                _open_paths.discard(self.path)
            raise
        self._closed = False
        # Closes the database and frees the path when close() is called, when this object is
        # collected without close(), or at interpreter exit: whichever comes first, once.
        self._finalizer = weakref.finalize(self, _close_db, self._db, self.path)
        log.debug("kv opened path=%s", self.path)

    def _open(self, cache_bytes: int, write_buffer_bytes: int) -> plyvel.DB:
        try:
            return plyvel.DB(
                self.path,
                create_if_missing=True,
                paranoid_checks=True,
                lru_cache_size=cache_bytes,
                write_buffer_size=write_buffer_bytes,
                bloom_filter_bits=10,
            )
        except plyvel.CorruptionError as exc:
            raise StoreCorruptError(f"the database at {self.path} is corrupt: {_text(exc)}") from exc
        except plyvel.IOError as exc:
            if _is_lock_error(exc):
                raise StoreLockedError(
                    f"the database at {self.path} is locked by another process (is another node "
                    f"running with this base path?): {_text(exc)}"
                ) from exc
            raise StoreError(f"cannot open the database at {self.path}: {_text(exc)}") from exc

    @property
    def db(self) -> plyvel.DB:
        if self._closed:
            raise StoreClosedError(f"the database at {self.path} is closed")
        return self._db

    def get(self, key: bytes) -> bytes | None:
        try:
            return self.db.get(key)
        except plyvel.CorruptionError as exc:
            raise StoreCorruptError(f"corrupt read in {self.path}: {_text(exc)}") from exc

    def iterate(
        self, prefix: bytes, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        lower, upper = _bounds(prefix, start, reverse)
        # Created now, so the iteration sees the store as it is at this call.
        iterator = self.db.iterator(start=lower, stop=upper, reverse=reverse)
        return self._guarded(iterator)

    def iterate_keys(self, prefix: bytes) -> Iterator[bytes]:
        lower, upper = _bounds(prefix, None, False)
        return self._guarded(self.db.iterator(start=lower, stop=upper, include_value=False, fill_cache=False))

    def _guarded(self, iterator: Iterator[Any]) -> Iterator[Any]:
        try:
            yield from iterator
        except plyvel.CorruptionError as exc:
            raise StoreCorruptError(f"corrupt data while iterating {self.path}: {_text(exc)}") from exc
        finally:
            iterator.close()  # type: ignore[attr-defined]

    def write(self, puts: Puts, deletes: Iterable[bytes] = ()) -> None:
        # transaction=True: an exception inside the block discards the batch instead of writing
        # the half that was put so far (plyvel's default writes it).
        try:
            # plyvel itself raises TypeError on a key that is not bytes or a value not bytes-like.
            with self.db.write_batch(transaction=True, sync=True) as batch:
                put = batch.put
                for key, value in _pairs(puts):
                    put(key, value)
                delete = batch.delete
                for key in deletes:
                    delete(key)
        except plyvel.CorruptionError as exc:
            raise StoreCorruptError(f"corrupt write to {self.path}: {_text(exc)}") from exc
        except plyvel.IOError as exc:
            raise StoreError(f"write to {self.path} failed: {_text(exc)}") from exc

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._finalizer()
        log.debug("kv closed path=%s", self.path)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _close_db(db: plyvel.DB, path: str) -> None:
    try:
        db.close()
    finally:
        with _open_paths_lock:
            _open_paths.discard(path)


def _text(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else exc
    return arg.decode(errors="replace") if isinstance(arg, bytes) else str(arg)


def _is_lock_error(exc: BaseException) -> bool:
    text = _text(exc).lower()
    return "lock" in text and ("already held" in text or "temporarily unavailable" in text)


def open_kv(path: str | None) -> KVStore:
    """LevelDB at `path` (created if missing); None gives an in-memory store for unit tests."""
    if path is None:
        return MemoryKV()
    return LevelKV(path)
