from typing import Literal

from torch import Tensor

from embedtrain.data.contract import ColumnContract
from embedtrain.losses.batch_triplet_distances import (
    BATCH_DISTANCES,
    DISTANCE_FIELD,
    MARGIN_FIELD,
    BatchDistanceName,
    hardest_distances,
)
from embedtrain.losses.registry import EmbeddingLoss, LossParams, register_loss


class BatchHardTripletParams(LossParams):
    type: Literal["BatchHardTripletLoss"]
    distance_metric: BatchDistanceName = DISTANCE_FIELD
    margin: float = MARGIN_FIELD


@register_loss
class BatchHardTripletLoss(EmbeddingLoss):
    """For each anchor, its hardest triplet: the farthest same-class text and the closest other-class text.

    `L = mean_a relu(max_p d(a,p) - min_n d(a,n) + m)` (Hermans et al., 2017).
    """

    Params = BatchHardTripletParams
    contract = ColumnContract(inputs=("sentence",), label="class")

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        distances = BATCH_DISTANCES[self.params.distance_metric](embeddings[0])
        hardest_positive, hardest_negative = hardest_distances(distances, labels.view(-1))
        return (hardest_positive - hardest_negative + self.params.margin).clamp(min=0).mean()
