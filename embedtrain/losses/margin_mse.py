from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from embedtrain.data.contract import ColumnContract
from embedtrain.errors import DataError
from embedtrain.losses.registry import EmbeddingLoss, LossParams, register_loss
from embedtrain.similarity import PAIRWISE, SimilarityName


class MarginMSEParams(LossParams):
    type: Literal["MarginMSELoss"]
    similarity: SimilarityName = "dot"


@register_loss
class MarginMSELoss(EmbeddingLoss):
    """Distils a teacher's score margins: the student's sim(q, p) - sim(q, n_i) must match the teacher's.

    `L = mean_{i,k} (s(q_i, p_i) - s(q_i, n_ik) - y_ik)²` (Hofstätter et al., 2020). The label per row
    is either the k margins, or the teacher's raw scores [score(q, p), score(q, n_1), ...] (k + 1
    values, turned into margins), or one margin when there is one negative.
    """

    Params = MarginMSEParams
    contract = ColumnContract(inputs=("query", "positive"), repeated_input="negative", label="scores")

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        queries, positives, negatives = embeddings[0], embeddings[1], embeddings[2:]
        batch_size, num_negatives = queries.size(0), len(negatives)
        labels = labels.detach()
        if labels.shape == (batch_size, num_negatives + 1):
            labels = labels[:, :1] - labels[:, 1:]
        elif labels.shape == (batch_size,):
            labels = labels.unsqueeze(1)
        if labels.shape != (batch_size, num_negatives):
            raise DataError(f"MarginMSELoss: the label holds {tuple(labels.shape[1:])} values per row, but with "
                            f"{num_negatives} negative column(s) it must hold {num_negatives} margins or "
                            f"{num_negatives + 1} raw teacher scores [positive, negatives...]")
        similarity = PAIRWISE[self.params.similarity]
        positive_scores = similarity(queries, positives)
        margins = torch.stack([positive_scores - similarity(queries, negative) for negative in negatives], dim=1)
        return F.mse_loss(margins, labels)
