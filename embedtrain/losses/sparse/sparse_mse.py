from typing import ClassVar, Literal

from embedtrain.losses.embed_distill import DistillDistance
from embedtrain.losses.mse import MSELoss
from embedtrain.losses.registry import LossParams, register_loss


class SparseMSEParams(LossParams):
    type: Literal["SparseMSELoss"]
    # MSELoss's options, fixed: the teacher embeddings come from the label column, and there is no projection.
    distance_metric: ClassVar[DistillDistance] = "mse"
    projection_dim: ClassVar[None] = None
    teacher: ClassVar[None] = None


@register_loss
class SparseMSELoss(MSELoss):
    """Mean squared error between the student's sparse embeddings and a teacher's (given as the label).

    `L = mean_columns mean (student - teacher)²`, as MSELoss without a projection. The one sparse loss
    that trains a sparse model on its own (without sparsity terms); it also works inside SpladeLoss or CSRLoss.
    """

    Params = SparseMSEParams
    model_kinds = ("sparse",)
    sparse_inner_loss = True
