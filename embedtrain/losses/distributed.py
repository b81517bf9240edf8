"""Gathering embeddings from every process with their gradients, for losses that score in-batch negatives across devices."""

import logging

import torch
import torch.distributed as dist
import torch.distributed.nn
from torch import Tensor

logger = logging.getLogger(__name__)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_with_grad(tensor: Tensor) -> tuple[Tensor, int]:
    """Concatenate `tensor` (rows) from every process in rank order -> (gathered, offset of this process's rows).

    The gather keeps the autograd graph (`torch.distributed.nn.all_gather`): the gradient of every
    process's loss flows back to the process that computed each row (summed over processes, which
    DDP's gradient averaging turns into the gradient of the mean loss). Processes may hold
    different numbers of rows (a short last batch): rows are padded for the exchange and cut after.
    Without several processes the tensor is returned as it is, with offset 0.
    """
    if not is_distributed():
        return tensor, 0
    rank, world_size = dist.get_rank(), dist.get_world_size()
    sizes = [torch.zeros(1, dtype=torch.long, device=tensor.device) for _ in range(world_size)]
    dist.all_gather(sizes, torch.tensor([tensor.size(0)], dtype=torch.long, device=tensor.device))
    sizes = [int(size.item()) for size in sizes]
    longest = max(sizes)
    padded = torch.nn.functional.pad(tensor, (0, 0, 0, longest - tensor.size(0))) if tensor.size(0) < longest else tensor
    pieces = torch.distributed.nn.all_gather(padded)
    gathered = torch.cat([piece[:size] for piece, size in zip(pieces, sizes)], dim=0)
    return gathered, sum(sizes[:rank])


def gather_leaves(columns: list[Tensor]) -> tuple[list[Tensor], int]:
    """Every process's rows of each column (rank order; every column has this process's number of rows), outside
    autograd, as new leaves that collect the loss's gradient -> (gathered columns, offset of this process's rows).
    For the cached losses, whose chunked backward stops at the embeddings: `backward_to_local` then hands each
    process the gradient of its own rows."""
    rows = columns[0].size(0)
    sizes = [torch.zeros(1, dtype=torch.long, device=columns[0].device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor([rows], dtype=torch.long, device=columns[0].device))
    sizes = [int(size.item()) for size in sizes]
    gathered = []
    for column in columns:
        padded = torch.nn.functional.pad(column.detach(), (0, 0, 0, max(sizes) - rows))
        pieces = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(pieces, padded)
        gathered.append(torch.cat([piece[:size] for piece, size in zip(pieces, sizes)]).requires_grad_())
    return gathered, sum(sizes[:dist.get_rank()])


def backward_to_local(local: list[Tensor], gathered: list[Tensor], offset: int) -> None:
    """Backpropagate into `local` (this process's columns) the gradient that every process's loss put on their
    rows of `gathered`: summed over processes (one all-reduce per column), as the autograd gather would."""
    gradients = []
    for column, leaf in zip(local, gathered):
        gradient = leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)
        dist.all_reduce(gradient)
        gradients.append(gradient[offset:offset + column.size(0)])
    torch.autograd.backward(local, gradients)
