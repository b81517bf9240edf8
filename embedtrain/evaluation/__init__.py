"""Evaluators: importing this package imports every module in it, which registers each evaluator in `EVALUATORS`.

Adding an evaluator is adding a module here (see README, "Architecture"); no list to extend.
"""

import importlib
import pkgutil

from embedtrain.evaluation.processes import embeddings_across_processes, same_on_every_process
from embedtrain.evaluation.registry import (
    EVALUATORS,
    Evaluator,
    EvaluatorParams,
    build_evaluator,
    metric_names,
    shared_embeddings,
)

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["EVALUATORS", "Evaluator", "EvaluatorParams", "build_evaluator", "embeddings_across_processes",
           "metric_names", "same_on_every_process", "shared_embeddings"]
