"""Distillation: mean squared error between a teacher's embeddings of the sources and the model's of the targets."""

from typing import ClassVar, Literal

import torch
from pydantic import Field

from embedtrain.data.contract import ColumnContract
from embedtrain.errors import RecipeError
from embedtrain.evaluation.registry import (
    Evaluator,
    EvaluatorParams,
    embed_rows,
    register_evaluator,
    shared_embeddings,
)
from embedtrain.models.embedder import SentenceEmbedder


class MSEParams(EvaluatorParams):
    type: Literal["mse"]
    teacher: str = Field(description="the teacher model: a local folder or hub id (any model embedtrain loads)")
    teacher_revision: str | None = None


@register_evaluator(MSEParams)
class MSEEvaluator(Evaluator):
    """`negative_mse` = -100 x mean((teacher(source) - model(target))^2) over every row and dimension.

    The teacher embeds the sources once, at the first evaluation, and is then released; the model embeds the targets
    through the `embed` hook (where the sparse evaluator records their sparsity; the teacher's is not recorded).
    """

    contract: ClassVar = ColumnContract(inputs=("source", "target"))
    model_kinds: ClassVar[tuple[str, ...]] = ("dense",)  # its maths needs dense embeddings

    def __init__(self, params: MSEParams, columns: dict[str, list]) -> None:
        super().__init__(params, columns)
        self.teacher_embeddings: torch.Tensor | None = None

    @classmethod
    def metric_keys(cls, params: MSEParams) -> list[str]:
        return ["negative_mse"]

    @classmethod
    def primary_key(cls, params: MSEParams) -> str:
        return "negative_mse"

    def load_teacher(self) -> SentenceEmbedder:
        """The teacher model, as saved (a plain checkpoint: dense, with mean pooling)."""
        from embedtrain.models.io import load_model

        return load_model(self.params.teacher, revision=self.params.teacher_revision)

    def compute(self, model: SentenceEmbedder) -> dict[str, float]:
        params = self.params
        if self.teacher_embeddings is None:
            # In a cache of its own: the shared one is keyed by id(model), and once this teacher is freed another
            # teacher loaded later in the same round may get its id.
            with shared_embeddings():
                self.teacher_embeddings = embed_rows(self.load_teacher().to(model.device), self.columns["source"],
                                                     params.batch_size, params.truncate_dim)
        student = self.embed(model, self.columns["target"], params.batch_size, params.truncate_dim)
        if student.shape != self.teacher_embeddings.shape:
            raise RecipeError(f"evaluator {params.name}: the teacher {params.teacher!r} gives {self.teacher_embeddings.shape[1]}"
                              f"-dimensional embeddings and the model {student.shape[1]}; set truncate_dim or pick a "
                              f"teacher of the model's dimension")
        return {"negative_mse": -mean_squared_error(self.teacher_embeddings, student) * 100}


def mean_squared_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """mean((a - b)^2) over every row and dimension. Two sparse (COO) matrices stay sparse, the squares summed in
    float64 over the non-zero differences only: densifying them (the reference does) takes rows x vocabulary floats."""
    if a.is_sparse and b.is_sparse:
        differences = (a - b).coalesce().values().double()
        return float(differences.pow(2).sum()) / (a.size(0) * a.size(1))
    return torch.mean((a - b) ** 2).item()
