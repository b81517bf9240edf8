from typing import Literal

import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from embedtrain.data.contract import ColumnContract
from embedtrain.losses.registry import EmbeddingLoss, LossParams, register_loss
from embedtrain.similarity import PAIRWISE


class TripletParams(LossParams):
    type: Literal["TripletLoss"]
    distance_metric: Literal["cosine", "euclidean", "manhattan"] = Field(
        "euclidean", description="cosine (1 - cos), euclidean or manhattan distance")
    triplet_margin: float = Field(5.0, description="the negative must be this much farther than the positive")


@register_loss
class TripletLoss(EmbeddingLoss):
    """The anchor must be closer to its positive than to its negative, by a margin.

    `L = mean_i relu(d(a_i, p_i) - d(a_i, n_i) + m)`, d = 1 - cos, ||·||₂ or ||·||₁.
    """

    Params = TripletParams
    contract = ColumnContract(inputs=("anchor", "positive", "negative"))

    def distance(self, a: Tensor, b: Tensor) -> Tensor:
        similarity = PAIRWISE[self.params.distance_metric](a, b)
        # PAIRWISE holds similarities: the negated distance, or the cosine.
        return 1 - similarity if self.params.distance_metric == "cosine" else -similarity

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        anchors, positives, negatives = embeddings
        violations = self.distance(anchors, positives) - self.distance(anchors, negatives) + self.params.triplet_margin
        return F.relu(violations).mean()
