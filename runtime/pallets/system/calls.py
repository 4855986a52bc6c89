"""System calls: remarks and the governed runtime upgrade."""

from __future__ import annotations

from typing import Any

from runtime.codec.scale import byte_vec, u32
from runtime.context import BlockContext
from runtime.frame import Call, ensure_root, ensure_signed
from runtime.hashing import blake2_256
from runtime.pallets.system import storage
from runtime.pallets.system.errors import ERRORS
from runtime.pallets.system.events import deposit

# Filled in by runtime/version.py, which owns the table of runtimes (spec_version -> runtime).
KNOWN_SPEC_VERSIONS: set[int] = set()


def remark(ctx: BlockContext, origin: Any, remark: bytes) -> None:
    """Make some on-chain remark."""


def upgrade_runtime(ctx: BlockContext, origin: Any, spec_version: int) -> None:
    """Switch the runtime to `spec_version` from the next block (Root only; sudo on a dev chain)."""
    ensure_root(origin)
    current = storage.SpecVersion.get(ctx.state)
    if spec_version <= current:
        raise ERRORS("SpecVersionNeedsToIncrease", f"spec_version {spec_version} is not above {current}")
    if spec_version not in KNOWN_SPEC_VERSIONS:
        raise ERRORS("FailedToExtractRuntimeVersion", f"this node has no runtime {spec_version}")
    storage.PendingSpecVersion.put(ctx.state, spec_version)
    deposit(ctx, "RuntimeUpgradeScheduled", {"spec_version": spec_version})


def remark_with_event(ctx: BlockContext, origin: Any, remark: bytes) -> None:
    """Make some on-chain remark and emit an event."""
    who = ensure_signed(origin)
    deposit(ctx, "Remarked", {"sender": who, "hash": blake2_256(remark)})


CALLS = [
    Call("remark", 0, [("remark", byte_vec)], remark, weight=lambda remark: 1_000_000 + len(remark) * 100, docs="Make some on-chain remark."),
    Call("upgrade_runtime", 2, [("spec_version", u32)], upgrade_runtime, weight=10_000_000, docs="Schedule a runtime upgrade (Root).", dispatch_class="Operational"),
    Call("remark_with_event", 7, [("remark", byte_vec)], remark_with_event, weight=lambda remark: 2_000_000 + len(remark) * 100, docs="Make some on-chain remark and emit an event."),
]
