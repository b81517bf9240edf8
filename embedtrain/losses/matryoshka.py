import random
from functools import partial
from typing import Literal

import torch
from pydantic import Field, model_validator
from torch import Tensor

from embedtrain.errors import RecipeError
from embedtrain.losses.embedder_views import TruncatedEmbedder, truncate
from embedtrain.losses.gradcache import GradCacheLoss
from embedtrain.losses.registry import (
    LOSSES,
    Embedder,
    EmbeddingLoss,
    LossConfig,
    LossParams,
    build_loss,
    register_loss,
    total_loss,
)
from embedtrain.models.embedder import SentenceEmbedder


class MatryoshkaOptions(LossParams):
    loss: LossConfig = Field(description="the loss to apply at every dimension, e.g. {type: MultipleNegativesRankingLoss}")
    matryoshka_dims: list[int] = Field(min_length=1, description="embedding sizes to train, e.g. [768, 512, 256, 128, 64]")
    matryoshka_weights: list[float] | None = Field(None, description="weight of each dimension's loss (default: all 1)")

    @model_validator(mode="after")
    def _valid_dims(self) -> "MatryoshkaOptions":
        if any(dim <= 0 for dim in self.matryoshka_dims):
            raise ValueError(f"matryoshka_dims must be positive, got {self.matryoshka_dims}")
        if self.matryoshka_weights is not None and len(self.matryoshka_weights) != len(self.matryoshka_dims):
            raise ValueError(f"matryoshka_weights has {len(self.matryoshka_weights)} values for "
                             f"{len(self.matryoshka_dims)} matryoshka_dims")
        reason = LOSSES[self.loss.type].loss_class.truncation_refusal(self.loss)
        if reason:
            raise ValueError(f"loss: {self.loss.type} cannot be trained on truncated embeddings: {reason}")
        return self


class MatryoshkaParams(MatryoshkaOptions):
    type: Literal["MatryoshkaLoss"]
    n_dims_per_step: int = Field(-1, description="dimensions sampled per step (-1: all)")


@register_loss
class MatryoshkaLoss(EmbeddingLoss):
    """Trains every prefix of the embedding as an embedding of its own, so embeddings can be truncated at inference.

    `L = sum_d w_d · L_inner(normalize(e[:, :d]))` over `matryoshka_dims` (Kusupati et al., 2022); the model
    runs once per step. Teacher-embedding labels are truncated with the embeddings. With a cached
    (GradCache) inner loss, truncation happens on the cached embeddings.
    """

    Params = MatryoshkaParams
    contract = None
    not_truncatable = "it is already a MatryoshkaLoss"

    def __init__(self, params: MatryoshkaParams, model: SentenceEmbedder) -> None:
        super().__init__(params, model)
        self.loss = build_loss(params.loss, model)
        self.embedding_dimension = model.embedding_dimension
        too_large = [dim for dim in params.matryoshka_dims if dim > self.embedding_dimension]
        if too_large:
            raise RecipeError(f"matryoshka_dims: {too_large} exceed the model's embedding dimension "
                              f"{self.embedding_dimension}; use dims of at most {self.embedding_dimension}")
        weights = params.matryoshka_weights or [1.0] * len(params.matryoshka_dims)
        # Largest first: the first pass runs the model, later passes reuse its output.
        self.dims, self.weights = zip(*sorted(zip(params.matryoshka_dims, weights), key=lambda pair: pair[0], reverse=True))

    def sampled_dims(self) -> list[int]:
        """Indices of the dimensions trained this step (all, or `n_dims_per_step` drawn with Python's `random`)."""
        indices = list(range(len(self.dims)))
        if 0 < self.params.n_dims_per_step < len(indices):
            indices = sorted(random.sample(indices, self.params.n_dims_per_step))
        return indices

    def targets(self, features: list[dict[str, Tensor]], labels: Tensor | None) -> Tensor | None:
        return self.loss.targets(features, labels)

    def forward(self, model: Embedder, features: list[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        labels = self.targets(features, labels)  # once per step (a teacher's embeddings), truncated with the model's
        if isinstance(self.loss, GradCacheLoss):
            return self.loss.forward_cached(model, features, labels, partial(self._cached_loss, self.sampled_dims()))
        view = TruncatedEmbedder(model)
        total = 0.0
        for index in self.sampled_dims():
            view.start_pass(self.dims[index])
            total = total + self.weights[index] * total_loss(self.loss(view, features, self._labels_for(labels, self.dims[index])))
        return total

    def _labels_for(self, labels: Tensor | None, dim: int) -> Tensor | None:
        """Teacher embeddings (2-D or 3-D, as wide as the model's embeddings) are truncated too."""
        if labels is not None and labels.ndim in (2, 3) and labels.size(-1) == self.embedding_dimension:
            return labels[..., :dim]
        return labels

    def _cached_loss(self, indices: list[int], reps: list[list[Tensor]], labels: Tensor | None, with_backward: bool) -> Tensor:
        """The inner cached loss at every sampled dimension; with_backward, the gradients reach the full embeddings."""
        total = 0.0
        for index in indices:
            dim, weight = self.dims[index], self.weights[index]
            truncated = [[truncate(rep, dim) for rep in column] for column in reps]
            if not with_backward:
                total = total + weight * self.loss.calculate_loss(truncated, labels, False)
                continue
            leaves = [[rep.detach().requires_grad_() for rep in column] for column in truncated]
            total = total + weight * self.loss.calculate_loss(leaves, labels, True)
            for column, leaf_column in zip(truncated, leaves):
                for rep, leaf in zip(column, leaf_column):
                    rep.backward(weight * leaf.grad)
        return torch.as_tensor(total)
