"""Classification of pairs by a cross-encoder (the reference's CrossEncoderClassificationEvaluator).

With one output (num_labels 1) the score is thresholded for 0/1 labels: the best accuracy and F1 over every
threshold, with those thresholds, and the average precision. With n outputs the predicted class is the highest
output, and F1 is averaged over classes (macro, micro, weighted).
"""

from functools import partial
from typing import Literal

import numpy as np
from pydantic import Field

from embedtrain.data.contract import ColumnContract
from embedtrain.errors import RecipeError
from embedtrain.evaluation.cross_encoder.scoring import CrossEncoderEvaluator, CrossEncoderParams, PairScorer
from embedtrain.evaluation.metrics import (
    average_precision,
    best_accuracy_and_threshold,
    best_f1_and_threshold,
    f1_averages,
)
from embedtrain.evaluation.processes import compute_in_shares
from embedtrain.evaluation.registry import register_evaluator

BINARY_KEYS = ("accuracy", "accuracy_threshold", "f1", "f1_threshold", "precision", "recall", "average_precision")
MULTICLASS_KEYS = ("f1_macro", "f1_micro", "f1_weighted")


class CrossEncoderClassificationParams(CrossEncoderParams):
    type: Literal["cross_encoder_classification"]
    num_labels: int = Field(
        1, ge=1, description="the model's number of outputs: 1 = binary (0/1 labels; accuracy, f1, precision, "
        "recall, average_precision and the thresholds), n > 1 = n classes (labels 0..n-1; f1_macro, f1_micro, "
        "f1_weighted). Stated here so that the metric names are known before the model loads")


@register_evaluator(CrossEncoderClassificationParams)
class CrossEncoderClassificationEvaluator(CrossEncoderEvaluator):
    """Binary or multi-class metrics of the model's predictions for (sentence1, sentence2) pairs."""

    same_task_as = "binary"

    @classmethod
    def contract_for(cls, params: CrossEncoderClassificationParams) -> ColumnContract:
        if params.num_labels == 1:
            return ColumnContract(inputs=("sentence1", "sentence2"), label="binary")
        return ColumnContract(inputs=("sentence1", "sentence2"), label="class", num_classes=params.num_labels)

    @classmethod
    def metric_keys(cls, params: CrossEncoderClassificationParams) -> list[str]:
        return list(BINARY_KEYS if params.num_labels == 1 else MULTICLASS_KEYS)

    @classmethod
    def primary_key(cls, params: CrossEncoderClassificationParams) -> str:
        return "average_precision" if params.num_labels == 1 else "f1_macro"

    def compute(self, model: PairScorer) -> dict[str, float]:
        params = self.params
        if model.num_labels != params.num_labels:
            raise RecipeError(f"evaluator {params.name} (cross_encoder_classification): num_labels is "
                              f"{params.num_labels}, but the model has {model.num_labels} outputs; set "
                              f"num_labels: {model.num_labels} on the evaluator (its labels must then be "
                              f"{'0 or 1' if model.num_labels == 1 else f'0..{model.num_labels - 1}'})")
        pairs = list(zip(self.columns["sentence1"], self.columns["sentence2"]))
        predictions = compute_in_shares(partial(model.predict, batch_size=params.batch_size), pairs).numpy()
        labels = np.asarray(self.columns["label"]).astype(int)
        if params.num_labels > 1:
            return f1_averages(labels, np.argmax(predictions, axis=1))
        accuracy, accuracy_threshold = best_accuracy_and_threshold(predictions, labels)
        f1, precision, recall, f1_threshold = best_f1_and_threshold(predictions, labels)
        return {"accuracy": accuracy, "accuracy_threshold": accuracy_threshold, "f1": f1, "f1_threshold": f1_threshold,
                "precision": precision, "recall": recall, "average_precision": average_precision(labels, predictions)}
