from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from embedtrain.data.contract import ColumnContract
from embedtrain.errors import DataError
from embedtrain.losses.registry import EmbeddingLoss, LossParams, register_loss

DistillDistance = Literal["cosine", "mse", "l2"]
PROJECTION_FIELD = Field(None, gt=0, description="teacher dimension, when it differs from the student's: adds a trainable "
                                                "linear projection of the student embeddings (not saved with the model)")
DISTILL_CONTRACT = ColumnContract(inputs=("sentence",), repeated_input="other", label="embedding")
"""Any number of text columns; the label is the teacher embedding of the first (broadcast to every column) or one per column."""


class EmbedDistillParams(LossParams):
    type: Literal["EmbedDistillLoss"]
    distance_metric: DistillDistance = Field("cosine", description="cosine (1 - cos), mse or l2 distance to the teacher")
    projection_dim: int | None = PROJECTION_FIELD


@register_loss(EmbedDistillParams, DISTILL_CONTRACT)
class EmbedDistillLoss(EmbeddingLoss):
    """Distils a teacher's embeddings: each column's student embedding must match the teacher embedding given as the label.

    `L = mean_columns D(P·student, teacher)` with D the mean of 1 - cos, the MSE, or the mean L2 distance,
    and P an optional trainable projection. Labels: (batch, d) for every column, or (batch, columns, d).
    """

    def __init__(self, embedding_dimension: int, distance_metric: str = "cosine", projection_dim: int | None = None) -> None:
        super().__init__()
        self.distance_metric = distance_metric
        self.projection = nn.Linear(embedding_dimension, projection_dim) if projection_dim is not None else None

    @classmethod
    def from_params(cls, params: LossParams, model) -> "EmbedDistillLoss":
        return cls(model.embedding_dimension, **params.model_dump(exclude={"type"}))

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        labels = labels.detach()
        if labels.dim() == 2:
            teachers = [labels] * len(embeddings)
        elif labels.dim() == 3 and labels.size(1) == len(embeddings):
            teachers = list(labels.unbind(dim=1))
        else:
            raise DataError(f"{type(self).__name__}: teacher embeddings must be (batch, dim) or (batch, {len(embeddings)} "
                            f"columns, dim), got shape {tuple(labels.shape)}")
        losses = [self._distance(student, teacher.to(student.dtype)) for student, teacher in zip(embeddings, teachers)]
        return torch.stack(losses).mean()

    def _distance(self, student: Tensor, teacher: Tensor) -> Tensor:
        if self.projection is not None:
            student = self.projection(student)
        if self.distance_metric == "mse":
            return F.mse_loss(student, teacher)
        if self.distance_metric == "l2":
            return torch.norm(student - teacher, dim=-1).mean()
        return (1 - F.cosine_similarity(student, teacher, dim=-1)).mean()
