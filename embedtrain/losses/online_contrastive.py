from typing import Literal

import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from embedtrain.data.contract import ColumnContract
from embedtrain.losses.registry import EmbeddingLoss, LossParams, register_loss
from embedtrain.losses.siamese_distances import PAIR_DISTANCES, PairDistanceName


class OnlineContrastiveParams(LossParams):
    type: Literal["OnlineContrastiveLoss"]
    distance_metric: PairDistanceName = Field("cosine", description="cosine (1 - cos), euclidean or manhattan distance")
    margin: float = Field(0.5, description="hard negative pairs closer than this are penalised")


@register_loss
class OnlineContrastiveLoss(EmbeddingLoss):
    """ContrastiveLoss on the hard pairs only: positives farther than the closest negative, negatives closer than the farthest positive.

    `L = sum over hard positives of d² + sum over hard negatives of relu(m - d)²` (summed, not averaged).
    With no negatives (or no positives) in the batch, the threshold is the mean distance of the other kind.
    """

    Params = OnlineContrastiveParams
    contract = ColumnContract(inputs=("sentence1", "sentence2"), label="binary")

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        labels = labels.view(-1)
        distances = PAIR_DISTANCES[self.params.distance_metric](embeddings[0], embeddings[1])
        negatives, positives = distances[labels == 0], distances[labels == 1]
        hard_negatives = negatives[negatives < (positives.max() if len(positives) else negatives.mean())]
        hard_positives = positives[positives > (negatives.min() if len(negatives) else positives.mean())]
        return hard_positives.pow(2).sum() + F.relu(self.params.margin - hard_negatives).pow(2).sum()
