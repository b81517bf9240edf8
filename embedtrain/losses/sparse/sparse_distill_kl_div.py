from typing import Literal

from pydantic import Field

from embedtrain.losses.distill_kl_div import DistillKLDivLoss, DistillKLDivParams
from embedtrain.losses.registry import register_loss


class SparseDistillKLDivParams(DistillKLDivParams):
    type: Literal["SparseDistillKLDivLoss"]
    temperature: float = Field(2.0, gt=0, description="softmax temperature of student and teacher scores")


@register_loss
class SparseDistillKLDivLoss(DistillKLDivLoss):
    """DistillKLDivLoss for sparse models: KL from the teacher's to the student's softmax over each query's candidates.

    The maths of DistillKLDivLoss with the reference's sparse default temperature 2.0 (the dense
    default is 1.0): sparse dot-product scores are large, a softer softmax trains better. Used
    inside SpladeLoss or CSRLoss.
    """

    Params = SparseDistillKLDivParams
    model_kinds = ()
    sparse_inner_loss = True
