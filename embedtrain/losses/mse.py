from typing import Literal

from embedtrain.losses.embed_distill import DISTILL_CONTRACT, PROJECTION_FIELD, EmbedDistillLoss
from embedtrain.losses.registry import LossParams, register_loss


class MSEParams(LossParams):
    type: Literal["MSELoss"]
    projection_dim: int | None = PROJECTION_FIELD


@register_loss(MSEParams, DISTILL_CONTRACT)
class MSELoss(EmbedDistillLoss):
    """Mean squared error between student embeddings and teacher embeddings (multilingual distillation, Reimers & Gurevych 2020).

    `L = mean_columns mean (student - teacher)²`: EmbedDistillLoss with distance_metric mse.
    """

    def __init__(self, embedding_dimension: int, projection_dim: int | None = None) -> None:
        super().__init__(embedding_dimension, distance_metric="mse", projection_dim=projection_dim)
