"""Binary classification of sentence pairs (paraphrase / duplicate detection) by thresholding a similarity."""

from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field

from embedtrain.data.contract import ColumnContract
from embedtrain.evaluation.metrics import (
    average_precision,
    best_accuracy_and_threshold,
    best_f1_and_threshold,
    matthews_correlation,
)
from embedtrain.evaluation.registry import Evaluator, EvaluatorParams, SimilarityNames, register_evaluator
from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.similarity import PAIRWISE

METRICS = ("accuracy", "accuracy_threshold", "f1", "f1_threshold", "precision", "recall", "ap", "mcc")
DISTANCES = ("euclidean", "manhattan")
"""Functions whose thresholds the reference reports as distances (lower = more similar)."""


class BinaryClassificationParams(EvaluatorParams):
    type: Literal["binary"]
    similarity_fn_names: SimilarityNames = Field(default_factory=lambda: ["cosine"], min_length=1)


@register_evaluator(BinaryClassificationParams)
class BinaryClassificationEvaluator(Evaluator):
    """Accuracy, F1 (with precision and recall), average precision and MCC at the best thresholds, per function."""

    contract: ClassVar = ColumnContract(inputs=("sentence1", "sentence2"), label="binary")

    @classmethod
    def metric_keys(cls, params: BinaryClassificationParams) -> list[str]:
        keys = [f"{fn}_{metric}" for fn in params.similarity_fn_names for metric in METRICS]
        return keys + ([f"max_{metric}" for metric in METRICS] if len(params.similarity_fn_names) > 1 else [])

    @classmethod
    def primary_key(cls, params: BinaryClassificationParams) -> str:
        return "max_ap" if len(params.similarity_fn_names) > 1 else f"{params.similarity_fn_names[0]}_ap"

    def compute(self, model: SentenceEmbedder) -> dict[str, float]:
        first, second = self.columns["sentence1"], self.columns["sentence2"]
        # Each distinct text embedded once, as the reference does (its sparse variant's statistics count them once).
        texts = list(dict.fromkeys(first + second))
        embeddings = self.embed(model, texts, self.params.batch_size, self.params.truncate_dim)
        row = {text: index for index, text in enumerate(texts)}
        a, b = (embeddings.index_select(0, torch.tensor([row[text] for text in side], dtype=torch.long))
                for side in (first, second))
        labels = np.asarray(self.columns["label"]).astype(int)
        metrics: dict[str, float] = {}
        for fn in self.params.similarity_fn_names:
            similarity = PAIRWISE[fn](a, b).numpy()
            metrics |= {f"{fn}_{key}": value for key, value in classification_metrics(similarity, labels, fn).items()}
        if len(self.params.similarity_fn_names) > 1:
            metrics |= {f"max_{key}": max(metrics[f"{fn}_{key}"] for fn in self.params.similarity_fn_names)
                        for key in METRICS}
        return metrics


def classification_metrics(similarity: np.ndarray, labels: np.ndarray, fn: str) -> dict[str, float]:
    """The METRICS of one similarity function; thresholds of distance functions are distances, as the reference's."""
    higher_is_similar = fn not in DISTANCES
    scores = similarity if higher_is_similar else -similarity
    accuracy, accuracy_threshold = best_accuracy_and_threshold(scores, labels, higher_is_similar)
    f1, precision, recall, f1_threshold = best_f1_and_threshold(scores, labels, higher_is_similar)
    predictions = scores >= f1_threshold if higher_is_similar else scores <= f1_threshold
    return {"accuracy": accuracy, "accuracy_threshold": accuracy_threshold, "f1": f1, "f1_threshold": f1_threshold,
            "precision": precision, "recall": recall, "ap": average_precision(labels, similarity),
            "mcc": matthews_correlation(labels, predictions)}
