from typing import ClassVar, Literal

from torch import Tensor

from embedtrain.losses.cross_encoder.listwise import LISTWISE_CONTRACT, score_lists
from embedtrain.losses.cross_encoder.plist_mle import LambdaWeight, PlackettLuceOptions, plackett_luce_loss
from embedtrain.losses.registry import CrossEncoderInputs, CrossEncoderLoss, PairScorer, register_loss


class ListMLEParams(PlackettLuceOptions):
    type: Literal["ListMLELoss"]
    lambda_weight: ClassVar[LambdaWeight | None] = None


@register_loss
class ListMLELoss(CrossEncoderLoss):
    """Listwise: the Plackett-Luce likelihood of each query's ranking of its documents.

    `L = -mean_q Σ_i [s_(i) - log Σ_{j >= i} exp(s_(j))]` with documents in their true order (as listed, or by
    label) (Xia et al., 2008): PListMLELoss without position weights.
    """

    Params = ListMLEParams
    contract = LISTWISE_CONTRACT

    def forward(self, model: PairScorer, inputs: CrossEncoderInputs, labels: list[list[float]]) -> Tensor:
        lists = score_lists(model, inputs, labels, self.params, label_padding=float("-inf"))
        return plackett_luce_loss(lists.scores, lists.labels, lists.mask, self.params, self.params.lambda_weight)
