from typing import Literal

from embedtrain.losses.cosent import CoSENTLoss, CoSENTParams
from embedtrain.losses.registry import register_loss


class SparseCoSENTParams(CoSENTParams):
    type: Literal["SparseCoSENTLoss"]


@register_loss
class SparseCoSENTLoss(CoSENTLoss):
    """CoSENTLoss for sparse models: pairwise ranking of pair similarities by their gold scores.

    The maths and defaults of CoSENTLoss (cosine similarity, scale 20). Used inside SpladeLoss or CSRLoss.
    """

    Params = SparseCoSENTParams
    model_kinds = ()
    sparse_inner_loss = True
    saved_similarity = "cosine"  # the reference's loss sets its model's similarity_fn_name to cosine
