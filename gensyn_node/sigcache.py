"""The node's signature checks: a bounded memo, and checks run ahead in a worker process.

The memo: the pool revalidates every pending transaction after each block, and a block from a
peer repeats transactions this node already checked; a signature's validity is a pure function
of (scheme, public key, message, signature), so a remembered answer is the answer.

Ahead of execution: `prefetch` sends a block's checks (computed by the runtime without executing
the block) to the worker in small batches; execution on the main thread takes each answer when
it reaches that check. Should the worker be gone, checks are made here as before.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from gensyn_node.sigworker import Check, SignatureWorker, WorkerGone
from runtime.crypto import verify_signature
from runtime.hashing import blake2_256

log = logging.getLogger(__name__)
BATCH = 64


def _key(scheme: str, public: bytes, message: bytes, signature: bytes) -> bytes:
    return blake2_256(scheme.encode() + public + signature + message)


class SignatureCache:
    def __init__(self, capacity: int = 65_536, worker: SignatureWorker | None = None):
        self.capacity = capacity
        self.worker = worker
        self._known: dict[bytes, bool] = {}
        self._pending: dict[bytes, tuple[int, int]] = {}  # key -> (batch ticket, index in batch)
        self._answers: dict[int, bytes] = {}
        self.hits = 0
        self.misses = 0

    def __call__(self, scheme: str, public: bytes, message: bytes, signature: bytes) -> bool:
        key = _key(scheme, public, message, signature)
        known = self._known.get(key)
        if known is not None:
            self.hits += 1
            return known
        ahead = self._pending.pop(key, None)
        result = self._answer(*ahead) if ahead is not None else None
        if result is None:
            self.misses += 1
            result = verify_signature(scheme, public, message, signature)
        self._remember(key, result)
        return result

    def _answer(self, ticket: int, index: int) -> bool | None:
        """The worker's answer for one check, waiting for its batch; None if the worker is gone."""
        try:
            while ticket not in self._answers:
                received, answer = self.worker.receive_next()  # type: ignore[union-attr]
                self._answers[received] = answer
        except WorkerGone:
            return None
        answer = self._answers[ticket]
        return bool(answer[index]) if index < len(answer) else None

    def _remember(self, key: bytes, result: bool) -> None:
        if len(self._known) >= self.capacity:
            self._known.clear()
        self._known[key] = result

    def prefetch(self, checks: Sequence[Check]) -> None:
        """Have the worker start on `checks`, in order, in small batches."""
        if self.worker is None or not self.worker.alive:
            return
        todo = [(c, k) for c in checks if (k := _key(*c)) not in self._known and k not in self._pending]
        try:
            for start in range(0, len(todo), BATCH):
                batch = todo[start : start + BATCH]
                ticket = self.worker.submit([c for c, _ in batch])
                for index, (_check, key) in enumerate(batch):
                    self._pending[key] = (ticket, index)
        except WorkerGone:
            log.warning("signature worker gone; checking signatures on the main thread")

    def settle(self) -> None:
        """Collect every outstanding answer (a block rejected half way leaves some), remember
        them, and forget the batches: nothing stays pending between imports."""
        for key, (ticket, index) in list(self._pending.items()):
            result = self._answer(ticket, index)
            if result is not None:
                self._remember(key, result)
        self._pending.clear()
        self._answers.clear()

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
