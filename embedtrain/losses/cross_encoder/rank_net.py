from typing import ClassVar, Literal

from torch import Tensor

from embedtrain.losses.cross_encoder.lambda_loss import PairwiseOptions, WeightingScheme, lambda_loss
from embedtrain.losses.cross_encoder.listwise import LISTWISE_CONTRACT, score_lists
from embedtrain.losses.registry import CrossEncoderInputs, CrossEncoderLoss, PairScorer, register_loss


class RankNetParams(PairwiseOptions):
    type: Literal["RankNetLoss"]
    weighting_scheme: ClassVar[WeightingScheme] = "NoWeightingScheme"


@register_loss
class RankNetLoss(CrossEncoderLoss):
    """Pairwise: each document pair's logistic loss on its score gap, every pair weighing the same.

    `L = -(1/|P|) Σ_{(i,j) ∈ P} log_b σ(sigma · (s_i - s_j))` over the pairs P with `y_i > y_j` (one of them in
    the top k by prediction): LambdaLoss without weighting (Burges et al., 2005).
    """

    Params = RankNetParams
    contract = LISTWISE_CONTRACT

    def forward(self, model: PairScorer, inputs: CrossEncoderInputs, labels: list[list[float]]) -> Tensor:
        lists = score_lists(model, inputs, labels, self.params, label_padding=float("-inf"))
        return lambda_loss(lists.scores, lists.labels, self.params)
