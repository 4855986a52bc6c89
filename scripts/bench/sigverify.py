"""Shared by the import benchmarks (scripts/bench/import.py, scripts/bench/state.py): the raw
ed25519 verification of a chain's transfer signatures, the one-core ceiling an import is
compared against in the same run."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from runtime.block import Block
from runtime.crypto import ED25519, verify_signature
from runtime.extrinsic import decode_extrinsic, signing_payload
from runtime.version import Runtime


def time_verify(blocks: Iterable[Block], runtime: Runtime, genesis_hash: bytes) -> tuple[float, int]:
    """Seconds to verify every signed extrinsic's signature in `blocks` (payloads prepared
    first, immortal transactions of spec and transaction version 1), and how many there were."""
    items = []
    for block in blocks:
        for raw in block.extrinsics[1:]:
            xt = decode_extrinsic(raw, runtime)
            payload = signing_payload(xt.call_bytes, xt.era_bytes, xt.nonce, xt.tip, 1, 1, genesis_hash, genesis_hash)
            items.append((xt.signer, payload, xt.signature))
    started = time.perf_counter()
    for public, payload, signature in items:
        if not verify_signature(ED25519, public, payload, signature):
            raise SystemExit("benchmark bug: a signature did not verify")
    return time.perf_counter() - started, len(items)
