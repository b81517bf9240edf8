import copy
import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from embedtrain.data.contract import ColumnContract
from embedtrain.losses.registry import Embedder, EmbeddingLoss, LossParams, register_loss
from embedtrain.similarity import MATRIX, SimilarityName


class ContrastiveTensionInBatchNegativesParams(LossParams):
    type: Literal["ContrastiveTensionLossInBatchNegatives"]
    scale: float = Field(20.0, gt=0, description="initial value of the learnable logit scale")
    similarity: SimilarityName = "cosine"


@register_loss(ContrastiveTensionInBatchNegativesParams, ColumnContract(inputs=("sentence",)))
class ContrastiveTensionLossInBatchNegatives(EmbeddingLoss):
    """Unsupervised Contrastive Tension with in-batch negatives: a frozen-at-start copy of the model and the model must agree on each text.

    A second encoder (a copy of the model when the loss is built, trained too but not saved)
    embeds each text as `a_i`, the model as `b_i`; with `S = sim(a, b) · exp(t)` (t learnable,
    initially log scale): `L = ½[CE(S, I) + CE(Sᵀ, I)]` (Carlsson et al., 2021).
    """

    def __init__(self, second_encoder: nn.Module, scale: float = 20.0, similarity: str = "cosine") -> None:
        super().__init__()
        self.second_encoder = second_encoder
        self.similarity_fn = MATRIX[similarity]
        self.logit_scale = nn.Parameter(torch.tensor(math.log(scale)))

    @classmethod
    def from_params(cls, params: ContrastiveTensionInBatchNegativesParams, model) -> "ContrastiveTensionLossInBatchNegatives":
        return cls(copy.deepcopy(model), **params.model_dump(exclude={"type"}))

    def forward(self, model: Embedder, features: list[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        first = self.second_encoder(dict(features[0]))["sentence_embedding"]
        second = model(features[0])["sentence_embedding"]
        return self.compute_loss_from_embeddings([first, second], labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        scores = self.similarity_fn(embeddings[0], embeddings[1]) * self.logit_scale.exp()
        targets = torch.arange(len(scores), device=scores.device)
        return (F.cross_entropy(scores, targets) + F.cross_entropy(scores.T, targets)) / 2
