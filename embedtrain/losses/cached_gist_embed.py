from functools import partial
from typing import Literal

import torch
from torch import Tensor

from embedtrain.losses.cached_multiple_negatives_ranking import MINI_BATCH_NUM_TOKENS_FIELD, MINI_BATCH_SIZE_FIELD
from embedtrain.losses.distributed import backward_to_local, gather_leaves, is_distributed
from embedtrain.losses.gist_embed import GuidedLoss, GuidedOptions
from embedtrain.losses.gradcache import GradCacheLoss, minibatch_ranges, slice_rows
from embedtrain.losses.multiple_negatives_ranking import GATHER_FIELD
from embedtrain.losses.registry import Embedder, register_loss


class CachedGISTEmbedParams(GuidedOptions):
    type: Literal["CachedGISTEmbedLoss"]
    mini_batch_size: int = MINI_BATCH_SIZE_FIELD
    mini_batch_num_tokens: int | None = MINI_BATCH_NUM_TOKENS_FIELD
    gather_across_devices: bool = GATHER_FIELD


@register_loss
class CachedGISTEmbedLoss(GradCacheLoss, GuidedLoss):
    """GISTEmbedLoss with GradCache: the same loss and gradients for a batch far larger than memory allows.

    The guide embeds each column in the same mini-batches (without a graph) before the loss.
    """

    Params = CachedGISTEmbedParams

    def forward(self, model: Embedder, features: list[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        size, num_tokens = self.params.mini_batch_size, self.params.mini_batch_num_tokens
        guide_reps = [torch.cat([self.guide.embed(slice_rows(column, begin, end))
                                 for begin, end in minibatch_ranges(column, size, num_tokens)])
                      for column in features]
        return self.forward_cached(model, features, labels, partial(self._calculate, guide_reps))

    def _calculate(self, guide_reps: list[Tensor], reps: list[list[Tensor]], labels: Tensor | None,
                   with_backward: bool) -> Tensor:
        """The loss of this process's anchors, `mini_batch_size` anchors at a time. Gathering (as the uncached loss:
        every process's positives and negatives, this process's anchors), the candidates are gathered once and their
        gradients summed over the processes once, however many chunks each process computes."""
        anchors, local = torch.cat(reps[0]), [torch.cat(column) for column in reps[1:]]
        candidates, guide_candidates, offset = local, guide_reps[1:], 0
        gather = self.params.gather_across_devices and self.training and is_distributed()
        if gather:
            candidates, offset = gather_leaves(local)
            guide_candidates = [column.detach() for column in gather_leaves(guide_candidates)[0]]
        batch_size = anchors.size(0)
        total = anchors.new_zeros(())
        for begin in range(0, batch_size, self.params.mini_batch_size):
            end = min(begin + self.params.mini_batch_size, batch_size)
            chunk = self.scorer.chunk_loss(anchors, candidates, guide_reps[0], guide_candidates, begin, end,
                                           offset) / batch_size
            if with_backward:
                chunk.backward()
                chunk = chunk.detach()
            total = total + chunk
        if gather and with_backward:
            backward_to_local(local, candidates, offset)
        return total
