from typing import Literal

import torch.nn.functional as F
from torch import Tensor

from embedtrain.data.contract import ColumnContract
from embedtrain.losses.batch_triplet_distances import (
    BATCH_DISTANCES,
    DISTANCE_FIELD,
    BatchDistanceName,
    hardest_distances,
)
from embedtrain.losses.registry import EmbeddingLoss, LossParams, register_loss


class BatchHardSoftMarginTripletParams(LossParams):
    type: Literal["BatchHardSoftMarginTripletLoss"]
    distance_metric: BatchDistanceName = DISTANCE_FIELD


@register_loss
class BatchHardSoftMarginTripletLoss(EmbeddingLoss):
    """BatchHardTripletLoss with a soft margin instead of a fixed one.

    `L = mean_a log(1 + exp(max_p d(a,p) - min_n d(a,n)))` (Hermans et al., 2017).
    """

    Params = BatchHardSoftMarginTripletParams
    contract = ColumnContract(inputs=("sentence",), label="class")

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        distances = BATCH_DISTANCES[self.params.distance_metric](embeddings[0])
        hardest_positive, hardest_negative = hardest_distances(distances, labels.view(-1))
        return F.softplus(hardest_positive - hardest_negative).mean()
