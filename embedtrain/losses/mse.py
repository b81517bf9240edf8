from typing import ClassVar, Literal

from embedtrain.losses.embed_distill import DistillDistance, DistillOptions, EmbedDistillLoss
from embedtrain.losses.registry import register_loss


class MSEParams(DistillOptions):
    type: Literal["MSELoss"]
    distance_metric: ClassVar[DistillDistance] = "mse"


@register_loss
class MSELoss(EmbedDistillLoss):
    """Mean squared error between student embeddings and teacher embeddings (multilingual distillation, Reimers & Gurevych 2020).

    `L = mean_columns mean (student - teacher)²`: EmbedDistillLoss with distance_metric mse; the teacher
    embeddings come from a label column or from a `teacher` model.
    """

    Params = MSEParams
