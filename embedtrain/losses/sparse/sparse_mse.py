from typing import Literal

from embedtrain.losses.embed_distill import DISTILL_CONTRACT
from embedtrain.losses.mse import MSELoss
from embedtrain.losses.registry import LossParams, register_loss


class SparseMSEParams(LossParams):
    type: Literal["SparseMSELoss"]


@register_loss(SparseMSEParams, DISTILL_CONTRACT)
class SparseMSELoss(MSELoss):
    """Mean squared error between the student's sparse embeddings and a teacher's (given as the label).

    `L = mean_columns mean (student - teacher)²`, as MSELoss without a projection. The one sparse loss
    that trains a sparse model on its own (without sparsity terms); it also works inside SpladeLoss or CSRLoss.
    """

    model_kinds = ("sparse",)

    def __init__(self) -> None:
        # The embedding dimension only sizes a projection, which the sparse variant does not have.
        super().__init__(embedding_dimension=0, projection_dim=None)

    @classmethod
    def from_params(cls, params: SparseMSEParams, model) -> "SparseMSELoss":
        return cls()
