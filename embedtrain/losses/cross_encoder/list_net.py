from typing import Literal

import torch.nn.functional as F
from torch import Tensor

from embedtrain.losses.cross_encoder.listwise import LISTWISE_CONTRACT, ListwiseOptions, score_lists
from embedtrain.losses.registry import CrossEncoderInputs, CrossEncoderLoss, PairScorer, register_loss


class ListNetParams(ListwiseOptions):
    type: Literal["ListNetLoss"]


@register_loss
class ListNetLoss(CrossEncoderLoss):
    """Listwise: the cross-entropy between the softmax of each query's labels and the softmax of its scores.

    `L = -mean_q Σ_i softmax(y_q)_i · log softmax(s_q)_i` over the query's documents (Cao et al., 2007,
    top-one probabilities). Rows are (query, [documents]) with one score per document, of any length.
    """

    Params = ListNetParams
    contract = LISTWISE_CONTRACT

    def forward(self, model: PairScorer, inputs: CrossEncoderInputs, labels: list[list[float]]) -> Tensor:
        lists = score_lists(model, inputs, labels, self.params, label_padding=float("-inf"))  # padding: no mass
        return F.cross_entropy(lists.scores, lists.labels.softmax(dim=1))
