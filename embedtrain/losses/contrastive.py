from typing import Literal

import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from embedtrain.data.contract import ColumnContract
from embedtrain.losses.registry import EmbeddingLoss, LossParams, register_loss
from embedtrain.losses.siamese_distances import PAIR_DISTANCES, PairDistanceName


class ContrastiveParams(LossParams):
    type: Literal["ContrastiveLoss"]
    distance_metric: PairDistanceName = Field("cosine", description="cosine (1 - cos), euclidean or manhattan distance")
    margin: float = Field(0.5, description="negative pairs closer than this are penalised")
    size_average: bool = Field(True, description="mean over the pairs (else the sum)")


@register_loss
class ContrastiveLoss(EmbeddingLoss):
    """Pulls positive pairs (label 1) together and pushes negative pairs (label 0) beyond a margin.

    `L_i = ½[y_i d_i² + (1 - y_i) relu(m - d_i)²]`, averaged (or summed) over the pairs (Hadsell et al., 2006).
    """

    Params = ContrastiveParams
    contract = ColumnContract(inputs=("sentence1", "sentence2"), label="binary")

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        labels = labels.view(-1).float()
        distances = PAIR_DISTANCES[self.params.distance_metric](embeddings[0], embeddings[1])
        losses = 0.5 * (labels * distances.pow(2) + (1 - labels) * F.relu(self.params.margin - distances).pow(2))
        return losses.mean() if self.params.size_average else losses.sum()
