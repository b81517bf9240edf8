"""Translation matching: is each source sentence closest (cosine) to its own translation among all targets?"""

from typing import ClassVar, Literal

import numpy as np

from embedtrain.data.contract import ColumnContract
from embedtrain.evaluation.registry import Evaluator, EvaluatorParams, register_evaluator
from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.similarity import MATRIX


class TranslationParams(EvaluatorParams):
    type: Literal["translation"]


@register_evaluator(TranslationParams)
class TranslationEvaluator(Evaluator):
    """src2trg / trg2src accuracy of nearest-neighbour matching over parallel (source, target) rows; a match to
    another row holding the same text counts as correct. Sources, then targets, are each embedded in one `embed` call."""

    contract: ClassVar = ColumnContract(inputs=("source", "target"))
    model_kinds: ClassVar[tuple[str, ...]] = ("dense",)  # its maths needs dense embeddings

    @classmethod
    def metric_keys(cls, params: TranslationParams) -> list[str]:
        return ["src2trg_accuracy", "trg2src_accuracy", "mean_accuracy"]

    @classmethod
    def primary_key(cls, params: TranslationParams) -> str:
        return "mean_accuracy"

    def compute(self, model: SentenceEmbedder) -> dict[str, float]:
        sources, targets = self.columns["source"], self.columns["target"]
        batch_size, truncate_dim = self.params.batch_size, self.params.truncate_dim
        source_embeddings = self.embed(model, sources, batch_size, truncate_dim)
        target_embeddings = self.embed(model, targets, batch_size, truncate_dim)
        similarity = MATRIX["cosine"](source_embeddings, target_embeddings).numpy()
        src2trg = nearest_is_own(similarity, targets)
        trg2src = nearest_is_own(similarity.T, sources)
        return {"src2trg_accuracy": src2trg, "trg2src_accuracy": trg2src, "mean_accuracy": (src2trg + trg2src) / 2}


def nearest_is_own(similarity: np.ndarray, candidates: list[str]) -> float:
    """Share of rows i whose most similar column (the first of equal maxima) holds the same text as column i."""
    nearest = np.argmax(similarity, axis=1)
    return float(np.mean([candidates[i] == candidates[j] for i, j in enumerate(nearest)]))
