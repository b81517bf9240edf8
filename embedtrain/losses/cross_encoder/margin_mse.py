from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from embedtrain.data.contract import ColumnContract
from embedtrain.errors import DataError
from embedtrain.losses.cross_encoder.scoring import Activation, activate, activation_field, column_scores
from embedtrain.losses.registry import CrossEncoderInputs, CrossEncoderLoss, LossParams, PairScorer, register_loss


class CrossEncoderMarginMSEParams(LossParams):
    type: Literal["CrossEncoderMarginMSELoss"]
    activation_fn: Activation = activation_field("identity")


@register_loss
class CrossEncoderMarginMSELoss(CrossEncoderLoss):
    """Distils a teacher's score margins: a(s(q, p)) - a(s(q, n_k)) must match the teacher's margin for each negative.

    `L = mean_{i,k} (a(s(q_i, p_i)) - a(s(q_i, n_ik)) - y_ik)²` (Hofstätter et al., 2020), `a` the activation
    (identity by default). The label per row is the k margins, or the teacher's raw scores
    [score(q, p), score(q, n_1), ...] (k + 1 values, turned into margins), or one margin with one negative.
    The reference's cross-encoder MarginMSELoss.
    """

    Params = CrossEncoderMarginMSEParams
    contract = ColumnContract(inputs=("query", "positive"), repeated_input="negative", label="scores",
                              scored_as_pairs=True)

    def forward(self, model: PairScorer, inputs: CrossEncoderInputs, labels: Tensor | list[list[float]]) -> Tensor:
        queries, candidates = inputs[0], inputs[1:]
        batch_size, num_negatives = len(queries), len(candidates) - 1
        scores = activate(self.params.activation_fn, column_scores(model, queries, candidates))  # (batch, 1 + k)
        targets = torch.as_tensor(labels, dtype=torch.float32).detach().to(scores.device)
        if targets.shape == (batch_size, num_negatives + 1):
            targets = targets[:, :1] - targets[:, 1:]
        elif targets.shape == (batch_size,):
            targets = targets.unsqueeze(1)
        if num_negatives == 0 or targets.shape != (batch_size, num_negatives):
            raise DataError(f"CrossEncoderMarginMSELoss: the label holds {tuple(targets.shape[1:])} values per row, but "
                            f"with {num_negatives} negative column(s) it must hold {num_negatives} margins or "
                            f"{num_negatives + 1} raw teacher scores [positive, negatives...]; it needs at least one "
                            f"negative column")
        return F.mse_loss(scores[:, :1] - scores[:, 1:], targets)
