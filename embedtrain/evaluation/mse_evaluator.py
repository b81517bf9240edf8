"""Distillation: mean squared error between a teacher's embeddings of the sources and the model's of the targets."""

from typing import ClassVar, Literal

import torch
from pydantic import Field

from embedtrain.data.contract import ColumnContract
from embedtrain.errors import RecipeError
from embedtrain.evaluation.registry import Evaluator, EvaluatorParams, embed_rows, register_evaluator
from embedtrain.models.embedder import SentenceEmbedder


class MSEParams(EvaluatorParams):
    type: Literal["mse"]
    teacher: str = Field(description="the teacher model: a local folder or hub id (any model embedtrain loads)")
    teacher_revision: str | None = None


@register_evaluator(MSEParams)
class MSEEvaluator(Evaluator):
    """`negative_mse` = -100 x mean((teacher(source) - model(target))^2) over every row and dimension.

    The teacher embeds the sources once, at the first evaluation, and is then released.
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

    def compute(self, model: SentenceEmbedder) -> dict[str, float]:
        from embedtrain.models.io import load_model

        params = self.params
        if self.teacher_embeddings is None:
            teacher = load_model(params.teacher, revision=params.teacher_revision).to(model.device)
            self.teacher_embeddings = embed_rows(teacher, self.columns["source"], params.batch_size,
                                                 params.truncate_dim)
        student = embed_rows(model, self.columns["target"], params.batch_size, params.truncate_dim)
        if student.shape != self.teacher_embeddings.shape:
            raise RecipeError(f"evaluator {params.name}: the teacher {params.teacher!r} gives {self.teacher_embeddings.shape[1]}"
                              f"-dimensional embeddings and the model {student.shape[1]}; set truncate_dim or pick a "
                              f"teacher of the model's dimension")
        mse = torch.mean((self.teacher_embeddings - student) ** 2).item() * 100
        return {"negative_mse": -mse}
