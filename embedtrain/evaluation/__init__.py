"""Evaluators: importing this package registers every evaluator in `EVALUATORS`."""

from embedtrain.evaluation import similarity_evaluator, triplet_evaluator  # noqa: F401
from embedtrain.evaluation.registry import EVALUATORS, Evaluator, EvaluatorParams, build_evaluator, metric_names

__all__ = ["EVALUATORS", "Evaluator", "EvaluatorParams", "build_evaluator", "metric_names"]
