from functools import partial
from typing import Literal

import torch
from torch import Tensor

from embedtrain.losses.cached_multiple_negatives_ranking import MINI_BATCH_NUM_TOKENS_FIELD, MINI_BATCH_SIZE_FIELD
from embedtrain.losses.gradcache import GradCacheLoss
from embedtrain.losses.registry import Embedder, register_loss, total_loss
from embedtrain.losses.sparse.splade import SpladeLoss, SpladeOptions


class CachedSpladeParams(SpladeOptions):
    type: Literal["CachedSpladeLoss"]
    mini_batch_size: int = MINI_BATCH_SIZE_FIELD
    mini_batch_num_tokens: int | None = MINI_BATCH_NUM_TOKENS_FIELD


@register_loss
class CachedSpladeLoss(SpladeLoss, GradCacheLoss):
    """SpladeLoss with GradCache: the same loss and gradients for a batch far larger than memory allows.

    Only the model's passes are mini-batched (`mini_batch_size` rows or `mini_batch_num_tokens` tokens at
    a time, see `embedtrain.losses.gradcache`); the wrapped loss and the regularisers see the whole
    batch's embeddings at once, so its score matrix is full-size. Every column's features must be
    padded rows (`input_ids`, `attention_mask`), as every sparse model's input modules produce.
    """

    Params = CachedSpladeParams

    def forward(self, model: Embedder, features: list[dict[str, Tensor]], labels: Tensor | None) -> dict[str, Tensor]:
        terms: dict[str, Tensor] = {}
        total = self.forward_cached(model, features, labels, partial(self._calculate, terms=terms))
        # Only `total` carries the gradient (its backward hook re-embeds the mini-batches). The other terms are
        # returned as values, and the first is made the difference, so that the terms still sum to `total`.
        first, *others = terms
        rest = {name: terms[name] for name in others}
        return {first: total - sum(rest.values()), **rest}

    def _calculate(self, reps: list[list[Tensor]], labels: Tensor | None, with_backward: bool,
                   terms: dict[str, Tensor]) -> Tensor:
        """SpladeLoss's terms on the mini-batches' embeddings, recorded (detached) in `terms`; their sum is returned,
        with_backward after backpropagating it to the embeddings."""
        computed = self.compute_loss_from_embeddings([torch.cat(column) for column in reps], labels)
        terms.update({name: value.detach() for name, value in computed.items()})
        total = total_loss(computed)
        if with_backward:
            total.backward()
            total = total.detach()
        return total
