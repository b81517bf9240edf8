"""Correlation of a cross-encoder's pair scores with gold scores (the reference's CrossEncoderCorrelationEvaluator)."""

from typing import ClassVar, Literal

import numpy as np

from embedtrain.data.contract import ColumnContract
from embedtrain.evaluation.cross_encoder.scoring import CrossEncoderEvaluator, CrossEncoderParams, PairScorer
from embedtrain.evaluation.metrics import pearson, spearman
from embedtrain.evaluation.registry import register_evaluator


class CrossEncoderCorrelationParams(CrossEncoderParams):
    type: Literal["cross_encoder_correlation"]


@register_evaluator(CrossEncoderCorrelationParams)
class CrossEncoderCorrelationEvaluator(CrossEncoderEvaluator):
    """`pearson` and `spearman` between the model's score of each (sentence1, sentence2) pair and its gold score."""

    contract: ClassVar = ColumnContract(inputs=("sentence1", "sentence2"), label="score")
    same_task_as = "sts"

    @classmethod
    def metric_keys(cls, params: CrossEncoderCorrelationParams) -> list[str]:
        return ["pearson", "spearman"]

    @classmethod
    def primary_key(cls, params: CrossEncoderCorrelationParams) -> str:
        return "spearman"

    def compute(self, model: PairScorer) -> dict[str, float]:
        scores = self.relevance_scores(model, list(zip(self.columns["sentence1"], self.columns["sentence2"])))
        gold = np.asarray(self.columns["label"], dtype=np.float64)
        return {"pearson": pearson(gold, scores), "spearman": spearman(gold, scores)}
