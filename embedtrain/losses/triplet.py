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


@register_loss(TripletParams, ColumnContract(inputs=("anchor", "positive", "negative")))
class TripletLoss(EmbeddingLoss):
    """The anchor must be closer to its positive than to its negative, by a margin.

    `L = mean_i relu(d(a_i, p_i) - d(a_i, n_i) + m)`, d = 1 - cos, ||·||₂ or ||·||₁.
    """

    def __init__(self, distance_metric: str = "euclidean", triplet_margin: float = 5.0) -> None:
        super().__init__()
        similarity = PAIRWISE[distance_metric]
        # PAIRWISE holds similarities: the negated distance, or the cosine.
        self.distance = (lambda a, b: 1 - similarity(a, b)) if distance_metric == "cosine" else (lambda a, b: -similarity(a, b))
        self.triplet_margin = triplet_margin

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        anchors, positives, negatives = embeddings
        return F.relu(self.distance(anchors, positives) - self.distance(anchors, negatives) + self.triplet_margin).mean()
