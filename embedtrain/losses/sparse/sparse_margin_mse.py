from typing import Literal

from embedtrain.losses.margin_mse import MarginMSELoss, MarginMSEParams
from embedtrain.losses.registry import register_loss


class SparseMarginMSEParams(MarginMSEParams):
    type: Literal["SparseMarginMSELoss"]


@register_loss
class SparseMarginMSELoss(MarginMSELoss):
    """MarginMSELoss for sparse models: the student's dot-product margins s(q, p) - s(q, n_i) must match the teacher's.

    The maths and labels of MarginMSELoss (Hofstätter et al., 2020). Used inside SpladeLoss or CSRLoss.
    """

    Params = SparseMarginMSEParams
    model_kinds = ()
    sparse_inner_loss = True
