"""Evaluators: importing this package registers every evaluator in `EVALUATORS`."""

from embedtrain.evaluation import (  # noqa: F401
    binary_evaluator,
    ir_evaluator,
    mse_evaluator,
    nanobeir_evaluator,
    paraphrase_mining_evaluator,
    reranking_evaluator,
    sequential_evaluator,
    similarity_evaluator,
    sparse_evaluators,
    sparse_retrieval_evaluators,
    translation_evaluator,
    triplet_evaluator,
)
from embedtrain.evaluation.registry import (
    EVALUATORS,
    Evaluator,
    EvaluatorParams,
    build_evaluator,
    metric_names,
    shared_embeddings,
)

__all__ = ["EVALUATORS", "Evaluator", "EvaluatorParams", "build_evaluator", "metric_names", "shared_embeddings"]
