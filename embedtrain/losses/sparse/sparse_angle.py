from typing import Literal

from embedtrain.losses.angle import AnglELoss, AnglEParams
from embedtrain.losses.registry import LOSSES, register_loss


class SparseAnglEParams(AnglEParams):
    type: Literal["SparseAnglELoss"]


@register_loss(SparseAnglEParams, LOSSES[AnglELoss.__name__].contract)
class SparseAnglELoss(AnglELoss):
    """AnglELoss for sparse models: CoSENT on the complex-angle similarity of each pair.

    The maths and defaults of AnglELoss (scale 20). Used inside SpladeLoss or CSRLoss.
    """

    model_kinds = ()
