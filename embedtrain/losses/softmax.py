from dataclasses import replace
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from embedtrain.data.contract import ColumnContract
from embedtrain.losses.registry import EmbeddingLoss, LossParams, register_loss
from embedtrain.models.embedder import SentenceEmbedder


class SoftmaxParams(LossParams):
    type: Literal["SoftmaxLoss"]
    num_labels: int = Field(ge=2, description="number of classes of the label column")
    concatenation_sent_rep: bool = Field(True, description="feed u and v to the classifier")
    concatenation_sent_difference: bool = Field(True, description="feed |u - v| to the classifier")
    concatenation_sent_multiplication: bool = Field(False, description="feed u * v to the classifier")

    @property
    def vectors_per_pair(self) -> int:
        """How many embedding-sized vectors the classifier reads per pair."""
        return (2 * self.concatenation_sent_rep + self.concatenation_sent_difference
                + self.concatenation_sent_multiplication)

    @model_validator(mode="after")
    def _classifier_has_inputs(self) -> "SoftmaxParams":
        if self.vectors_per_pair == 0:
            raise ValueError("the classifier needs an input: set at least one of the concatenation_sent_* options")
        return self


@register_loss
class SoftmaxLoss(EmbeddingLoss):
    """Cross-entropy of a linear classifier over [u; v; |u - v|; u * v] of each pair (SBERT's NLI loss).

    The classifier is trained with the model but is not part of the saved model.
    """

    Params = SoftmaxParams
    contract = ColumnContract(inputs=("sentence1", "sentence2"), label="class")
    not_truncatable = "its classifier expects full-size embeddings"

    def __init__(self, params: SoftmaxParams, model: SentenceEmbedder) -> None:
        super().__init__(params, model)
        self.classifier = nn.Linear(params.vectors_per_pair * model.embedding_dimension, params.num_labels)

    @classmethod
    def contract_for(cls, params: SoftmaxParams) -> ColumnContract:
        return replace(cls.contract, num_classes=params.num_labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        u, v = embeddings[0], embeddings[1]
        features = []
        if self.params.concatenation_sent_rep:
            features += [u, v]
        if self.params.concatenation_sent_difference:
            features.append(torch.abs(u - v))
        if self.params.concatenation_sent_multiplication:
            features.append(u * v)
        logits = self.classifier(torch.cat(features, dim=1))
        return F.cross_entropy(logits, labels.view(-1).long())
