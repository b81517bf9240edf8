from typing import Literal

import torch.nn.functional as F
from torch import Tensor

from embedtrain.data.contract import ColumnContract
from embedtrain.losses.cross_encoder.scoring import PAIR_INPUTS, Activation, activate, activation_field
from embedtrain.losses.registry import CrossEncoderInputs, CrossEncoderLoss, LossParams, PairScorer, register_loss


class CrossEntropyParams(LossParams):
    type: Literal["CrossEntropyLoss"]
    activation_fn: Activation = activation_field("identity")


@register_loss
class CrossEntropyLoss(CrossEncoderLoss):
    """Cross-entropy of each pair's class logits against its class: a pair classifier (e.g. NLI) with num_labels classes.

    `L = mean_i CE(a(s_i), y_i)` with `s_i` the pair's model.num_labels logits and `a` the activation
    (identity by default). The class labels must lie in 0 .. model.num_labels - 1.
    """

    Params = CrossEntropyParams
    contract = ColumnContract(inputs=PAIR_INPUTS, label="class", scored_as_pairs=True)
    required_num_labels = "several"

    def forward(self, model: PairScorer, inputs: CrossEncoderInputs, labels: Tensor) -> Tensor:
        logits = activate(self.params.activation_fn, model.score_pairs(list(zip(inputs[0], inputs[1]))))
        return F.cross_entropy(logits, labels.to(logits.device).view(-1).long())
