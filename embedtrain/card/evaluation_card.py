"""The evaluators' results as the model card shows them: one section per evaluator with its table (the primary metric
bold), and the same results as huggingface_hub `EvalResult`s, from which the front matter's `model-index` is built
(the Hub's evaluation widget reads it)."""

import json
from dataclasses import dataclass

from huggingface_hub import EvalResult

from embedtrain.card.public import without_local_paths
from embedtrain.card.sections import table
from embedtrain.data.source import public_name
from embedtrain.evaluation import Evaluator

TASKS = {
    "sts": "Semantic Similarity", "sparse_sts": "Semantic Similarity", "cross_encoder_correlation": "Semantic Similarity",
    "ir": "Information Retrieval", "sparse_ir": "Sparse Information Retrieval",
    "nanobeir": "Nano BEIR", "sparse_nanobeir": "Sparse Nano BEIR", "cross_encoder_nanobeir": "Cross Encoder Nano BEIR",
    "binary": "Binary Classification", "sparse_binary": "Sparse Binary Classification",
    "cross_encoder_classification": "Cross Encoder Classification",
    "triplet": "Triplet", "sparse_triplet": "Sparse Triplet",
    "reranking": "Reranking", "sparse_reranking": "Sparse Reranking", "cross_encoder_reranking": "Cross Encoder Reranking",
    "paraphrase_mining": "Paraphrase Mining", "mse": "Knowledge Distillation", "translation": "Translation",
    "sequential": "Sequential",
}
"""Evaluator type -> the task it measures, as the reference's evaluators describe theirs (the section title and the
model-index task); a type not listed is titled after its name."""

TABLE_OPTIONS = {"type", "name", "source", "subset", "split", "revision", "columns", "ignore_columns", "evaluators"}
"""Keys of an evaluator's entry that the section states otherwise (or that are its children), not as parameters."""


@dataclass(frozen=True)
class EvaluatorSummary:
    name: str
    type: str
    source: str | None  # public name of its data (None: its children name theirs)
    split: str
    metrics: list[str]  # full metric names ({name}_{key})
    primary: str
    parameters: dict  # the options the recipe set, beside the data source


def summarize_evaluators(evaluators: list[Evaluator]) -> list[EvaluatorSummary]:
    """One summary per evaluator, a sequential evaluator's children first (each gets its own section) and then the
    sequential evaluator with the metrics that are its own (its composite score)."""
    summaries: list[EvaluatorSummary] = []
    for evaluator in evaluators:
        summaries += summarize_evaluators(getattr(evaluator, "children", []))
        params = evaluator.params
        claimed = {metric for summary in summaries for metric in summary.metrics}
        own = [metric for metric in type(evaluator).metric_names(params) if metric not in claimed]
        summaries.append(EvaluatorSummary(
            name=params.name, type=params.type, source=public_name(params.source) if params.source else None,
            split=params.split, metrics=own, primary=evaluator.primary_metric,
            parameters=without_local_paths({key: value for key, value in params.model_dump(
                mode="json", exclude_unset=True).items() if key not in TABLE_OPTIONS})))
    return summaries


def task_of(summary: EvaluatorSummary) -> str:
    return TASKS.get(summary.type, summary.type.replace("_", " ").title())


def metric_key(summary: EvaluatorSummary, metric: str) -> str:
    """A metric's name without its evaluator's prefix: `sts-dev_spearman_cosine` -> `spearman_cosine`."""
    return metric.removeprefix(f"{summary.name}_")


def evaluation_sections(summaries: list[EvaluatorSummary], eval_losses: list[str], metrics: dict[str, float]
                        ) -> str | None:
    """'## Evaluation' with a section per evaluator that has results in `metrics`, and a table of the eval datasets'
    losses (`eval_losses`: their metric names); None when there is nothing to show."""
    sections = []
    for summary in summaries:
        values = {metric: metrics[metric] for metric in summary.metrics if metric in metrics}
        if not values:
            continue
        rows = [[f"**{metric_key(summary, metric)}**", f"**{value:.4f}**"] if metric == summary.primary else
                [metric_key(summary, metric), f"{value:.4f}"] for metric, value in values.items()]
        bullets = [f"- Dataset: `{summary.source}` (split `{summary.split}`)"] if summary.source else []
        bullets.append(f"- Evaluated with the `{summary.type}` evaluator" + (
            f" with these parameters:\n\n```json\n{json.dumps(summary.parameters, indent=2)}\n```"
            if summary.parameters else ""))
        sections.append(f"#### {task_of(summary)}: {summary.name}\n\n" + "\n".join(bullets) + "\n\n"
                        + table(["Metric", "Value"], rows))
    losses = [[metric, f"{metrics[metric]:.4f}"] for metric in eval_losses if metric in metrics]
    if losses:
        sections.append("#### Evaluation losses\n\nThe loss of each evaluation dataset, as training computes it.\n\n"
                        + table(["Metric", "Value"], losses))
    return "## Evaluation\n\n### Metrics\n\n" + "\n\n".join(sections) if sections else None


def eval_results(summaries: list[EvaluatorSummary], metrics: dict[str, float]) -> list[EvalResult]:
    """Every evaluator's results in `metrics` as the Hub's model-index entries: the task, the dataset (its public
    name, or the evaluator's name for one without its own data) and split, each metric by its key."""
    results = []
    for summary in summaries:
        task = task_of(summary)
        for metric in summary.metrics:
            if metric not in metrics:
                continue
            key = metric_key(summary, metric)
            results.append(EvalResult(
                task_type=task.lower().replace(" ", "-"), task_name=task,
                dataset_type=summary.source or summary.name, dataset_name=summary.name,
                dataset_split=summary.split if summary.source else None,
                metric_type=key, metric_name=key.replace("_", " ").title(), metric_value=float(metrics[metric])))
    return results
