from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from embedtrain.data.contract import ColumnContract
from embedtrain.losses.registry import EmbeddingLoss, LossParams, register_loss
from embedtrain.similarity import MATRIX


class MultipleNegativesRankingParams(LossParams):
    type: Literal["MultipleNegativesRankingLoss"]
    scale: float = Field(20.0, gt=0, description="inverse temperature applied to the similarities")
    similarity: Literal["cosine", "dot"] = "cosine"


@register_loss(
    MultipleNegativesRankingParams,
    ColumnContract(inputs=("anchor", "positive"), repeated_input="negative", in_batch_negatives=True),
)
class MultipleNegativesRankingLoss(EmbeddingLoss):
    """InfoNCE over in-batch negatives: each anchor must pick its positive among all candidates in the batch.

    Candidates are every positive of the batch followed by every hard negative (column by column),
    so row i's target is candidate i: `L = -mean_i[s*sim(a_i, p_i) - logsumexp_j s*sim(a_i, c_j)]`.
    """

    def __init__(self, scale: float = 20.0, similarity: str = "cosine") -> None:
        super().__init__()
        self.scale = scale
        self.similarity_fn = MATRIX[similarity]

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        anchors, candidates = embeddings[0], torch.cat(embeddings[1:], dim=0)
        scores = self.similarity_fn(anchors, candidates).float() * self.scale
        targets = torch.arange(anchors.size(0), device=anchors.device)
        return F.cross_entropy(scores, targets)
