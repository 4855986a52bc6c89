"""The node's keystore under its base path: the validator's ed25519 session key, kept across
restarts (Substrate's `keystore/`). Secrets are files readable only by the node's user."""

from __future__ import annotations

import os
from pathlib import Path

from gensyn_node.keyring import Keypair, generate_seed, keypair_from_seed
from runtime.crypto import ED25519

SESSION_KEY_FILE = "session_ed25519"


class KeystoreError(Exception):
    """The keystore holds something that is not a key."""


def keystore_dir(base_path: str) -> Path:
    return Path(base_path) / "keystore"


def store_session_seed(base_path: str, seed: bytes) -> Keypair:
    """Write the session key's seed (0600), replacing any previous one; returns the key."""
    key = keypair_from_seed(seed, ED25519)
    directory = keystore_dir(base_path)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / SESSION_KEY_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("0x" + seed.hex() + "\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    return key


def load_session_key(base_path: str) -> Keypair | None:
    path = keystore_dir(base_path) / SESSION_KEY_FILE
    if not path.exists():
        return None
    text = path.read_text().strip()
    try:
        seed = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise KeystoreError(f"{path} does not hold a hex seed") from None
    if len(seed) != 32:
        raise KeystoreError(f"{path} does not hold a 32-byte seed")
    return keypair_from_seed(seed, ED25519)


def load_or_create_session_key(base_path: str) -> tuple[Keypair, bool]:
    """The stored session key, or a new random one stored now; (key, created)."""
    key = load_session_key(base_path)
    if key is not None:
        return key, False
    return store_session_seed(base_path, generate_seed()), True
