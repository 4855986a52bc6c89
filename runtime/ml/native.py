"""The native float32 baseline: the same architecture, initial weights and data order, trained
with an ordinary torch nn.Module and torch.optim.SGD.

It exists to measure the exact engine's overhead and accuracy (scripts/bench/training.py) and
for jobs that accept tolerance-based checking; its results are not reproducible bit for bit and
are never hashed into consensus values.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from runtime.ml.data import Dataset, get_batch
from runtime.ml.engine import INPUT_FRAC_BITS
from runtime.ml.job import HYPER_FRAC_BITS, TrainingJob, validate_job
from runtime.ml.models import (
    MASTER_FRAC_BITS,
    Conv,
    Flatten,
    Linear,
    MaxPool2,
    ModelSpec,
    Relu,
    get_model,
    get_param_layout,
    init_params,
)


def build_module(spec: ModelSpec) -> nn.Sequential:
    """The spec as plain torch layers (weights are set by `load_params`)."""
    layers: list[nn.Module] = []
    for layer in spec.layers:
        if isinstance(layer, Linear):
            layers.append(nn.Linear(layer.in_features, layer.out_features))
        elif isinstance(layer, Conv):
            layers.append(nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel))
        elif isinstance(layer, MaxPool2):
            layers.append(nn.MaxPool2d(2))
        elif isinstance(layer, Relu):
            layers.append(nn.ReLU())
        elif isinstance(layer, Flatten):
            layers.append(nn.Flatten())
    return nn.Sequential(*layers)


def load_params(module: nn.Sequential, spec: ModelSpec, flat: torch.Tensor) -> None:
    """Copies master grid integers (value · 2^32) into the module's float32 parameters."""
    values = flat.to(torch.float64) * 2.0**-MASTER_FRAC_BITS
    params: list[torch.Tensor] = [
        p for m in module if isinstance(m, (nn.Linear, nn.Conv2d)) for p in (m.weight, m.bias) if p is not None
    ]
    with torch.no_grad():
        for param, info in zip(params, get_param_layout(spec), strict=True):
            chunk = values[info.offset : info.offset + info.numel]
            param.copy_(chunk.view(param.shape).to(torch.float32))


def build_native(job: TrainingJob, device: torch.device | str = "cpu") -> tuple[nn.Sequential, torch.optim.SGD]:
    """The module with the job's initial weights, and its SGD optimizer."""
    validate_job(job)
    spec = get_model(job.model_id)
    module = build_module(spec)
    load_params(module, spec, init_params(spec, job.seed))
    module.to(device)
    h = job.hyper
    scale = 2.0**-HYPER_FRAC_BITS
    opt = torch.optim.SGD(module.parameters(), lr=h.lr_q16 * scale, momentum=h.momentum_q16 * scale,
                          weight_decay=h.weight_decay_q16 * scale)
    return module, opt


def to_native_input(spec: ModelSpec, images: torch.Tensor) -> torch.Tensor:
    x = images.to(torch.float32).mul_(2.0**-INPUT_FRAC_BITS)
    return x.view(images.shape[0], *spec.input_shape)


def train_native(job: TrainingJob, dataset: Dataset, n_steps: int | None = None,
                 on_step: Callable[[int, float, int], None] | None = None,
                 device: torch.device | str = "cpu") -> nn.Sequential:
    """Trains the job's first `n_steps` (default all) steps in float32 with the same batches."""
    module, opt = build_native(job, device)
    spec = get_model(job.model_id)
    loss_fn = nn.CrossEntropyLoss()
    for step in range(job.steps if n_steps is None else n_steps):
        images, labels = get_batch(dataset, job.seed, step, job.hyper.batch_size)
        labels = labels.to(device)
        logits = module(to_native_input(spec, images.to(device)))
        loss = loss_fn(logits, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if on_step is not None:
            on_step(step, float(loss.detach()), int((logits.argmax(1) == labels).sum()))
    return module


def compute_native_accuracy(module: nn.Sequential, spec: ModelSpec, images: torch.Tensor,
                            labels: torch.Tensor, chunk: int = 1000) -> float:
    device = next(module.parameters()).device
    correct = 0
    with torch.no_grad():
        for start in range(0, images.shape[0], chunk):
            x = to_native_input(spec, images[start : start + chunk].to(device))
            pred = module(x).argmax(1).cpu()
            correct += int((pred == labels[start : start + chunk]).sum())
    return correct / max(1, images.shape[0])
