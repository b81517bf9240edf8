from typing import Literal

import torch.nn.functional as F
from torch import Tensor

from embedtrain.data.contract import ColumnContract
from embedtrain.losses.registry import EmbeddingLoss, LossParams, register_loss
from embedtrain.similarity import cosine_pairwise


class CosineSimilarityParams(LossParams):
    type: Literal["CosineSimilarityLoss"]


@register_loss
class CosineSimilarityLoss(EmbeddingLoss):
    """Mean squared error between the cosine similarity of each pair and its gold score.

    `L = mean_i (cos(u_i, v_i) - y_i)^2`; scores are expected in the cosine's range (usually 0..1).
    """

    Params = CosineSimilarityParams
    contract = ColumnContract(inputs=("sentence1", "sentence2"), label="score", label_range=(-1.0, 1.0))

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        cosine = cosine_pairwise(embeddings[0], embeddings[1]).float()
        return F.mse_loss(cosine, labels.float().view(-1))
