from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from embedtrain.data.contract import ColumnContract
from embedtrain.losses.cross_encoder.scoring import PAIR_INPUTS, Activation, activate, activation_field, pair_scores
from embedtrain.losses.registry import CrossEncoderInputs, CrossEncoderLoss, LossParams, PairScorer, register_loss


class CrossEncoderMSEParams(LossParams):
    type: Literal["CrossEncoderMSELoss"]
    activation_fn: Activation = activation_field("identity")


@register_loss
class CrossEncoderMSELoss(CrossEncoderLoss):
    """Distils a teacher's pair scores (or regresses gold scores): each pair's score must match its label.

    `L = mean_i (a(s_i) - y_i)²` with `s_i` the pair's logit and `a` the activation (identity by default;
    sigmoid when the teacher's scores are probabilities). The reference's cross-encoder MSELoss.
    """

    Params = CrossEncoderMSEParams
    contract = ColumnContract(inputs=PAIR_INPUTS, label="score", scored_as_pairs=True)

    def forward(self, model: PairScorer, inputs: CrossEncoderInputs, labels: Tensor) -> Tensor:
        logits = activate(self.params.activation_fn, pair_scores(model, list(zip(inputs[0], inputs[1]))))
        return F.mse_loss(logits, labels.detach().to(logits.device, torch.float32).view(-1))
