from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from embedtrain.losses.cosent import CoSENTLoss
from embedtrain.losses.registry import LossParams, register_loss


class AnglEParams(LossParams):
    type: Literal["AnglELoss"]
    scale: float = Field(20.0, gt=0, description="multiplier applied to the pair angle similarities")


def angle_pairwise(a: Tensor, b: Tensor) -> Tensor:
    """(n, d) x (n, d) -> (n,) AnglE similarity `|cos(a, b) + sin(a, b)|` of the L2-normalised rows.

    Dimension i and i + d/2 form one complex number; `sin` is the imaginary part of the product
    of a and the conjugate of b (the complex-angle difference). An odd d is padded with a zero.
    """
    if a.size(1) % 2:
        a, b = F.pad(a, (0, 1)), F.pad(b, (0, 1))
    a, b = F.normalize(a, p=2, dim=1), F.normalize(b, p=2, dim=1)
    a_real, a_imag = torch.chunk(a, 2, dim=1)
    b_real, b_imag = torch.chunk(b, 2, dim=1)
    cosines = (a * b).sum(dim=1)
    sines = (a_imag * b_real - a_real * b_imag).sum(dim=1)
    return torch.abs(cosines + sines)


@register_loss
class AnglELoss(CoSENTLoss):
    """CoSENT on the AnglE similarity (complex-angle difference) of each pair, which keeps gradients away from cosine's saturation.

    `L = log(1 + sum over pairs (i, j) with y_i < y_j of exp(s * (angle_i - angle_j)))` (Li & Li, 2024).
    """

    Params = AnglEParams

    def pair_similarities(self, a: Tensor, b: Tensor) -> Tensor:
        return angle_pairwise(a, b)
