import copy
import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from embedtrain.data.contract import ColumnContract
from embedtrain.losses.registry import Embedder, EmbeddingLoss, LossParams, register_loss
from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.similarity import MATRIX, SimilarityName


class ContrastiveTensionInBatchNegativesParams(LossParams):
    type: Literal["ContrastiveTensionLossInBatchNegatives"]
    scale: float = Field(20.0, gt=0, description="initial value of the learnable logit scale")
    similarity: SimilarityName = "cosine"


@register_loss
class ContrastiveTensionLossInBatchNegatives(EmbeddingLoss):
    """Unsupervised Contrastive Tension with in-batch negatives: a frozen-at-start copy of the model and the model must agree on each text.

    A second encoder (a copy of the model when the loss is built, trained too but not saved)
    embeds each text as `a_i`, the model as `b_i`; with `S = sim(a, b) · exp(t)` (t learnable,
    initially log scale): `L = ½[CE(S, I) + CE(Sᵀ, I)]` (Carlsson et al., 2021).
    """

    Params = ContrastiveTensionInBatchNegativesParams
    contract = ColumnContract(inputs=("sentence",))
    not_truncatable = "its second encoder's embeddings are not truncated"

    def __init__(self, params: ContrastiveTensionInBatchNegativesParams, model: SentenceEmbedder) -> None:
        super().__init__(params, model)
        self.second_encoder = copy.deepcopy(model)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(params.scale)))

    def forward(self, model: Embedder, features: list[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        first = self.second_encoder(dict(features[0]))["sentence_embedding"]
        second = model(features[0])["sentence_embedding"]
        return self.compute_loss_from_embeddings([first, second], labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        scores = MATRIX[self.params.similarity](embeddings[0], embeddings[1]) * self.logit_scale.exp()
        targets = torch.arange(len(scores), device=scores.device)
        return (F.cross_entropy(scores, targets) + F.cross_entropy(scores.T, targets)) / 2
