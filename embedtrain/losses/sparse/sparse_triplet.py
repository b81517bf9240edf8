from typing import Literal

from embedtrain.losses.registry import register_loss
from embedtrain.losses.triplet import TripletLoss, TripletParams


class SparseTripletParams(TripletParams):
    type: Literal["SparseTripletLoss"]


@register_loss
class SparseTripletLoss(TripletLoss):
    """TripletLoss for sparse models: the anchor must be closer to its positive than to its negative, by a margin.

    The maths and defaults of TripletLoss (euclidean distance, margin 5). Used inside SpladeLoss or CSRLoss.
    """

    Params = SparseTripletParams
    model_kinds = ()
    sparse_inner_loss = True
