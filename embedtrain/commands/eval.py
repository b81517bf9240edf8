"""`embedtrain eval`: evaluate a saved model with evaluators described on the command line.

Each `--evaluator` is `TYPE` or `TYPE=SOURCE`; `--data` gives, in order, the sources of those named without one.
Shared options (`--split`, `--columns`, `--batch-size`) and evaluator options (`--set KEY=VALUE`, as for recipes)
apply to every evaluator; the result is a flat metric dict, as in training, checked against `--fail-under`.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pydantic
import torch

from embedtrain.commands.columns import parse_columns
from embedtrain.errors import RecipeError, did_you_mean
from embedtrain.evaluation import EVALUATORS, EvaluatorParams, build_evaluator, metric_names, shared_embeddings
from embedtrain.models import load_model
from embedtrain.recipe.overrides import parse_overrides, split_key_value

ALIASES = {"beir": "ir"}
"""Command-line names that stand for a registered evaluator type."""

NO_SOURCE_NEEDED = {"nanobeir"}
"""Evaluator types with a default source (the NanoBEIR hub dataset)."""

THRESHOLD_SYNTAX = "METRIC=VALUE, e.g. sts_spearman_cosine=0.8"


@dataclass(frozen=True)
class EvalRequest:
    """What the command line asked for, before anything is loaded."""

    evaluators: list[str]
    data: list[str]
    split: str | None = None
    columns: str | None = None
    batch_size: int | None = None
    options: tuple[str, ...] = ()
    fail_under: tuple[str, ...] = ()
    output: Path | None = None


@dataclass(frozen=True)
class EvalOutcome:
    """The metrics of every evaluator, and a description of each metric below its `--fail-under` minimum."""

    metrics: dict[str, float]
    failures: list[str]


def run_eval(model_path: str, request: EvalRequest) -> EvalOutcome:
    """Check every argument (evaluators, options, thresholds) before loading anything, evaluate, write `output`."""
    params = evaluator_params(request)
    thresholds = parse_thresholds(list(request.fail_under))
    check_threshold_names(thresholds, params)
    metrics = evaluate_model(model_path, params)
    if request.output is not None:
        write_metrics(request.output, model_path, metrics)
    return EvalOutcome(metrics, threshold_failures(metrics, thresholds))


def parse_thresholds(items: list[str]) -> dict[str, float]:
    """`--fail-under METRIC=VALUE` items -> {metric: minimum}."""
    thresholds = {}
    for item in items:
        metric, value = split_key_value(item, "--fail-under", THRESHOLD_SYNTAX, require_value=True)
        try:
            thresholds[metric] = float(value)
        except ValueError:
            raise RecipeError(f"--fail-under {metric}={value}: {value!r} is not a number") from None
    return thresholds


def evaluator_params(request: EvalRequest) -> list[EvaluatorParams]:
    """One validated parameter set per `--evaluator`, named after its type (`sts`, `sts-2`, ... when repeated)."""
    data = list(request.data)
    options = parse_overrides(list(request.options), "--set")
    columns = parse_columns(request.columns) if request.columns else None
    params, names = [], []
    for index, entry in enumerate(request.evaluators):
        type_name, _, source = entry.partition("=")
        type_name = ALIASES.get(type_name, type_name)
        if type_name not in EVALUATORS:
            known = sorted(EVALUATORS) + sorted(ALIASES)
            raise RecipeError(f"--evaluator {entry!r}: unknown evaluator{did_you_mean(type_name, known)}; "
                              f"choose from {', '.join(known)}")
        if not source and type_name not in NO_SOURCE_NEEDED:
            if not data:
                raise RecipeError(f"--evaluator {entry!r} needs data: give --data PATH (or --evaluator {type_name}=PATH)")
            source = data.pop(0)
        name = type_name if type_name not in names else f"{type_name}-{names.count(type_name) + 1}"
        names.append(type_name)
        fields = {"type": type_name, **options}
        fields |= {"source": source} if source else {}
        fields |= {"name": name} if type_name not in NO_SOURCE_NEEDED else {}
        fields |= {"split": request.split} if request.split else {}
        fields |= {"columns": columns} if columns else {}
        fields |= {"batch_size": request.batch_size} if request.batch_size else {}
        try:
            params.append(EVALUATORS[type_name].params_model(**fields))
        except pydantic.ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or type_name}: {e['msg']}" for e in error.errors())
            raise RecipeError(f"--evaluator {entry!r} (evaluator #{index + 1}): {problems}") from None
    if data:
        raise RecipeError(f"--data {data} is not used by any --evaluator; each evaluator takes one source")
    return params


def evaluate_model(model_path: str, params: list[EvaluatorParams]) -> dict[str, float]:
    """Load every evaluator's data (so data errors come before the model loads), then the model, then evaluate."""
    evaluators = [build_evaluator(p, f"--evaluator {p.type} ({p.name})") for p in params]
    model = load_model(model_path)
    if torch.cuda.is_available():
        model = model.to("cuda")
    metrics: dict[str, float] = {}
    with shared_embeddings():
        for evaluator in evaluators:
            metrics |= evaluator(model)
    return metrics


def check_threshold_names(thresholds: dict[str, float], params: list[EvaluatorParams]) -> None:
    """RecipeError, before anything runs, for a `--fail-under` metric that no evaluator produces."""
    produced = [name for p in params for name in metric_names(p)]
    missing = [name for name in thresholds if name not in produced]
    if missing:
        raise RecipeError(f"--fail-under names {missing}, which the evaluators do not produce"
                          f"{did_you_mean(missing[0], produced)}; they produce: {produced}")


def threshold_failures(metrics: dict[str, float], thresholds: dict[str, float]) -> list[str]:
    """Descriptions of the metrics below their minimum (NaN counts as below)."""
    return [f"{name} = {metrics[name]:.4f} < {minimum}" for name, minimum in thresholds.items()
            if math.isnan(metrics[name]) or metrics[name] < minimum]


def write_metrics(path: Path, model_path: str, metrics: dict[str, float]) -> None:
    """Write {"model": ..., "metrics": {...}} as JSON (NaN as null)."""
    clean = {name: (None if math.isnan(value) else value) for name, value in metrics.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"model": model_path, "metrics": clean}, indent=2) + "\n", encoding="utf-8")
