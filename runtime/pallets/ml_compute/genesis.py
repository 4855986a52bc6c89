"""ML-compute's part of genesis, and the same build on the first block after a runtime upgrade
into the pallet: the config, the architectures (MLP, CNN) and MNIST.

config["ml_compute"] (optional): {"config": {field: int} overriding MlConfig's defaults,
"datasets": [(root 32 bytes, {"name", "n_samples", "sample_bytes", "n_classes"})]}.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from runtime.context import BlockContext
from runtime.frame import DispatchError
from runtime.pallets.ml_compute import storage
from runtime.pallets.ml_compute.registry import (
    ARCHITECTURE_FACTS,
    MNIST_INFO,
    MNIST_ROOT,
    apply_register_architecture,
    apply_register_dataset,
)
from runtime.pallets.ml_compute.types import PALLET_STORAGE_VERSION, MlConfig


def apply_build(ctx: BlockContext, config: MlConfig, datasets: list[tuple[bytes, dict[str, Any]]]) -> None:
    """Write the config and the registries; an architecture that the chain's block limits
    cannot referee is left out."""
    storage.Config.put(ctx.state, config.to_scale())
    ctx.extra.pop("ml_compute.config", None)
    for facts in ARCHITECTURE_FACTS.values():
        try:
            apply_register_architecture(ctx, facts)
        except DispatchError:
            continue
    for root, info in [(MNIST_ROOT, dict(MNIST_INFO)), *datasets]:
        if not storage.Datasets.contains(ctx.state, root):
            apply_register_dataset(ctx, root, info)
    storage.StorageVersion.put(ctx.state, PALLET_STORAGE_VERSION)


def _invalid(message: str) -> Exception:
    from runtime.genesis import InvalidGenesis

    return InvalidGenesis(message)


def genesis_build(ctx: BlockContext, config: dict[str, Any]) -> None:
    section = config.get("ml_compute") or {}
    try:
        ml_config = replace(MlConfig(), **section.get("config", {}))
        ml_config.validate()
    except (TypeError, ValueError) as exc:
        raise _invalid(f"ml_compute: {exc}") from None
    datasets = [(bytes(root), dict(info)) for root, info in section.get("datasets", [])]
    try:
        apply_build(ctx, ml_config, datasets)
    except DispatchError as exc:
        raise _invalid(f"ml_compute: {exc}") from None
