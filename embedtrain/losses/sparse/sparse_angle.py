from typing import Literal

from embedtrain.losses.angle import AnglELoss, AnglEParams
from embedtrain.losses.registry import register_loss


class SparseAnglEParams(AnglEParams):
    type: Literal["SparseAnglELoss"]


@register_loss
class SparseAnglELoss(AnglELoss):
    """AnglELoss for sparse models: CoSENT on the complex-angle similarity of each pair.

    The maths and defaults of AnglELoss (scale 20). Used inside SpladeLoss or CSRLoss.
    """

    Params = SparseAnglEParams
    model_kinds = ()
    sparse_inner_loss = True
    saved_similarity = "cosine"  # the reference's loss sets its model's similarity_fn_name to cosine
