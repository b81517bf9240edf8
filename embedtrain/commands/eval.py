"""`embedtrain eval`: evaluate a saved model with evaluators described on the command line.

Each `--evaluator` is `TYPE` or `TYPE=SOURCE`; `--data` gives, in order, the sources of those named without one.
Shared options (`--split`, `--columns`, `--batch-size`) and evaluator options (`--set KEY=VALUE`, as for recipes)
apply to every evaluator; the result is a flat metric dict, as in training, checked against `--fail-under`.

The model's kind (dense, sparse or cross_encoder) comes from the model and the evaluators (`choose_kind`): a saved
model keeps its own, a plain masked-LM checkpoint given sparse evaluators becomes SPLADE (as the reference's
SparseEncoder builds it), a plain sequence classifier given cross-encoder evaluators a cross-encoder, anything else
loads dense; `--kind` overrides the choice. Evaluators that cannot score that kind (each declares the kinds it
scores, `Evaluator.model_kinds`) are an error that names the evaluators that can.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pydantic
import torch

from embedtrain.commands.columns import parse_columns
from embedtrain.errors import RecipeError, did_you_mean
from embedtrain.evaluation import EVALUATORS, EvaluatorParams, build_evaluator, metric_names, shared_embeddings
from embedtrain.evaluation.registry import evaluator_for
from embedtrain.models import load_model
from embedtrain.models.build_sparse import build_sparse_model, is_masked_lm
from embedtrain.models.config import ModelConfig
from embedtrain.models.cross_encoder_io import load_cross_encoder
from embedtrain.models.form import ModelForm, model_form
from embedtrain.recipe.overrides import parse_overrides, split_key_value

ALIASES = {"beir": "ir"}
"""Command-line names that stand for a registered evaluator type."""

THRESHOLD_SYNTAX = "METRIC=VALUE, e.g. sts_spearman_cosine=0.8"

Kind = Literal["dense", "sparse", "cross_encoder"]

SPARSE_PREFIX = "sparse_"
"""The sparse evaluators' names (`sparse_sts`, `sparse_ir`, ...): the sparse namesake of a dense evaluator."""


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
    kind: Kind | None = None
    """`--kind`: build the model as this kind rather than the one chosen from the model and the evaluators."""


@dataclass(frozen=True)
class EvalOutcome:
    """The metrics of every evaluator, and a description of each metric below its `--fail-under` minimum."""

    metrics: dict[str, float]
    failures: list[str]


def run_eval(model_path: str, request: EvalRequest) -> EvalOutcome:
    """Check every argument (evaluators, options, thresholds) before loading anything, evaluate, write `output`."""
    params = evaluator_params(request)
    thresholds = parse_thresholds(list(request.fail_under))
    check_threshold_names(thresholds, [name for p in params for name in metric_names(p)])
    evaluators_kind(params)
    metrics = evaluate_model(model_path, params, request.kind)
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
        fields_of = EVALUATORS[type_name].params_model.model_fields
        # An evaluator with a default source (NanoBEIR's hub dataset) needs none, and names its own metrics.
        if not source and fields_of["source"].is_required():
            if not data:
                raise RecipeError(f"--evaluator {entry!r} needs data: give --data PATH (or --evaluator {type_name}=PATH)")
            source = data.pop(0)
        name = type_name if type_name not in names else f"{type_name}-{names.count(type_name) + 1}"
        names.append(type_name)
        fields = {"type": type_name, **options}
        fields |= {"source": source} if source else {}
        fields |= {"name": name} if fields_of["name"].is_required() else {}
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


def evaluate_model(model_path: str, params: list[EvaluatorParams], kind: Kind | None = None) -> dict[str, float]:
    """Choose the model's kind (`choose_kind`, from its config files: a mismatch is reported before anything is
    read), load every evaluator's data (so data errors come before the model loads), then the model, then
    evaluate."""
    form = model_form(model_path)
    chosen = choose_kind(model_path, form, params, kind)
    evaluators = [build_evaluator(p, f"--evaluator {p.type} ({p.name})") for p in params]
    model = load_eval_model(form, chosen)
    if torch.cuda.is_available():
        model = model.to("cuda")
    metrics: dict[str, float] = {}
    with shared_embeddings():
        for evaluator in evaluators:
            metrics |= evaluator(model)
    return metrics


def leaf_params(params: list[EvaluatorParams]) -> list[EvaluatorParams]:
    """The evaluators that embed texts: a sequential evaluator's children in its place."""
    return [leaf for p in params for leaf in (leaf_params(p.evaluators) if p.type == "sequential" else [p])]


def _types(params: list[EvaluatorParams]) -> str:
    return ", ".join(dict.fromkeys(p.type for p in params))


def kinds_of(params: EvaluatorParams) -> tuple[str, ...]:
    """The kinds of model an evaluator scores (its class's `model_kinds`)."""
    return EVALUATORS[params.type].evaluator_class.model_kinds


def evaluators_kind(params: list[EvaluatorParams]) -> Kind:
    """The kind of model the evaluators are for; RecipeError when they need different kinds (cross-encoder and
    embedding evaluators, or sparse-only and dense ones)."""
    leaves = leaf_params(params)
    scoring = [p for p in leaves if "cross_encoder" in kinds_of(p)]
    embedding = [p for p in leaves if "cross_encoder" not in kinds_of(p)]
    if scoring and embedding:
        raise RecipeError(f"--evaluator: cross-encoder evaluators ({_types(scoring)}) and embedding-model ones "
                          f"({_types(embedding)}) in one call; one call evaluates one kind of model: evaluate them in "
                          f"separate calls")
    if scoring:
        return "cross_encoder"
    sparse = [p for p in leaves if "dense" not in kinds_of(p)]
    dense = [p for p in leaves if "dense" in kinds_of(p)]
    if sparse and dense:
        fixes = [f"{SPARSE_PREFIX}{p.type} for {p.type}" for p in dense if f"{SPARSE_PREFIX}{p.type}" in EVALUATORS]
        apart = [p.type for p in dense if f"{SPARSE_PREFIX}{p.type}" not in EVALUATORS]
        advice = ([f"use {', '.join(dict.fromkeys(fixes))}"] if fixes else []) + \
                 ([f"evaluate {', '.join(dict.fromkeys(apart))} in another call"] if apart else [])
        raise RecipeError(f"--evaluator: sparse evaluators ({_types(sparse)}) and dense ones ({_types(dense)}) in one "
                          f"call; one call evaluates one kind of model: {' and '.join(advice)}")
    return "sparse" if sparse else "dense"


def fitting_evaluators(kind: Kind, leaves: list[EvaluatorParams]) -> str:
    """The evaluators that do the task of `leaves` for a `kind` model (`evaluator_for`), else every evaluator of
    that kind: the advice when evaluators meet a model they cannot score."""
    pairs = [f"{fit} for {p.type}" for p in leaves if (fit := evaluator_for(p.type, kind))]
    if pairs:
        return ", ".join(dict.fromkeys(pairs))
    every = [name for name, spec in EVALUATORS.items() if kind in spec.evaluator_class.model_kinds
             and name != "sequential"]
    return ", ".join(every) or "none is installed"


def choose_kind(model_path: str, form: ModelForm, params: list[EvaluatorParams], kind: Kind | None) -> Kind:
    """The kind to build the model as: `--kind`; else a saved model's own; else sparse for a masked-LM checkpoint
    given sparse evaluators, cross_encoder for a sequence classifier given cross-encoder evaluators; else dense.
    RecipeError when the evaluators cannot score that kind, naming the fix."""
    wanted = evaluators_kind(params)
    leaves = leaf_params(params)
    if form.saved_kind == "cross_encoder" and kind not in (None, "cross_encoder"):
        raise RecipeError(f"--kind {kind}: {model_path} is a saved cross-encoder, which keeps its kind; remove --kind")
    if kind == "cross_encoder" and form.saved_kind is not None and form.saved_kind != "cross_encoder":
        raise RecipeError(f"--kind cross_encoder: {model_path} is a saved {form.saved_kind} model, which keeps its kind "
                          f"(a cross-encoder is trained from its encoder: model.kind: cross_encoder in a recipe); "
                          f"remove --kind")
    if wanted == "cross_encoder" or (kind or form.saved_kind) == "cross_encoder":
        return _cross_encoder_choice(model_path, form, leaves, kind, wanted)
    masked_lm = form.saved_kind is None and wanted == "sparse" and is_masked_lm(form.path, False)
    if kind == "dense" and form.saved_kind == "sparse":
        raise RecipeError(f"--kind dense: {model_path} is a saved sparse model (SparseEncoder), which keeps its kind; "
                          f"remove --kind")
    chosen = kind or form.saved_kind or ("sparse" if masked_lm else "dense")
    if chosen == "dense" and wanted == "sparse":
        sparse = [p.type for p in leaves]
        namesakes = ", ".join(dict.fromkeys(f"{t.removeprefix(SPARSE_PREFIX)} for {t}" for t in sparse))
        what = ("--kind dense builds it as a dense model" if kind else
                "it is a saved dense model" if form.saved_kind else
                "it is a plain checkpoint that is not a masked-LM one (*ForMaskedLM), so it loads with mean pooling")
        instead = ("remove --kind dense (a masked-LM checkpoint given sparse evaluators is built as SPLADE)"
                   if masked_lm else "--kind sparse (which adds an untrained sparse autoencoder, CSR)")
        raise RecipeError(f"--evaluator {_types(leaves)}: sparse evaluators, and {model_path} is dense ({what}); "
                          f"use the dense evaluators ({namesakes}), or {instead}")
    dense_only = [p for p in leaves if "sparse" not in kinds_of(p)]
    if chosen == "sparse" and dense_only:
        what = "--kind sparse builds it as a sparse model" if kind else "it is a saved sparse model"
        raise RecipeError(f"--evaluator {_types(dense_only)}: needs dense embeddings, and {model_path} is sparse "
                          f"({what}); use {fitting_evaluators('sparse', dense_only)}, or evaluate a dense model"
                          + (", or remove --kind sparse" if kind else ""))
    return chosen


def _cross_encoder_choice(model_path: str, form: ModelForm, leaves: list[EvaluatorParams], kind: Kind | None,
                          wanted: Kind) -> Kind:
    """choose_kind when a cross-encoder is asked for, by the evaluators, the model or --kind."""
    if wanted != "cross_encoder":  # embedding evaluators on a cross-encoder
        what = "--kind cross_encoder builds it as one" if kind else "it is a saved cross-encoder"
        raise RecipeError(f"--evaluator {_types(leaves)}: evaluates embeddings, and {model_path} is a cross-encoder "
                          f"({what}), which scores text pairs and embeds no text; use the cross-encoder evaluators "
                          f"({fitting_evaluators('cross_encoder', leaves)})" + (" or remove --kind" if kind else ""))
    chosen = kind or form.saved_kind or ("cross_encoder" if form.classifier else None)
    if chosen == "cross_encoder":
        return chosen
    if chosen is None:
        raise RecipeError(f"--evaluator {_types(leaves)}: cross-encoder evaluators, and {model_path} is a plain "
                          f"checkpoint without a trained classification head; evaluate a trained cross-encoder, or pass "
                          f"--kind cross_encoder to score with a new, untrained head")
    what = f"--kind {kind} builds it as one" if kind else f"it is a saved {chosen} model"
    raise RecipeError(f"--evaluator {_types(leaves)}: cross-encoder evaluators, and {model_path} is a {chosen} "
                      f"embedding model ({what}); use the embedding evaluators "
                      f"({fitting_evaluators(chosen, leaves)})" + (" or remove --kind" if kind else ""))


def load_eval_model(form: ModelForm, chosen: Kind):
    """The model to evaluate, of the kind `choose_kind` picked: a saved model as saved, a plain checkpoint with mean
    pooling when dense, a new sparse model (SPLADE for a masked-LM checkpoint, build_sparse) when sparse, and a
    cross-encoder (its trained head, or a new one) when cross_encoder."""
    if chosen == "cross_encoder":
        return load_cross_encoder(form.path)
    if chosen == "sparse" and form.saved_kind != "sparse":
        return build_sparse_model(ModelConfig(base=str(form.path), kind="sparse"))
    return load_model(form.path)


def check_threshold_names(thresholds: dict[str, float], produced: list[str]) -> None:
    """RecipeError, before anything runs, for a `--fail-under` metric that the evaluation (`produced`) lacks (also
    `embedtrain train --fail-under`'s check)."""
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
