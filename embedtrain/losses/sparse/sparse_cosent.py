from typing import Literal

from embedtrain.losses.cosent import CoSENTLoss, CoSENTParams
from embedtrain.losses.registry import LOSSES, register_loss


class SparseCoSENTParams(CoSENTParams):
    type: Literal["SparseCoSENTLoss"]


@register_loss(SparseCoSENTParams, LOSSES[CoSENTLoss.__name__].contract)
class SparseCoSENTLoss(CoSENTLoss):
    """CoSENTLoss for sparse models: pairwise ranking of pair similarities by their gold scores.

    The maths and defaults of CoSENTLoss (cosine similarity, scale 20). Used inside SpladeLoss or CSRLoss.
    """

    model_kinds = ()
