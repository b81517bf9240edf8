from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field

from embedtrain.data.contract import ColumnContract
from embedtrain.evaluation.metrics import pearson, spearman
from embedtrain.evaluation.quantization import Precision, quantized_for_scoring
from embedtrain.evaluation.registry import Evaluator, EvaluatorParams, SimilarityNames, register_evaluator
from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.similarity import PAIRWISE


class EmbeddingSimilarityParams(EvaluatorParams):
    type: Literal["sts"]
    similarity_fn_names: SimilarityNames = Field(default_factory=lambda: ["cosine"], min_length=1)
    main_similarity: Literal["cosine", "dot", "euclidean", "manhattan"] | None = Field(
        None, description="the function of the primary metric (default: max over functions, or the only one)")
    precision: Precision | None = Field(
        None, description="score normalised embeddings quantized to this precision (int8, uint8, binary, ubinary)")


@register_evaluator(EmbeddingSimilarityParams)
class EmbeddingSimilarityEvaluator(Evaluator):
    """Pearson and Spearman correlation between pair similarities and gold scores (STS)."""

    contract: ClassVar = ColumnContract(inputs=("sentence1", "sentence2"), label="score")

    @classmethod
    def metric_keys(cls, params: EmbeddingSimilarityParams) -> list[str]:
        keys = [f"{stat}_{fn}" for fn in params.similarity_fn_names for stat in ("pearson", "spearman")]
        return keys + (["pearson_max", "spearman_max"] if len(params.similarity_fn_names) > 1 else [])

    @classmethod
    def primary_key(cls, params: EmbeddingSimilarityParams) -> str:
        if params.main_similarity:
            return f"spearman_{params.main_similarity}"
        return "spearman_max" if len(params.similarity_fn_names) > 1 else f"spearman_{params.similarity_fn_names[0]}"

    def compute(self, model: SentenceEmbedder) -> dict[str, float]:
        first, second = self.columns["sentence1"], self.columns["sentence2"]
        # One pass over both sides, so a text on both sides is embedded once.
        embeddings = self.embed(model, first + second, self.params.batch_size, self.params.truncate_dim)
        if self.params.precision:
            embeddings = quantized_for_scoring(embeddings, self.params.precision)
        # index_select rather than slices: a sparse model's (COO) embeddings cannot be sliced.
        rows = torch.arange(len(first) + len(second))
        a, b = embeddings.index_select(0, rows[:len(first)]), embeddings.index_select(0, rows[len(first):])
        gold = np.asarray(self.columns["label"], dtype=np.float64)
        metrics = {}
        for fn in self.params.similarity_fn_names:
            scores = PAIRWISE[fn](a, b).numpy()
            metrics[f"pearson_{fn}"] = pearson(gold, scores)
            metrics[f"spearman_{fn}"] = spearman(gold, scores)
        if len(self.params.similarity_fn_names) > 1:
            metrics["pearson_max"] = max(metrics[f"pearson_{fn}"] for fn in self.params.similarity_fn_names)
            metrics["spearman_max"] = max(metrics[f"spearman_{fn}"] for fn in self.params.similarity_fn_names)
        return metrics
