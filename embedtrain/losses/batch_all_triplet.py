from typing import Literal

from torch import Tensor

from embedtrain.data.contract import ColumnContract
from embedtrain.losses.batch_triplet_distances import (
    BATCH_DISTANCES,
    DISTANCE_FIELD,
    MARGIN_FIELD,
    BatchDistanceName,
    positive_pairs,
)
from embedtrain.losses.registry import EmbeddingLoss, LossParams, register_loss


class BatchAllTripletParams(LossParams):
    type: Literal["BatchAllTripletLoss"]
    distance_metric: BatchDistanceName = DISTANCE_FIELD
    margin: float = MARGIN_FIELD


@register_loss
class BatchAllTripletLoss(EmbeddingLoss):
    """Every valid triplet of the batch (anchor, a same-class positive, an other-class negative), averaged over the active ones.

    `L = sum_{a,p,n} relu(d(a,p) - d(a,n) + m) / #{triplets with a loss > 1e-16}` (Hermans et al., 2017).
    """

    Params = BatchAllTripletParams
    contract = ColumnContract(inputs=("sentence",), label="class")

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        labels = labels.view(-1)
        distances = BATCH_DISTANCES[self.params.distance_metric](embeddings[0])
        anchors, positives = positive_pairs(labels).nonzero(as_tuple=True)
        # One row per (anchor, positive) pair, one column per candidate negative.
        losses = distances[anchors, positives].unsqueeze(1) - distances[anchors] + self.params.margin
        is_negative = labels[anchors].unsqueeze(1) != labels.unsqueeze(0)
        losses = (is_negative.float() * losses).clamp(min=0)
        active = int((losses > 1e-16).sum())
        return losses.sum() / (active + 1e-16)
