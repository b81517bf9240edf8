import math
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor

from embedtrain.losses.cross_encoder.listwise import LISTWISE_CONTRACT, ListwiseOptions, score_lists
from embedtrain.losses.registry import CrossEncoderInputs, CrossEncoderLoss, PairScorer, register_loss

WeightingScheme = Literal["NoWeightingScheme", "NDCGLoss1Scheme", "NDCGLoss2Scheme", "LambdaRankScheme",
                          "NDCGLoss2PPScheme"]


class PairwiseOptions(ListwiseOptions):
    k: int | None = Field(None, gt=0, description="only pairs with a document in the top k predicted ranks count "
                                                  "(NDCG@k); null: every pair")
    sigma: float = Field(1.0, description="sharpness of the pairwise logistic: log σ(sigma · (s_i - s_j))")
    eps: float = Field(1e-10, gt=0, description="floor of the ideal DCG (a list without gains)")
    reduction_log: Literal["natural", "binary"] = Field("binary", description="logarithm of the pairwise terms: ln "
                                                                              "or log2")


class LambdaParams(PairwiseOptions):
    type: Literal["LambdaLoss"]
    weighting_scheme: WeightingScheme = Field("NDCGLoss2PPScheme", description="weight of each document pair: none "
                                              "(RankNet), NDCG-Loss1, NDCG-Loss2, LambdaRank or NDCG-Loss2++")
    mu: float = Field(10.0, description="NDCGLoss2PPScheme only: weight of its NDCG-Loss2 term against LambdaRank's")

    @model_validator(mode="after")
    def _mu_only_for_ndcg_loss2pp(self) -> "LambdaParams":
        if "mu" in self.model_fields_set and self.weighting_scheme != "NDCGLoss2PPScheme":
            raise ValueError(f"mu weighs NDCGLoss2PPScheme's terms; weighting_scheme {self.weighting_scheme} has none: "
                             f"remove mu or use NDCGLoss2PPScheme")
        return self


Weighting = Callable[[Tensor, Tensor], Tensor]
"""(gains (batch, n) in predicted order, discounts (1, n)) -> weight of each pair (i, j), broadcastable to (batch, n, n)."""


def _no_weighting(gain: Tensor, discount: Tensor) -> Tensor:
    return torch.ones((), device=gain.device)


def _ndcg_loss1(gain: Tensor, discount: Tensor) -> Tensor:
    return (gain / discount)[:, :, None]


def _ndcg_loss2(gain: Tensor, discount: Tensor) -> Tensor:
    """|1/D(|i-j|) - 1/D(|i-j| + 1)| · |G_i - G_j|, D(r) = log2(1 + r) the discount of rank r (0 on the diagonal)."""
    positions = torch.arange(gain.size(1), device=gain.device)
    gaps = (positions[:, None] - positions[None, :]).abs()
    inverse = discount[0].reciprocal()  # inverse[r] = 1 / D(r + 1)
    steps = (inverse[(gaps - 1).clamp(min=0)] - inverse[gaps]).abs().masked_fill(gaps == 0, 0.0)
    return steps[None, :, :] * (gain[:, :, None] - gain[:, None, :]).abs()


def _lambda_rank(gain: Tensor, discount: Tensor) -> Tensor:
    """|1/D_i - 1/D_j| · |G_i - G_j|: the NDCG change of swapping documents i and j."""
    inverse = discount.reciprocal()
    return (inverse[:, :, None] - inverse[:, None, :]).abs() * (gain[:, :, None] - gain[:, None, :]).abs()


WEIGHTINGS: dict[WeightingScheme, Weighting] = {
    "NoWeightingScheme": _no_weighting,
    "NDCGLoss1Scheme": _ndcg_loss1,
    "NDCGLoss2Scheme": _ndcg_loss2,
    "LambdaRankScheme": _lambda_rank,
}


def pair_weights(params: PairwiseOptions, gain: Tensor, discount: Tensor) -> Tensor:
    """The weights of `params.weighting_scheme`; NDCGLoss2PPScheme is mu · NDCG-Loss2 + LambdaRank."""
    if params.weighting_scheme == "NDCGLoss2PPScheme":
        return params.mu * _ndcg_loss2(gain, discount) + _lambda_rank(gain, discount)
    return WEIGHTINGS[params.weighting_scheme](gain, discount)


def lambda_loss(scores: Tensor, labels: Tensor, params: PairwiseOptions) -> Tensor:
    """The LambdaLoss of padded (batch, n) scores and labels (-inf in padding), in the reference's reduction: the
    mean over the document pairs that count (label_i > label_j, one of them in the top k by prediction)."""
    size = scores.size(1)
    k = params.k or size
    sorted_scores, order = scores.sort(descending=True, dim=-1)
    labels_by_prediction = labels.gather(1, order)
    ideal_labels = labels.sort(descending=True, dim=-1).values
    label_gaps = labels_by_prediction[:, :, None] - labels_by_prediction[:, None, :]
    counted = torch.isfinite(label_gaps)  # both real documents
    if params.weighting_scheme != "NDCGLoss1Scheme":  # as the reference: NDCG-Loss1 weighs document i alone (G_i / D_i), over every pair
        counted &= label_gaps > 0
    positions = torch.arange(size, device=scores.device)
    counted &= (positions[:, None] < k) | (positions[None, :] < k)  # LambdaLoss paper, Eq. 18
    discount = torch.log2(2.0 + positions.float())[None, :]  # log2(1 + rank)
    ideal_dcg = ((2.0 ** ideal_labels.clamp(min=0.0) - 1) / discount)[:, :k].sum(dim=-1).clamp(min=params.eps)
    gain = (2.0 ** labels_by_prediction.clamp(min=0.0) - 1) / ideal_dcg[:, None]
    weights = pair_weights(params, gain, discount)
    # Clamped and de-NaN-ed so that padding (scored -1e16) never turns a term into inf or NaN; log σ(x) computed
    # directly keeps the gradient of badly misordered pairs, which σ then log would lose to underflow.
    score_gaps = (sorted_scores[:, :, None] - sorted_scores[:, None, :]).clamp(min=-1e8, max=1e8)
    score_gaps = score_gaps.masked_fill(torch.isnan(score_gaps), 0.0)
    terms = weights * F.logsigmoid(params.sigma * score_gaps)
    if params.reduction_log == "binary":
        terms = terms / math.log(2)
    terms = terms[counted]
    return -terms.sum() / max(terms.numel(), 1)


@register_loss
class LambdaLoss(CrossEncoderLoss):
    """Listwise: trains the ranking of each query's documents toward NDCG, through pairs weighted by their NDCG impact.

    `L = -(1/|P|) Σ_{(i,j) ∈ P} w_ij · log_b σ(sigma · (s_i - s_j))` over the pairs P of documents with
    `y_i > y_j` (in predicted order, one of them in the top k), with gains `(2^y - 1) / maxDCG` and discounts
    `log2(1 + rank)` in the weights of `weighting_scheme` (Wang et al., 2018, "The LambdaLoss Framework").
    Rows are (query, [documents]) with one score per document, of any length.
    """

    Params = LambdaParams
    contract = LISTWISE_CONTRACT

    def forward(self, model: PairScorer, inputs: CrossEncoderInputs, labels: list[list[float]]) -> Tensor:
        lists = score_lists(model, inputs, labels, self.params, label_padding=float("-inf"))
        return lambda_loss(lists.scores, lists.labels, self.params)
