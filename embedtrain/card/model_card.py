"""The model card (README.md) written next to a trained model, following the reference's sections (§2.12 of the
reference notes): front matter the Hub reads (with a model-index of the evaluators' results), then description,
model details and architecture, usage, evaluation, training data, hyperparameters, logs, plots, time and hardware,
framework versions, citations and the recipe as the user wrote it.

What differs by kind of model (tags, pipeline tag, description, details, usage snippet) comes from dense_card,
sparse_card or cross_encoder_card; each other part has its own module. Nothing a card shows carries a path of this
machine: sources by their public names, the base model by its hub id when one is known."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from huggingface_hub import ModelCardData

from embedtrain.card.citations import citations_for
from embedtrain.card.cross_encoder_card import cross_encoder_sections
from embedtrain.card.dataset_card import DatasetSummary, dataset_section, summarize_dataset
from embedtrain.card.dense_card import dense_sections
from embedtrain.card.environment import TrainingRun, framework_versions
from embedtrain.card.evaluation_card import (
    EvaluatorSummary,
    eval_results,
    evaluation_sections,
    summarize_evaluators,
)
from embedtrain.card.plots import Plot, plots_section, write_plots
from embedtrain.card.public import base_model_id, hub_id, without_local_paths
from embedtrain.card.sections import KindSections, table
from embedtrain.card.sparse_card import sparse_sections
from embedtrain.card.training_card import hyperparameters, run_facts, training_logs
from embedtrain.data.source import public_name
from embedtrain.losses.registry import LossParams
from embedtrain.models.config import LoraConfig
from embedtrain.models.cross_encoder import CrossEncoder
from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.models.sparse_embedder import SparseEmbedder
from embedtrain.recipe.plan import DataPlan
from embedtrain.recipe.schema import Recipe
from embedtrain.recipe.training import eval_loss_metric

WIDGET_TEXTS = 4
WIDGET_CHARACTERS = 500


@dataclass(frozen=True)
class CardSubject:
    """What a card describes that is known before training: the model, the recipe, its datasets and evaluators, and
    the headline metric of each evaluation (`DataPlan.primary_metrics`)."""

    model: SentenceEmbedder | CrossEncoder
    recipe: Recipe
    datasets: list[DatasetSummary]
    evaluators: list[EvaluatorSummary]
    primary_metrics: list[str]

    @property
    def train_sets(self) -> list[DatasetSummary]:
        return [summary for summary in self.datasets if summary.split == "train"]

    @property
    def eval_losses(self) -> list[str]:
        """The metric names of the eval datasets' losses."""
        return [eval_loss_metric(summary.name) for summary in self.datasets if summary.split == "eval"]


def card_subject(model: SentenceEmbedder | CrossEncoder, recipe: Recipe, plan: DataPlan) -> CardSubject:
    """The subject of the card from the checked data plan: each dataset with the token statistics its data check
    measured (a mined dataset: those of the mined rows)."""
    reports = {report.where: report for report in plan.reports}
    datasets = []
    for split, prepared in (("train", plan.train), ("eval", plan.eval)):
        for name, dataset in prepared.items():
            where = f"datasets.{split}.{name}"
            report = reports.get(f"{where} (mined)", reports.get(where))
            source = public_name(getattr(recipe.datasets, split)[name].source)
            datasets.append(summarize_dataset(split, dataset, report, source))
    return CardSubject(model, recipe, datasets, summarize_evaluators(plan.evaluators), plan.primary_metrics())


class ModelCardWriter:
    """Writes the model card (README.md) and the training plots into a saved model's folder (the plots also into the
    run's output directory); set up before training, called at its end."""

    def __init__(self, model: SentenceEmbedder | CrossEncoder, recipe: Recipe, plan: DataPlan) -> None:
        self.subject = card_subject(model, recipe, plan)

    def __call__(self, directory: Path, metrics: dict[str, float], history: list[dict],
                 run: TrainingRun | None = None) -> None:
        subject = self.subject
        plots = write_plots(history, [summary.name for summary in subject.train_sets], subject.primary_metrics,
                            subject.eval_losses, [directory, Path(subject.recipe.training.output_dir)])
        card = render_model_card(subject, metrics, history, run, plots)
        (directory / "README.md").write_text(card, encoding="utf-8")


def kind_sections(model: SentenceEmbedder | CrossEncoder, base: str, train_sets: list[str],
                  lora: LoraConfig | None = None) -> KindSections:
    if isinstance(model, CrossEncoder):
        return cross_encoder_sections(model, base, train_sets)
    if isinstance(model, SparseEmbedder):
        return sparse_sections(model, base, train_sets)
    return dense_sections(model, base, train_sets, lora)


def loss_types(params: LossParams) -> list[str]:
    """The loss's type and those of the losses it wraps (SpladeLoss's, MatryoshkaLoss's ...), outermost first."""
    inner = [value for name in type(params).model_fields if isinstance(value := getattr(params, name), LossParams)]
    return [params.type, *(found for loss in inner for found in loss_types(loss))]


def render_model_card(subject: CardSubject, metrics: dict[str, float], history: list[dict],
                      run: TrainingRun | None = None, plots: Sequence[Plot] | None = ()) -> str:
    """The card's markdown. `metrics`: the evaluation of the saved model; `history`: the records of metrics.jsonl;
    `run`: the finished run's time, hardware, best step and emissions; `plots`: those written beside the card (None:
    matplotlib is missing, which the card says)."""
    recipe, model = subject.recipe, subject.model
    card = recipe.model.card
    base, base_hub_id = public_name(recipe.model.base), base_model_id(recipe.model.base)
    train_names = [summary.name for summary in subject.train_sets]
    kind = kind_sections(model, base, train_names, recipe.model.lora)
    title = card.model_name or kind.title
    losses = list(dict.fromkeys(loss for summary in subject.train_sets
                                for loss in loss_types(recipe.losses[summary.loss])))
    sections = [
        _front_matter(subject, kind, title, losses, base_hub_id, metrics, run),
        f"# {title}", kind.description,
        _model_details(subject, kind, base, base_hub_id),
        "### Full Model Architecture\n\n```\n" + repr(model) + "\n```",
        "## Usage\n\n### Direct Usage (Sentence Transformers)\n\n" + kind.usage,
        evaluation_sections(subject.evaluators, subject.eval_losses, metrics),
        _training_details(subject),
        hyperparameters(recipe.training),
        training_logs(history, train_names, subject.primary_metrics, run.best_step if run else None)
        if history else None,
        plots_section(plots),
        run_facts(run) if run is not None else None,
        "### Framework Versions\n\n" + "\n".join(f"- {name}: {version}"
                                                 for name, version in framework_versions().items()),
        "## Citation\n\n### BibTeX\n\n" + "\n\n".join(f"```bibtex\n{entry}\n```" for entry in citations_for(losses)),
        "## Recipe\n\nThe keys the recipe set (every other key has its default), as `embedtrain train` reads them:"
        "\n\n```yaml\n" + yaml.safe_dump(without_local_paths(recipe.model_dump(mode="json", exclude_unset=True)),
                                         sort_keys=False, allow_unicode=True) + "```",
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


def _front_matter(subject: CardSubject, kind: KindSections, title: str, losses: list[str], base_hub_id: str | None,
                  metrics: dict[str, float], run: TrainingRun | None) -> str:
    recipe = subject.recipe
    card = recipe.model.card
    sources = [getattr(recipe.datasets, summary.split)[summary.name].source for summary in subject.datasets]
    datasets = list(dict.fromkeys(found for source in sources if (found := hub_id(source))))
    results = eval_results(subject.evaluators, metrics)
    tags = [*kind.tags, "generated_from_trainer", "embedtrain",
            f"dataset_size:{sum(summary.rows for summary in subject.train_sets)}",
            *(f"loss:{loss}" for loss in losses), *card.tags]
    extra = {"widget": _widget(kind.pipeline_tag, subject.train_sets[0].texts)}
    if run is not None and run.emissions_kg is not None:
        extra["co2_eq_emissions"] = {"emissions": run.emissions_kg * 1000, "source": "codecarbon",
                                     "training_type": "fine-tuning", "hardware_used": run.hardware}
    data = ModelCardData(
        language=card.language or None, license=card.license, library_name="sentence-transformers",
        pipeline_tag=kind.pipeline_tag, tags=tags, base_model=base_hub_id, datasets=datasets or None,
        metrics=list(dict.fromkeys(result.metric_type for result in results)) or None,
        model_name=title, eval_results=results or None, **extra)
    return "---\n" + data.to_yaml() + "\n---"


def _widget(pipeline_tag: str, texts: list[str]) -> list[dict] | None:
    """The Hub's inference widget examples, from the first training rows: a sentence and the ones to compare it with
    (sentence similarity), or single texts (feature extraction); none for a cross-encoder's pairs, as the reference."""
    texts = list(dict.fromkeys(text[:WIDGET_CHARACTERS] for text in texts))
    if pipeline_tag == "sentence-similarity" and len(texts) > 1:
        return [{"source_sentence": texts[0], "sentences": texts[1:WIDGET_TEXTS]}]
    if pipeline_tag == "feature-extraction" and texts:
        return [{"text": text} for text in texts[:WIDGET_TEXTS]]
    return None


def _model_details(subject: CardSubject, kind: KindSections, base: str, base_hub_id: str | None) -> str:
    card = subject.recipe.model.card
    base_cell = f"[{base_hub_id}](https://huggingface.co/{base_hub_id})" if base_hub_id else f"`{base}`"
    rows = [["Base model", base_cell], *kind.details,
            ["Training datasets", ", ".join(f"{summary.name} (`{summary.source}`)" for summary in subject.train_sets)]]
    if card.language:
        rows.append(["Language", ", ".join(card.language)])
    if card.license:
        rows.append(["License", card.license])
    return "## Model Details\n\n### Model Description\n\n" + table(["Property", "Value"], rows)


def _training_details(subject: CardSubject) -> str:
    parts = ["## Training Details"]
    for split, heading in (("train", "Training Datasets"), ("eval", "Evaluation Datasets")):
        summaries = [summary for summary in subject.datasets if summary.split == split]
        if summaries:
            parts.append(f"### {heading}")
            parts += [dataset_section(summary, subject.recipe.losses[summary.loss]) for summary in summaries]
    return "\n\n".join(parts)

