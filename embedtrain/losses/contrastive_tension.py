import copy
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from embedtrain.data.contract import ColumnContract
from embedtrain.losses.registry import Embedder, EmbeddingLoss, LossParams, register_loss
from embedtrain.models.embedder import SentenceEmbedder


class ContrastiveTensionParams(LossParams):
    type: Literal["ContrastiveTensionLoss"]


def same_tokens(first: dict[str, Tensor], second: dict[str, Tensor]) -> Tensor:
    """(batch,) 1.0 where the two columns hold the same text (same non-padding token ids), else 0.0."""
    return torch.tensor([torch.equal(ids_1[mask_1.bool()], ids_2[mask_2.bool()]) for ids_1, mask_1, ids_2, mask_2
                         in zip(first["input_ids"], first["attention_mask"], second["input_ids"], second["attention_mask"])],
                        dtype=torch.float32, device=first["input_ids"].device)


@register_loss
class ContrastiveTensionLoss(EmbeddingLoss):
    """Unsupervised Contrastive Tension: two encoders must agree (high dot product) on identical texts and disagree on different ones.

    A second encoder (a copy of the model when the loss is built; trained too, not saved) embeds
    sentence1, the model embeds sentence2; a pair is positive when both texts are the same (build
    the data with, e.g., one identical pair in eight): `L = sum_i BCE(sigmoid(e1_i · e2_i), y_i)`
    (Carlsson et al., 2021).
    """

    Params = ContrastiveTensionParams
    contract = ColumnContract(inputs=("sentence1", "sentence2"))
    not_truncatable = "its second encoder's embeddings are not truncated"

    def __init__(self, params: ContrastiveTensionParams, model: SentenceEmbedder) -> None:
        super().__init__(params, model)
        self.second_encoder = copy.deepcopy(model)

    def forward(self, model: Embedder, features: list[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        labels = same_tokens(features[0], features[1])
        first = self.second_encoder(dict(features[0]))["sentence_embedding"]
        second = model(features[1])["sentence_embedding"]
        return self.compute_loss_from_embeddings([first, second], labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        scores = (embeddings[0] * embeddings[1]).sum(dim=-1)
        return F.binary_cross_entropy_with_logits(scores, labels.to(scores.dtype), reduction="sum")
