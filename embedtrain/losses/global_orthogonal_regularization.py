from typing import Literal

import torch
from pydantic import Field, model_validator
from torch import Tensor

from embedtrain.data.contract import ColumnContract
from embedtrain.losses.registry import EmbeddingLoss, LossParams, register_loss
from embedtrain.similarity import MATRIX, SimilarityName


class GlobalOrthogonalRegularizationParams(LossParams):
    type: Literal["GlobalOrthogonalRegularizationLoss"]
    similarity: SimilarityName = "cosine"
    mean_weight: float = Field(1.0, ge=0, description="weight of the squared mean similarity term (0: off)")
    second_moment_weight: float = Field(1.0, ge=0, description="weight of the second-moment term (0: off)")
    aggregation: Literal["mean", "sum"] = Field("mean", description="how the terms of the columns are combined")

    @model_validator(mode="after")
    def _some_term(self) -> "GlobalOrthogonalRegularizationParams":
        if not self.mean_weight and not self.second_moment_weight:
            raise ValueError("mean_weight and second_moment_weight are both 0: at least one term must be on")
        return self


@register_loss
class GlobalOrthogonalRegularizationLoss(EmbeddingLoss):
    """Spreads unrelated embeddings out: their similarities should average 0 with a second moment of at most 1/d.

    Per column, over the B(B-1) off-diagonal similarities S of the batch: `gor_mean = (mean S)²` and
    `gor_second_moment = relu(mean S² - 1/d)` (Zhang et al., 2017), each weighted and averaged (or
    summed) over the columns. Returns both terms, logged separately and summed for training.
    """

    Params = GlobalOrthogonalRegularizationParams
    contract = ColumnContract(inputs=("anchor",), repeated_input="other")

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> dict[str, Tensor]:
        mean_terms, second_moment_terms = zip(*(self._terms(embedding) for embedding in embeddings))
        combine = torch.sum if self.params.aggregation == "sum" else torch.mean
        losses = {}
        if self.params.mean_weight:
            losses["gor_mean"] = self.params.mean_weight * combine(torch.stack(mean_terms))
        if self.params.second_moment_weight:
            losses["gor_second_moment"] = self.params.second_moment_weight * combine(torch.stack(second_moment_terms))
        return losses

    def _terms(self, embeddings: Tensor) -> tuple[Tensor, Tensor]:
        batch_size, dimension = embeddings.shape
        diagonal = torch.eye(batch_size, dtype=torch.bool, device=embeddings.device)
        similarities = MATRIX[self.params.similarity](embeddings, embeddings).masked_fill(diagonal, 0.0)
        pairs = max(batch_size * (batch_size - 1), 1)
        mean_term = (similarities.sum() / pairs).pow(2)
        second_moment_term = torch.relu(similarities.pow(2).sum() / pairs - 1.0 / dimension)
        return mean_term, second_moment_term
