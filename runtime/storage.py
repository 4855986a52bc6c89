"""The state a block executes against: an overlay of changes over a read-only base (the state
trie at the parent block), with nested transactional layers.

A layer is a mark in an undo journal: rolling back replays the journal backwards, so opening a
layer costs nothing and a write costs one append. This is Substrate's `with_storage_layer`: a
failed call rolls back everything it wrote, while the fee and the nonce, written before the
layer opened, stay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

_MISSING = object()


class StorageLayerError(RuntimeError):
    """Layers were closed out of order (a bug in the executive, never bad input)."""


class OverlayState:
    """Reads fall through the overlay to `base_get`; writes land in the overlay."""

    def __init__(self, base_get: Callable[[bytes], bytes | None],
                 base_iter: Callable[[bytes], Iterator[tuple[bytes, bytes]]] | None = None):
        self._base_get = base_get
        self._base_iter = base_iter
        self.changes: dict[bytes, bytes | None] = {}
        self._read_cache: dict[bytes, bytes | None] = {}  # base reads: the base never changes under us
        self._journal: list[tuple[bytes, object]] = []
        self._marks: list[int] = []

    def get(self, key: bytes) -> bytes | None:
        value = self.changes.get(key, _MISSING)
        if value is _MISSING:
            value = self._read_cache.get(key, _MISSING)
            if value is _MISSING:
                value = self._read_cache[key] = self._base_get(key)
        return value  # type: ignore[return-value]

    def prefetch(self, base_values: Mapping[bytes, bytes | None]) -> None:
        """Take values read ahead from the base (its values at these keys), so that the reads
        that come find them without a walk of their own."""
        read_cache = self._read_cache
        for key, value in base_values.items():
            read_cache.setdefault(key, value)

    def set(self, key: bytes, value: bytes | None) -> None:
        if self._marks:
            self._journal.append((key, self.changes.get(key, _MISSING)))
        self.changes[key] = value

    def delete(self, key: bytes) -> None:
        self.set(key, None)

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Keys under `prefix` in order, the overlay merged over the base."""
        merged: dict[bytes, bytes | None] = {}
        if self._base_iter is not None:
            merged.update(self._base_iter(prefix))
        merged.update((k, v) for k, v in self.changes.items() if k.startswith(prefix))
        for key in sorted(merged):
            value = merged[key]
            if value is not None:
                yield key, value

    def start_layer(self) -> None:
        self._marks.append(len(self._journal))

    def commit_layer(self) -> None:
        if not self._marks:
            raise StorageLayerError("commit without an open layer")
        mark = self._marks.pop()
        if not self._marks:
            del self._journal[mark:]

    def rollback_layer(self) -> None:
        if not self._marks:
            raise StorageLayerError("rollback without an open layer")
        mark = self._marks.pop()
        journal = self._journal
        changes = self.changes
        while len(journal) > mark:
            key, previous = journal.pop()
            if previous is _MISSING:
                changes.pop(key, None)
            else:
                changes[key] = previous  # type: ignore[assignment]


class MemoryState(OverlayState):
    """A state with no base: genesis building and unit tests of the runtime."""

    def __init__(self, initial: dict[bytes, bytes] | None = None):
        base = dict(initial or {})
        super().__init__(base.get, lambda prefix: ((k, v) for k, v in sorted(base.items()) if k.startswith(prefix)))
