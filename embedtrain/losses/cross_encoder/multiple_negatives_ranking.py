from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from embedtrain.data.contract import ColumnContract
from embedtrain.losses.cross_encoder.scoring import Activation, activate, activation_field, column_scores
from embedtrain.losses.registry import CrossEncoderInputs, CrossEncoderLoss, LossParams, PairScorer, register_loss

RANKING_CONTRACT = ColumnContract(inputs=("anchor", "positive"), repeated_input="negative", in_batch_negatives=True,
                                  scored_as_pairs=True)


class CrossEncoderRankingOptions(LossParams):
    num_negatives: int | None = Field(4, gt=0, description="in-batch negatives drawn per anchor from the other rows' "
                                                           "positives and negatives; null: all of them")
    scale: float = Field(10.0, gt=0, description="multiplies the activated scores before the softmax (1: none)")
    activation_fn: Activation = activation_field("sigmoid")


class CrossEncoderMultipleNegativesRankingParams(CrossEncoderRankingOptions):
    type: Literal["CrossEncoderMultipleNegativesRankingLoss"]


def candidate_columns(inputs: CrossEncoderInputs, num_negatives: int | None) -> list[list[str]]:
    """The candidates each anchor is scored against, as columns (one text per row): the positives, then
    `num_negatives` columns of in-batch negatives (drawn at random with torch's RNG, without replacement, from the
    other rows' positives and hard negatives; all of them when that is fewer, or None), then the hard negatives."""
    anchors, candidates = inputs[0], inputs[1:]
    batch_size, columns = len(anchors), len(candidates)
    pool = [text for column in candidates for text in column]  # candidate of row r in column c: pool[c * B + r]
    others = ~torch.eye(batch_size, dtype=torch.bool).repeat(1, columns)  # (B, B·C): every row's but the anchor's own
    if num_negatives is not None and num_negatives < (batch_size - 1) * columns:
        drawn = torch.multinomial(others.float(), num_negatives)
    else:
        drawn = torch.arange(batch_size * columns).repeat(batch_size, 1)[others].reshape(batch_size, -1)
    in_batch = [[pool[index] for index in slot] for slot in drawn.T.tolist()]
    return [candidates[0], *in_batch, *candidates[1:]]


def ranking_loss(scores: Tensor, params: CrossEncoderRankingOptions) -> Tensor:
    """Cross-entropy of each anchor's candidates, its positive first: `scores` (rows, candidates) are the logits of
    `candidate_columns`."""
    logits = activate(params.activation_fn, scores) * params.scale
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=logits.device))


@register_loss
class CrossEncoderMultipleNegativesRankingLoss(CrossEncoderLoss):
    """Ranks each anchor's positive above in-batch and hard negatives, all scored by the cross-encoder as pairs.

    `L = mean_i CE(scale · a([s(a_i, p_i), s(a_i, r_i1..r_im), s(a_i, n_i1..n_ik)]), 0)`: `m = num_negatives`
    random negatives from the other rows' positives and hard negatives, then the row's hard negatives; `a` is
    the activation (sigmoid by default). Each negative costs a pair forward pass. The reference's
    cross-encoder MultipleNegativesRankingLoss.
    """

    Params = CrossEncoderMultipleNegativesRankingParams
    contract = RANKING_CONTRACT

    def forward(self, model: PairScorer, inputs: CrossEncoderInputs, labels: None) -> Tensor:
        columns = candidate_columns(inputs, self.params.num_negatives)
        return ranking_loss(column_scores(model, inputs[0], columns), self.params)
