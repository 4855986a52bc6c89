"""Draws from chain randomness: stake-weighted picks of solvers and verifiers, and the sample of
segments the verifiers re-run. Pure functions of a seed, so every node draws the same.

A draw's seed mixes the state's randomness with the parent block's hash and the job id, read
in `on_initialize` of a block after the one that fixed what is judged (the job's submission,
the solver's commitment), so neither the submitter nor the solver knew it when they signed.
"""

from __future__ import annotations

from collections.abc import Sequence

from runtime.context import BlockContext
from runtime.hashing import blake2_256
from runtime.pallets.system import storage as system


def compute_draw_seed(ctx: BlockContext, tag: bytes, job_id: int, attempt: int = 0) -> bytes:
    return blake2_256(b"ml/" + tag + system.Randomness.get(ctx.state) + ctx.parent_hash
                      + job_id.to_bytes(8, "little") + attempt.to_bytes(4, "little"))


def compute_random_below(seed: bytes, counter: int, bound: int) -> int:
    """An integer in 0..bound-1 from blake2b(seed ‖ counter) (bias below bound/2^256)."""
    return int.from_bytes(blake2_256(seed + counter.to_bytes(8, "little")), "little") % bound


def draw_weighted(seed: bytes, candidates: Sequence[tuple[bytes, int]], count: int) -> list[bytes]:
    """Up to `count` distinct accounts, each pick with probability proportional to its weight
    among those not yet picked; candidates with zero weight are never picked."""
    pool = [(who, w) for who, w in candidates if w > 0]
    picked: list[bytes] = []
    for i in range(min(count, len(pool))):
        total = sum(w for _, w in pool)
        r = compute_random_below(seed, i, total)
        for j, (who, w) in enumerate(pool):
            if r < w:
                picked.append(who)
                del pool[j]
                break
            r -= w
    return picked


def draw_segments(seed: bytes, n_segments: int, count: int) -> list[int]:
    """`count` distinct segment indices out of 0..n_segments-1 (a partial Fisher-Yates shuffle)."""
    count = min(count, n_segments)
    swapped: dict[int, int] = {}
    out = []
    for i in range(count):
        j = i + compute_random_below(seed, 1 << 32 | i, n_segments - i)
        vi, vj = swapped.get(i, i), swapped.get(j, j)
        swapped[i], swapped[j] = vj, vi
        out.append(vj)
    return out


def compute_detection_ppm(n_segments: int, sampled: int) -> int:
    """The chance (parts per million) that the sample holds one given segment: sampled / n."""
    return min(sampled, n_segments) * 1_000_000 // n_segments


def compute_min_solver_stake(bounty: int, n_segments: int, verifiers: int, segments: int, floor: int) -> int:
    """What a solver must have at stake for a job: what cheating gains (the bounty) divided by
    the chance that verification samples the one faked segment, ⌈bounty · n / k⌉."""
    sampled = min(n_segments, verifiers * segments)
    return max(floor, -(-bounty * n_segments // sampled))
