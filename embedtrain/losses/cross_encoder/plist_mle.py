from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from embedtrain.losses.cross_encoder.listwise import LISTWISE_CONTRACT, ListwiseOptions, score_lists
from embedtrain.losses.registry import CrossEncoderInputs, CrossEncoderLoss, PairScorer, register_loss

LambdaWeight = Literal["PListMLELambdaWeight"]

NORMALISATION_EPS = 1e-10


class PlackettLuceOptions(ListwiseOptions):
    respect_input_order: bool = Field(True, description="the documents are listed best first, which is the ranking "
                                                        "to learn; false: rank them by their scores (labels)")


class PListMLEParams(PlackettLuceOptions):
    type: Literal["PListMLELoss"]
    lambda_weight: LambdaWeight | None = Field("PListMLELambdaWeight", description="position weights: "
                                               "PListMLELambdaWeight (2^(n - rank) - 1, normalised per list); "
                                               "null: none (ListMLE)")


def rank_discount_weights(mask: Tensor) -> Tensor:
    """PListMLELambdaWeight: 2^(n - rank) - 1 for rank 1..n of each list of n documents (0 in padding).

    Each list is scaled by 2^-max(n - 127, 0), which normalisation cancels, so its weights stay within float32.
    """
    counts = mask.sum(dim=1, keepdim=True)
    ranks = torch.arange(1, mask.size(1) + 1, device=mask.device).expand_as(mask)
    shift = (counts - 127).clamp_min(0)
    return (torch.pow(2.0, counts - ranks - shift) - torch.pow(2.0, -shift)) * mask


def plackett_luce_loss(scores: Tensor, labels: Tensor, mask: Tensor, params: PlackettLuceOptions,
                       lambda_weight: LambdaWeight | None) -> Tensor:
    """Mean over queries of the (position-weighted) negative Plackett-Luce log-likelihood of the true ranking."""
    if not params.respect_input_order:
        order = labels.sort(descending=True, dim=1).indices  # padding (-inf) last
        scores, mask = scores.gather(1, order), mask.gather(1, order)
    excluded = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    # log Σ_{j >= i} exp(s_j): the log-normaliser of choosing document i among those not yet ranked.
    log_normalisers = excluded.flip(1).logcumsumexp(dim=1).flip(1)
    log_likelihoods = scores - log_normalisers
    if lambda_weight is not None:
        weights = rank_discount_weights(mask)
        log_likelihoods = log_likelihoods * (weights / (weights.sum(dim=1, keepdim=True) + NORMALISATION_EPS))
    return -log_likelihoods.masked_fill(~mask, 0.0).sum(dim=1).mean()


@register_loss
class PListMLELoss(CrossEncoderLoss):
    """Listwise: the position-weighted Plackett-Luce likelihood of each query's ranking of its documents.

    `L = -mean_q Σ_i w_i · [s_(i) - log Σ_{j >= i} exp(s_(j))]` with documents in their true order (as listed,
    or by label) and `w_i ∝ 2^(n - i) - 1` (Lan et al., 2014, "Position-Aware ListMLE"). Rows are (query,
    [documents]) with one score per document, of any length.
    """

    Params = PListMLEParams
    contract = LISTWISE_CONTRACT

    def forward(self, model: PairScorer, inputs: CrossEncoderInputs, labels: list[list[float]]) -> Tensor:
        lists = score_lists(model, inputs, labels, self.params, label_padding=float("-inf"))
        return plackett_luce_loss(lists.scores, lists.labels, lists.mask, self.params, self.params.lambda_weight)
