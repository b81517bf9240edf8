from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from embedtrain.data.contract import ColumnContract
from embedtrain.losses.registry import EmbeddingLoss, LossParams, register_loss
from embedtrain.similarity import PAIRWISE


class CoSENTParams(LossParams):
    type: Literal["CoSENTLoss"]
    scale: float = Field(20.0, gt=0, description="multiplier applied to the pair similarities")
    similarity: Literal["cosine", "dot"] = "cosine"


@register_loss
class CoSENTLoss(EmbeddingLoss):
    """Pairwise ranking of pair similarities by their gold scores (CoSENT).

    `L = log(1 + sum over pairs (i, j) with y_i < y_j of exp(s * (sim_i - sim_j)))`: every pair that
    the model ranks above a pair with a higher gold score is penalised.
    """

    Params = CoSENTParams
    contract = ColumnContract(inputs=("sentence1", "sentence2"), label="score")

    def pair_similarities(self, a: Tensor, b: Tensor) -> Tensor:
        """(n, d) x (n, d) -> (n,) the similarity of each pair that the loss ranks."""
        return PAIRWISE[self.params.similarity](a, b)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        scores = self.pair_similarities(embeddings[0], embeddings[1]).float() * self.params.scale
        labels = labels.view(-1)
        differences = scores[:, None] - scores[None, :]  # sim_i - sim_j
        wrongly_ordered = labels[:, None] < labels[None, :]  # y_i < y_j
        differences = differences.masked_fill(~wrongly_ordered, float("-inf"))
        # The leading zero is the "1 +" inside the log.
        return torch.logsumexp(torch.cat([differences.new_zeros(1), differences.flatten()]), dim=0)
