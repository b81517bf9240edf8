from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from embedtrain.data.contract import ColumnContract
from embedtrain.losses.cross_encoder.scoring import PAIR_INPUTS, Activation, activate, activation_field, pair_scores
from embedtrain.losses.registry import CrossEncoderInputs, CrossEncoderLoss, LossParams, PairScorer, register_loss


class BinaryCrossEntropyParams(LossParams):
    type: Literal["BinaryCrossEntropyLoss"]
    activation_fn: Activation = activation_field("identity")
    pos_weight: float | None = Field(None, gt=0, description="weight of the positive term (e.g. the number of negatives "
                                                             "per positive, to balance them); null: 1")


@register_loss
class BinaryCrossEntropyLoss(CrossEncoderLoss):
    """Binary cross-entropy of each pair's logit against its label: 1/0 relevance, or a score between 0 and 1.

    `L = mean_i BCEWithLogits(a(s_i), y_i)` with `s_i` the pair's logit and `a` the activation (identity by
    default); `pos_weight` multiplies the positive term `y_i·log σ(a(s_i))`. The classic reranker loss.
    """

    Params = BinaryCrossEntropyParams
    contract = ColumnContract(inputs=PAIR_INPUTS, label="score", label_range=(0.0, 1.0), scored_as_pairs=True)

    def forward(self, model: PairScorer, inputs: CrossEncoderInputs, labels: Tensor) -> Tensor:
        logits = activate(self.params.activation_fn, pair_scores(model, list(zip(inputs[0], inputs[1]))))
        pos_weight = self.params.pos_weight
        return F.binary_cross_entropy_with_logits(
            logits, labels.to(logits.device, torch.float32).view(-1),
            pos_weight=None if pos_weight is None else torch.tensor(pos_weight, device=logits.device))
