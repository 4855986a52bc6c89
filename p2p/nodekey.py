"""The node's persistent network identity: an ed25519 key whose public half is the PeerId
(`12D3Koo...`). From `--node-key` (hex seed), else `<base-path>/network/secret` (32 raw bytes,
made on first start with mode 0600), so the PeerId survives restarts as Substrate's does."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SEED_LEN = 32


class NodeKeyError(ValueError):
    """A node key that cannot be used; the message says which and why."""


def parse_node_key(value: str) -> bytes:
    """A `--node-key` value: 32 bytes as hex, with or without 0x."""
    try:
        seed = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raise NodeKeyError("--node-key: expected 32 bytes of hex") from None
    if len(seed) != SEED_LEN:
        raise NodeKeyError(f"--node-key: expected 32 bytes, got {len(seed)}")
    return seed


def load_or_create_node_key(base_path: str | Path) -> tuple[bytes, bool]:
    """(seed, created): the seed in `<base_path>/network/secret`, made on first use."""
    path = Path(base_path) / "network" / "secret"
    if path.exists():
        try:
            seed = path.read_bytes()
        except OSError as exc:
            raise NodeKeyError(f"cannot read the node key {path}: {exc.strerror}") from None
        if len(seed) != SEED_LEN:
            raise NodeKeyError(f"the node key {path} holds {len(seed)} bytes, not {SEED_LEN}")
        return seed, False
    seed = secrets.token_bytes(SEED_LEN)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(seed)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        raise NodeKeyError(f"cannot write the node key {path}: {exc.strerror}") from None
    return seed, True
