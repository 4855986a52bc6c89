"""A signature-checking worker process: block import hands it a block's signature checks (the
runtime computes them without executing) and executes the block meanwhile on the main thread,
taking each answer when it gets there. Two cores then share the two halves of an import. A
process, not a thread: a worker thread only gets the GIL back between the main thread's switch
intervals, which measured slower than no worker at all.

Protocol over a pipe, canonical msgpack both ways: [[scheme, public, message, signature], ...]
→ bytes of 0/1, one per check, answered in the order sent.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Sequence
from multiprocessing.connection import Connection

from runtime.codec import canonical
from runtime.codec.errors import CodecError
from runtime.crypto import verify_signature

log = logging.getLogger(__name__)
Check = tuple[str, bytes, bytes, bytes]
MAX_BATCH_BYTES = 64 * 1024 * 1024


class WorkerGone(Exception):
    """The worker process is not there any more; callers check locally instead."""


def _serve(conn: Connection) -> None:
    """The worker's loop (in the child process)."""
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            checks = canonical.decode(data, max_bytes=MAX_BATCH_BYTES)
            answer = bytes(
                1 if isinstance(c, list) and len(c) == 4 and verify_signature(*c) else 0 for c in checks
            )
        except (CodecError, TypeError):
            answer = b""
        conn.send_bytes(answer)


class SignatureWorker:
    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of the node's threads and loop
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child,), name="gensyn-sigcheck", daemon=True)
        self._process.start()
        child.close()
        self._sent = 0
        self._received = 0
        self.alive = True

    def submit(self, checks: Sequence[Check]) -> int:
        """Send a batch; returns its ticket (batches are answered in order)."""
        if not self.alive:
            raise WorkerGone("the signature worker is gone")
        try:
            self._conn.send_bytes(canonical.encode([list(c) for c in checks]))
        except (OSError, ValueError) as exc:
            self._die(exc)
        self._sent += 1
        return self._sent - 1

    def receive_next(self) -> tuple[int, bytes]:
        """(ticket, answer) of the oldest batch not yet received."""
        if not self.alive or self._received >= self._sent:
            raise WorkerGone("no answer to wait for")
        try:
            answer = self._conn.recv_bytes()
        except (EOFError, OSError) as exc:
            self._die(exc)
        self._received += 1
        return self._received - 1, answer

    def _die(self, exc: BaseException) -> None:
        self.alive = False
        log.warning("signature worker lost: %s", exc)
        raise WorkerGone(str(exc)) from exc

    def close(self) -> None:
        self.alive = False
        self._conn.close()
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()
