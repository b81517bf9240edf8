"""Gradient averaging over processes for losses whose backward DDP cannot follow.

A cached (GradCache) loss returns a loss detached from the model and re-runs the model's forward passes inside its
backward hook: DDP sees no parameter in the loss's graph, then each parameter's gradient arriving once per replayed
mini-batch, and fails ("mark a variable ready only once"). Such steps run under `no_sync`, and this averages the
gradients over the processes as DDP would have, once per optimizer step.
"""

import torch
from accelerate import Accelerator
from torch import nn

from embedtrain.losses.gradcache import GradCacheLoss


def replays_backward(losses: nn.Module) -> bool:
    """Whether any loss (or a loss a modifier wraps, e.g. Matryoshka around a cached loss) is a cached loss."""
    return any(isinstance(module, GradCacheLoss) for module in losses.modules())


def average_gradients(module: nn.Module, accelerator: Accelerator) -> None:
    """Every trainable parameter's gradient, averaged over the processes (one all-reduce of all of them). A
    parameter without a gradient on some processes counts as zero there, as under DDP; one without a gradient on
    every process keeps none (the optimizer then skips it, as in one process)."""
    parameters = [parameter for parameter in module.parameters() if parameter.requires_grad]
    has_gradient = torch.tensor([parameter.grad is not None for parameter in parameters], dtype=torch.float32,
                                device=accelerator.device)
    somewhere = accelerator.reduce(has_gradient, "sum").tolist()
    synced = [parameter for parameter, count in zip(parameters, somewhere) if count > 0]
    for parameter in synced:
        if parameter.grad is None:
            parameter.grad = torch.zeros_like(parameter)
    if not synced:
        return
    flat = accelerator.reduce(torch.cat([parameter.grad.reshape(-1) for parameter in synced]), "mean")
    for parameter, gradient in zip(synced, flat.split([parameter.numel() for parameter in synced])):
        parameter.grad.copy_(gradient.view_as(parameter.grad))
