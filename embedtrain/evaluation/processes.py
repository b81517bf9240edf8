"""Evaluation on several processes: each process embeds (or scores) its share of the texts (or pairs), and every
process receives all of them, so that every evaluator (the embedding ones embed through `embed_unique`, the
cross-encoder ones score through `compute_in_shares`) runs on all processes at the speed of many.

Inside `embeddings_across_processes()`, every process must run the same evaluators on the same data in the same
order: each embedding or scoring call is a collective. Outside it (the default, `embedtrain eval`, mining), nothing
is shared.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

import torch

T = TypeVar("T")

_across_processes: ContextVar[bool] = ContextVar("across_processes", default=False)


@contextmanager
def embeddings_across_processes() -> Iterator[None]:
    """Within this block, `embed_unique` and `compute_in_shares` share their work among the processes of the run
    (with one process: as without the block)."""
    token = _across_processes.set(True)
    try:
        yield
    finally:
        _across_processes.reset(token)


def _world() -> tuple[int, int]:
    """(this process's rank, number of processes); (0, 1) outside the block or without a process group."""
    if not _across_processes.get() or not torch.distributed.is_available() or not torch.distributed.is_initialized():
        return 0, 1
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


def compute_in_shares(compute: Callable[[list[T]], torch.Tensor], items: list[T]) -> torch.Tensor:
    """`compute(items)` (a tensor with one row per item, dense or sparse COO, on the CPU: embeddings of texts, scores
    of pairs), each process computing the rows of a contiguous share of `items`, every process receiving all rows.

    Every process computes as many rows (a short or empty share, when there are fewer items than processes, is
    padded with the last item and the padding dropped), so that all run as many batches: a model whose parameters
    are sharded over the processes (FSDP, ZeRO-3) gathers them in each pass, with every process.
    """
    rank, world_size = _world()
    if world_size == 1 or not items:
        return compute(items)
    per_process = -(-len(items) // world_size)
    share = items[rank * per_process:(rank + 1) * per_process]
    local = compute(share + [items[-1]] * (per_process - len(share)))
    local = local.index_select(0, torch.arange(len(share)))  # dense or sparse alike
    # Objects, not tensors: a sparse share has no fixed number of values. all_gather_object pickles them (through
    # the GPU under NCCL); for evaluation sets that costs little next to running the model.
    gathered: list[torch.Tensor | None] = [None] * world_size
    torch.distributed.all_gather_object(gathered, local)
    return torch.cat(gathered)  # sparse COO tensors concatenate along rows too


def same_on_every_process(metrics: dict[str, float]) -> dict[str, float]:
    """The main process's metrics on every process (each computes them from the same embeddings, but floating-point
    sums need not agree to the last bit across devices; checkpoint selection must agree exactly)."""
    rank, world_size = _world()
    if world_size == 1:
        return metrics
    shared = [metrics if rank == 0 else None]
    torch.distributed.broadcast_object_list(shared, src=0)
    return shared[0]
