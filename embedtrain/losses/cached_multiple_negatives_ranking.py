from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from embedtrain.losses.distributed import backward_to_local, gather_leaves, is_distributed
from embedtrain.losses.gradcache import GradCacheLoss, refuse_static_model
from embedtrain.losses.multiple_negatives_ranking import (
    GATHER_FIELD,
    RANKING_CONTRACT,
    RankingOptions,
    RankingSettings,
    gather_columns,
    ranking_row_losses,
)
from embedtrain.losses.registry import register_loss
from embedtrain.models.embedder import SentenceEmbedder

MINI_BATCH_SIZE_FIELD = Field(32, gt=0, description="rows embedded at once (bounds activation memory)")
MINI_BATCH_NUM_TOKENS_FIELD = Field(
    None, gt=0, description="instead of mini_batch_size: as many rows as fit this many non-padding tokens")


class CachedMultipleNegativesRankingParams(RankingOptions):
    type: Literal["CachedMultipleNegativesRankingLoss"]
    mini_batch_size: int = MINI_BATCH_SIZE_FIELD
    mini_batch_num_tokens: int | None = MINI_BATCH_NUM_TOKENS_FIELD
    gather_across_devices: bool = GATHER_FIELD


def cached_ranking_loss(reps: list[list[Tensor]], options: RankingSettings, mini_batch_size: int,
                        with_backward: bool, gather: bool = False) -> Tensor:
    """MultipleNegativesRankingLoss on mini-batched embeddings, its score matrix computed `mini_batch_size` queries
    at a time: `L = sum over chunks of (sum of the chunk's row losses) / B`, backpropagated chunk by chunk.

    `gather`: this process's queries score against every process's candidates (as the uncached loss with
    gather_across_devices); the embeddings are gathered once, and their gradients summed over the processes once,
    however many chunks each process computes."""
    local = [torch.cat(column) for column in reps]
    if not gather or not is_distributed():
        return _chunked_ranking_loss(*gather_columns(local, gather=False), options, mini_batch_size, with_backward)
    gathered, offset = gather_leaves(local)
    rows = torch.arange(offset, offset + local[0].size(0), device=local[0].device)
    total = _chunked_ranking_loss(gathered[0], gathered[1:], rows, options, mini_batch_size, with_backward)
    if with_backward:
        backward_to_local(local, gathered, offset)
    return total


def _chunked_ranking_loss(queries: Tensor, docs: list[Tensor], rows: Tensor, options: RankingSettings,
                          mini_batch_size: int, with_backward: bool) -> Tensor:
    batch_size = len(rows)
    total = queries.new_zeros(())
    for begin in range(0, batch_size, mini_batch_size):
        chunk = ranking_row_losses(queries, docs, rows[begin:begin + mini_batch_size], options).sum() / batch_size
        if with_backward:
            chunk.backward()
            chunk = chunk.detach()
        total = total + chunk
    return total


@register_loss
class CachedMultipleNegativesRankingLoss(GradCacheLoss):
    """MultipleNegativesRankingLoss with GradCache: the same loss and gradients for a batch far larger than memory allows.

    Columns are embedded `mini_batch_size` rows (or `mini_batch_num_tokens` tokens) at a time; see
    `embedtrain.losses.gradcache`. Costs about one extra forward pass per row.
    """

    Params = CachedMultipleNegativesRankingParams
    contract = RANKING_CONTRACT

    def __init__(self, params: CachedMultipleNegativesRankingParams, model: SentenceEmbedder) -> None:
        super().__init__(params, model)
        refuse_static_model(params, model)

    def calculate_loss(self, reps: list[list[Tensor]], labels: Tensor | None, with_backward: bool) -> Tensor:
        return cached_ranking_loss(reps, self.params, self.params.mini_batch_size, with_backward,
                                   self.params.gather_across_devices and self.training)
