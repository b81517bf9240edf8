from typing import Literal

from embedtrain.losses.embed_distill import DISTILL_CONTRACT, DistillOptions, EmbedDistillLoss
from embedtrain.losses.frozen_encoder import FrozenEncoder
from embedtrain.losses.registry import register_loss


class MSEParams(DistillOptions):
    type: Literal["MSELoss"]


@register_loss(MSEParams, DISTILL_CONTRACT)
class MSELoss(EmbedDistillLoss):
    """Mean squared error between student embeddings and teacher embeddings (multilingual distillation, Reimers & Gurevych 2020).

    `L = mean_columns mean (student - teacher)²`: EmbedDistillLoss with distance_metric mse; the teacher
    embeddings come from a label column or from a `teacher` model.
    """

    def __init__(self, embedding_dimension: int, projection_dim: int | None = None, teacher: FrozenEncoder | None = None,
                 teacher_embeds: str = "each_column") -> None:
        super().__init__(embedding_dimension, distance_metric="mse", projection_dim=projection_dim, teacher=teacher,
                         teacher_embeds=teacher_embeds)
