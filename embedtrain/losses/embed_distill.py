from dataclasses import replace
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from embedtrain.data.contract import ColumnContract
from embedtrain.errors import DataError, RecipeError
from embedtrain.losses.frozen_encoder import FrozenEncoder
from embedtrain.losses.registry import Embedder, EmbeddingLoss, LossParams, register_loss
from embedtrain.models.embedder import SentenceEmbedder

DistillDistance = Literal["cosine", "mse", "l2"]
TeacherColumns = Literal["each_column", "first_column"]
DISTILL_CONTRACT = ColumnContract(inputs=("sentence",), repeated_input="other", label="embedding")
"""Any number of text columns; the label is the teacher embedding of the first (broadcast to every column) or one per column."""
TEACHER_LABEL_REFUSAL = ("the loss's `teacher:` model computes the target embeddings, so no label column is read: list "
                         "the column in `ignore_columns:` (not in `columns:`), or remove `teacher:` to train on the "
                         "column's embeddings instead")


class DistillOptions(LossParams):
    """Where the teacher embeddings come from (a `label` column, or a teacher model) and their dimension.

    Subclasses add the `distance_metric` EmbedDistillLoss uses (an option, or fixed as a class variable).
    """

    projection_dim: int | None = Field(
        None, gt=0, description="teacher dimension, when it differs from the student's: adds a trainable linear "
                                "projection of the student embeddings (not saved with the model)")
    teacher: str | None = Field(
        None, description="teacher model (hub id or local directory) whose embeddings of the batch's texts are the "
                          "targets, computed per batch (frozen); the data then needs no label column. Without it, the "
                          "teacher embeddings are read from the label column")
    teacher_embeds: TeacherColumns = Field(
        "each_column", description="with `teacher`: each_column, every column's student embedding matches the teacher's "
                                   "embedding of the same text; first_column, the teacher embeds the first column only "
                                   "and every column matches it (multilingual distillation: source, translations...)")

    @model_validator(mode="after")
    def _teacher_embeds_needs_a_teacher(self) -> "DistillOptions":
        if "teacher_embeds" in self.model_fields_set and self.teacher is None:
            raise ValueError("teacher_embeds applies only with a `teacher:` model; set `teacher:` or remove teacher_embeds")
        return self


class EmbedDistillParams(DistillOptions):
    type: Literal["EmbedDistillLoss"]
    distance_metric: DistillDistance = Field("cosine", description="cosine (1 - cos), mse or l2 distance to the teacher")


@register_loss
class EmbedDistillLoss(EmbeddingLoss):
    """Distils a teacher's embeddings: each column's student embedding must match the teacher's (a model or a label column).

    `L = mean_columns D(P·student, teacher)` with D the mean of 1 - cos, the MSE, or the mean L2 distance,
    and P an optional trainable projection. Labels: (batch, d) for every column, or (batch, columns, d);
    with a `teacher` model, its embeddings of the first column or of each column, computed per batch.
    """

    Params = EmbedDistillParams
    contract = DISTILL_CONTRACT

    def __init__(self, params: DistillOptions, model: SentenceEmbedder | None = None) -> None:
        """`model` sizes the projection and reads the teacher's inputs; without either, it is not needed."""
        super().__init__(params, model)
        teacher = None
        if params.teacher is not None:
            teacher = FrozenEncoder.load(params.teacher, model, "teacher")
            _check_teacher_dimension(params, teacher.embedding_dimension, model.embedding_dimension)
        self.projection = nn.Linear(model.embedding_dimension, params.projection_dim) if params.projection_dim else None
        self.teacher = teacher

    @classmethod
    def contract_for(cls, params: DistillOptions) -> ColumnContract:
        if params.teacher is None:
            return cls.contract
        return replace(cls.contract, label=None, label_refusal=TEACHER_LABEL_REFUSAL)

    @classmethod
    def truncation_refusal(cls, params: DistillOptions) -> str | None:
        if params.projection_dim is not None:
            return "its projection expects full-size embeddings"
        return super().truncation_refusal(params)

    def targets(self, features: list[dict[str, Tensor]], labels: Tensor | None) -> Tensor | None:
        """Labels given (a label column, or targets a wrapping loss already computed) as they are; else the teacher's
        embeddings, (batch, d) of the first column or (batch, columns, d)."""
        if self.teacher is None or labels is not None:
            return labels
        # Per batch rather than once per dataset: it works for streamed data, whatever the sampler and prompts, and
        # never holds a dataset's embeddings in memory. The cost is small: without a graph, all-MiniLM-L6-v2 as the
        # teacher of a 3-layer student took ~27% of each step (CPU, batch 32), which precomputing would save only from
        # the second epoch on; such runs can still write the embeddings into a label column and drop the teacher.
        if self.params.teacher_embeds == "first_column":
            return self.teacher.embed(features[0])
        return torch.stack([self.teacher.embed(column) for column in features], dim=1)

    def forward(self, model: Embedder, features: list[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        return super().forward(model, features, self.targets(features, labels))

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
        if self.params.distance_metric == "mse":
            return F.mse_loss(student, teacher)
        if self.params.distance_metric == "l2":
            return torch.norm(student - teacher, dim=-1).mean()
        return (1 - F.cosine_similarity(student, teacher, dim=-1)).mean()


def _check_teacher_dimension(params: DistillOptions, teacher_dim: int, student_dim: int) -> None:
    """The student embeddings (projected, with projection_dim) must be as wide as the teacher's: fail before training."""
    compared = params.projection_dim or student_dim
    if compared == teacher_dim:
        return
    if params.projection_dim is not None:
        raise RecipeError(f"{params.type}: projection_dim is {params.projection_dim}, but teacher {params.teacher!r} "
                          f"embeds into {teacher_dim} dimensions; set projection_dim: {teacher_dim}")
    raise RecipeError(f"{params.type}: teacher {params.teacher!r} embeds into {teacher_dim} dimensions, the model into "
                      f"{student_dim}; add `model.dense: {{out_features: {teacher_dim}}}` (saved with the model) or set "
                      f"the loss's projection_dim: {teacher_dim} (a trainable projection that is not saved), or choose a "
                      f"teacher with {student_dim}-dimensional embeddings")
