from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from embedtrain.losses.cross_encoder.listwise import LISTWISE_CONTRACT, ListwiseOptions, score_lists
from embedtrain.losses.registry import CrossEncoderInputs, CrossEncoderLoss, PairScorer, register_loss


class ADRMSEParams(ListwiseOptions):
    type: Literal["ADRMSELoss"]
    alpha: float = Field(1.0, description="sharpness of the approximate rank: σ(alpha · (s_j - s_i)) per other document")


def approximate_ranks(scores: Tensor, mask: Tensor, alpha: float) -> Tensor:
    """r̂_i = 1 + Σ_{j ≠ i} σ(alpha · (s_j - s_i)) over each list's documents."""
    beaten_by = torch.sigmoid(alpha * (scores[:, None, :] - scores[:, :, None])) * mask[:, None, :].float()
    return 1.0 + beaten_by.sum(dim=2) - 0.5 * mask.float()  # the j = i term is σ(0) = 0.5


def true_ranks(labels: Tensor, mask: Tensor) -> Tensor:
    """1 + the number of documents labelled higher, ties sharing their average rank (attainable by tied scores)."""
    others = mask[:, None, :]
    higher = ((labels[:, None, :] > labels[:, :, None]) & others).sum(dim=-1).float()
    tied = ((labels[:, None, :] == labels[:, :, None]) & others).sum(dim=-1).float()  # counts the document itself
    return higher + (tied + 1.0) / 2.0


@register_loss
class ADRMSELoss(CrossEncoderLoss):
    """Listwise: the rank-discounted squared error between each document's true rank and its approximate rank.

    `L = Σ_q Σ_i (1 / log2(r_i + 1)) · (r_i - r̂_i)² / (number of documents)` with `r` the rank by label and
    `r̂_i = 1 + Σ_{j≠i} σ(alpha · (s_j - s_i))` (Rank-DistiLLM, Schlatt et al., 2024). Rows are (query,
    [documents]) with one score per document, of any length.
    """

    Params = ADRMSEParams
    contract = LISTWISE_CONTRACT

    def forward(self, model: PairScorer, inputs: CrossEncoderInputs, labels: list[list[float]]) -> Tensor:
        lists = score_lists(model, inputs, labels, self.params, label_padding=0.0)
        ranks = true_ranks(lists.labels, lists.mask)
        discount = 1.0 / torch.log2(ranks + 1.0)
        errors = discount * (ranks - approximate_ranks(lists.scores, lists.mask, self.params.alpha)) ** 2
        return (errors * lists.mask.float()).sum() / lists.mask.sum()
