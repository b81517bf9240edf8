"""Evaluation on several processes: each process embeds its share of the texts, and every process receives all of
them, so that every evaluator (they all embed through `embed_unique`) runs on all processes at the speed of many.

Inside `embeddings_across_processes()`, every process must run the same evaluators on the same data in the same
order: each embedding call is a collective. Outside it (the default, `embedtrain eval`, mining), nothing is shared.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch

_across_processes: ContextVar[bool] = ContextVar("across_processes", default=False)


@contextmanager
def embeddings_across_processes() -> Iterator[None]:
    """Within this block, `embed_unique` shares its work among the processes of the run (with one process: as
    without the block)."""
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


def encode_shared(encode: Callable[[list[str]], torch.Tensor], texts: list[str]) -> torch.Tensor:
    """`encode(texts)`: a (len(texts), dim) dense or sparse COO tensor on the CPU, in the order of `texts`, each
    process encoding a contiguous share of them.

    Every process encodes as many texts (a short or empty share, when there are fewer texts than processes, is
    padded with the last text and the padding dropped), so that all run the same number of forward passes: a model
    whose parameters are sharded over the processes (FSDP, ZeRO-3) gathers them in each pass, with every process.
    """
    rank, world_size = _world()
    if world_size == 1 or not texts:
        return encode(texts)
    per_process = -(-len(texts) // world_size)
    share = texts[rank * per_process:(rank + 1) * per_process]
    local = encode(share + [texts[-1]] * (per_process - len(share)))
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
