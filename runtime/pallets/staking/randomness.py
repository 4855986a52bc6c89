"""Era randomness: what draws the slot leaders of an era, fixed one whole era before it is used,
as BABE's epoch randomness (BABE draws epoch N's leaders from epoch N-2's VRF outputs).

During era e every block mixes its parent's hash into `RandomnessUnderConstruction`; a block's
hash covers its seal (the author's session-key signature), so this is a running hash of the
era's seals. At the boundary into era e+1 (that block's `on_initialize`, after it has mixed the
last block of era e):

    EraRandomness     := NextEraRandomness                  (fixed at the start of era e)
    NextEraRandomness := H(tag ‖ RandomnessUnderConstruction ‖ e+2)
    RandomnessUnderConstruction := 0

So the blocks of era e decide the leaders of era e+2 only: nothing an author puts in a block of
era e changes who leads a slot of era e or e+1, and two forks that split after the start of era
e agree on the randomness of eras e and e+1. Genesis seeds eras 0 and 1.

The leader of a block is drawn at its parent's state (consensus/verification.py), so a boundary
block is led by the old era's randomness and set, like every other block of the old era's chain.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from runtime.context import BlockContext
from runtime.hashing import blake2_256
from runtime.pallets.staking import storage

_U32 = struct.Struct("<I")
_TAG = b"gsyn/era-randomness"


def compute_genesis_randomness(seed: bytes, era: int) -> bytes:
    """The randomness genesis gives era 0 and era 1."""
    return blake2_256(_TAG + b"/genesis" + seed + _U32.pack(era))


def compute_genesis_seed(session_keys: Iterable[bytes]) -> bytes:
    """Genesis has nothing unpredictable to offer; its validators' keys make each chain's
    schedule its own."""
    return blake2_256(b"".join(sorted(session_keys)))


def compute_era_randomness(accumulated: bytes, era: int) -> bytes:
    """The randomness of era `era` from the running hash of the seals of era `era` - 2."""
    return blake2_256(_TAG + accumulated + _U32.pack(era))


def compute_mixed(accumulated: bytes, block_hash: bytes) -> bytes:
    return blake2_256(accumulated + block_hash)


def apply_genesis_randomness(ctx: BlockContext, session_keys: Iterable[bytes]) -> None:
    seed = compute_genesis_seed(session_keys)
    storage.EraRandomness.put(ctx.state, compute_genesis_randomness(seed, 0))
    storage.NextEraRandomness.put(ctx.state, compute_genesis_randomness(seed, 1))


def apply_mix_parent(ctx: BlockContext) -> None:
    """Mix the parent's (sealed) hash into the running hash of its era."""
    if ctx.block_number == 0:
        return
    state = ctx.state
    storage.RandomnessUnderConstruction.put(
        state, compute_mixed(storage.RandomnessUnderConstruction.get(state), ctx.parent_hash))


def apply_rotate_randomness(ctx: BlockContext, new_era: int) -> None:
    """At the start of `new_era`: its randomness is the one fixed an era ago, and the era that
    just ended fixes the randomness of `new_era + 1`."""
    state = ctx.state
    storage.EraRandomness.put(state, storage.NextEraRandomness.get(state))
    storage.NextEraRandomness.put(
        state, compute_era_randomness(storage.RandomnessUnderConstruction.get(state), new_era + 1))
    storage.RandomnessUnderConstruction.kill(state)
