"""What every cross-encoder evaluator shares: the model calls it makes, its parameters, its model kind."""

from collections.abc import Sequence
from functools import partial
from typing import ClassVar, Protocol

import numpy as np
from pydantic import Field
from torch import Tensor

from embedtrain.errors import RecipeError
from embedtrain.evaluation.processes import compute_in_shares
from embedtrain.evaluation.registry import Evaluator, EvaluatorParams


class PairScorer(Protocol):
    """The only parts of a cross-encoder an evaluator uses."""

    num_labels: int

    def predict(self, pairs: Sequence[tuple[str, str]], batch_size: int = 32) -> Tensor:
        """Scores after the model's activation, float32 on the CPU: (n,) for one label, else (n, num_labels)."""
        ...


class CrossEncoderParams(EvaluatorParams):
    """Base of a cross-encoder evaluator's entry: texts are scored in pairs, not embedded, so no truncate_dim."""

    batch_size: int = Field(32, gt=0, description="pairs per forward pass")
    truncate_dim: ClassVar[None] = None


class CrossEncoderEvaluator(Evaluator):
    """Scores pairs with a cross-encoder's `predict`; metric names as the reference's cross-encoder evaluators."""

    model_kinds = ("cross_encoder",)

    def relevance_scores(self, model: PairScorer, pairs: list[tuple[str, str]]) -> np.ndarray:
        """One float32 score per pair, from a model with a single output (a relevance or similarity score)."""
        if model.num_labels != 1:
            raise RecipeError(f"evaluator {self.params.name} ({self.params.type}) needs a cross-encoder with one "
                              f"output (num_labels: 1, a score per pair); this model has {model.num_labels} labels. "
                              f"Use cross_encoder_classification for a classifier")
        if not pairs:
            return np.empty(0, dtype=np.float32)
        # compute_in_shares: on several processes (training), each scores a share of the pairs
        return compute_in_shares(partial(model.predict, batch_size=self.params.batch_size), pairs).numpy()
