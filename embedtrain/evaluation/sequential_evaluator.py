"""Several evaluators run as one: their metrics together, plus `sequential_score` (the reference's composite)."""

from typing import Any, Literal

import numpy as np
from pydantic import Field, SerializeAsAny, field_validator, model_validator

from embedtrain.evaluation.registry import (
    EVALUATORS,
    Evaluator,
    EvaluatorParams,
    build_evaluator,
    metric_names,
    register_evaluator,
    shared_embeddings,
)
from embedtrain.models.embedder import SentenceEmbedder


class SequentialParams(EvaluatorParams):
    type: Literal["sequential"]
    name: str = Field("sequential", description="only for reporting: the metric names are those of the children")
    source: str | None = Field(None, description="unused: each child names its own data")
    evaluators: list[SerializeAsAny[EvaluatorParams]] = Field(
        min_length=1, description="the child evaluators, each as an entry of `evaluators:` ({type, name, source, ...})")
    main_score: Literal["last", "mean"] = Field(
        "last", description="sequential_score: the last child's primary metric (the reference's default) or the mean")

    @field_validator("evaluators", mode="before")
    @classmethod
    def _parse_children(cls, entries: Any) -> Any:
        """Each child dict becomes its own type's parameters (the registry is complete by the time a recipe loads)."""
        if not isinstance(entries, list):
            return entries
        parsed = []
        for entry in entries:
            if isinstance(entry, dict):
                kind = entry.get("type")
                if kind not in EVALUATORS:
                    raise ValueError(f"child evaluator type {kind!r} is not one of {sorted(EVALUATORS)}")
                entry = EVALUATORS[kind].params_model(**entry)
            parsed.append(entry)
        return parsed

    @model_validator(mode="after")
    def _table_options_unused(self) -> "SequentialParams":
        for key in ("source", "columns", "ignore_columns", "subset", "shuffle_seed", "max_samples", "where", "truncate_dim"):
            if getattr(self, key):
                raise ValueError(f"`{key}` belongs to the child evaluators of a sequential evaluator; move it there")
        names = [child.name for child in self.evaluators]
        if len(set(names)) != len(names):
            raise ValueError(f"child evaluator names must differ: {names}")
        return self


@register_evaluator(SequentialParams)
class SequentialEvaluator(Evaluator):
    """Runs each child in order; metric names are the children's (already prefixed) and `sequential_score`."""

    def __init__(self, params: SequentialParams, children: list[Evaluator]) -> None:
        super().__init__(params, {})
        self.children = children

    @classmethod
    def from_params(cls, params: SequentialParams, where: str) -> "SequentialEvaluator":
        return cls(params, [build_evaluator(child, f"{where}.evaluators[{index}] ({child.name})")
                            for index, child in enumerate(params.evaluators)])

    @classmethod
    def child_params(cls, params: SequentialParams) -> list[EvaluatorParams]:
        return list(params.evaluators)

    @classmethod
    def metric_names(cls, params: SequentialParams) -> list[str]:
        return [name for child in params.evaluators for name in metric_names(child)] + ["sequential_score"]

    @classmethod
    def metric_keys(cls, params: SequentialParams) -> list[str]:
        return cls.metric_names(params)

    @classmethod
    def primary_key(cls, params: SequentialParams) -> str:
        return "sequential_score"

    @property
    def primary_metric(self) -> str:
        return "sequential_score"

    def compute(self, model: SentenceEmbedder) -> dict[str, float]:
        metrics: dict[str, float] = {}
        primary = []
        with shared_embeddings():
            for child in self.children:
                values = child(model)
                metrics |= values
                primary.append(values[child.primary_metric])
        score = primary[-1] if self.params.main_score == "last" else float(np.mean(primary))
        return metrics | {"sequential_score": score}

    def __call__(self, model: SentenceEmbedder) -> dict[str, float]:
        return self.compute(model)
