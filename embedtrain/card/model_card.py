"""The model card (README.md) written next to a trained model, following the reference's sections.

What differs by kind of model (tags, pipeline tag, description, details, usage snippet) comes from
`embedder_sections` or, for a cross-encoder, `cross_encoder_card.cross_encoder_sections`; the rest (evaluation,
training details and logs, versions, recipe) is shared."""

import json
from pathlib import Path

import yaml

from embedtrain.card.cross_encoder_card import cross_encoder_sections
from embedtrain.card.environment import TrainingRun, framework_versions
from embedtrain.card.sections import DatasetSummary, KindSections, table
from embedtrain.data.mirror import hub_id_of
from embedtrain.data.source import is_local, public_name
from embedtrain.data.training_data import PreparedDataset
from embedtrain.models.cross_encoder import CrossEncoder
from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.recipe.schema import Recipe


class ModelCardWriter:
    """Writes the model card (README.md) into a saved model's folder; set up before training, called at its end."""

    def __init__(self, model: SentenceEmbedder | CrossEncoder, recipe: Recipe, train_sets: dict[str, PreparedDataset],
                 primary_metrics: list[str]) -> None:
        self.model, self.recipe, self.primary_metrics = model, recipe, primary_metrics
        self.summaries = [DatasetSummary(name, public_name(recipe.datasets.train[name].source), len(dataset.rows),
                                         dataset.mapping.describe(), dataset.loss_name)
                          for name, dataset in train_sets.items()]

    def __call__(self, directory: Path, metrics: dict[str, float], history: list[dict],
                 run: TrainingRun | None = None) -> None:
        # `run` (time, hardware, best step, emissions): the card shows it on the cards branch.
        card = render_model_card(self.model, self.recipe, self.summaries, metrics, history, self.primary_metrics)
        (directory / "README.md").write_text(card, encoding="utf-8")


def embedder_sections(model: SentenceEmbedder, base: str, train_sets: list[DatasetSummary]) -> KindSections:
    return KindSections(
        tags=["sentence-transformers", "sentence-similarity", "feature-extraction", "dense"],
        pipeline_tag="sentence-similarity",
        title=f"Sentence embedding model fine-tuned from {Path(base).name}",
        description=f"A dense sentence-embedding model fine-tuned from `{base}` with "
                    f"[embedtrain](https://pypi.org/project/embedtrain/) on {', '.join(s.name for s in train_sets)}. "
                    f"It maps text to a {model.embedding_dimension}-dimensional vector for semantic similarity, "
                    f"search, clustering and classification.",
        details=[["Maximum sequence length", f"{model.max_seq_length} tokens"],
                 ["Output dimensionality", str(model.embedding_dimension)],
                 ["Similarity function", model.similarity_fn_name]],
        usage="```python\nfrom sentence_transformers import SentenceTransformer\n\n"
              "model = SentenceTransformer(\"path/to/this/model\")\n"
              "embeddings = model.encode([\"The weather is lovely today.\", \"It's so sunny outside!\"])\n"
              "similarities = model.similarity(embeddings, embeddings)\n```",
    )


def render_model_card(model: SentenceEmbedder | CrossEncoder, recipe: Recipe, train_sets: list[DatasetSummary],
                      metrics: dict[str, float], history: list[dict], primary_metrics: list[str]) -> str:
    card = recipe.model.card
    base = public_name(recipe.model.base)
    kind = (cross_encoder_sections if isinstance(model, CrossEncoder) else embedder_sections)(model, base, train_sets)
    losses = sorted({recipe.losses[summary.loss].type for summary in train_sets})
    tags = kind.tags + ["generated_from_trainer", "embedtrain",
                        f"dataset_size:{sum(summary.rows for summary in train_sets)}"]
    tags += [f"loss:{loss}" for loss in losses] + list(card.tags)
    front_matter = {
        "language": card.language or None,
        "license": card.license,
        "library_name": "sentence-transformers",
        "pipeline_tag": kind.pipeline_tag,
        "tags": tags,
        "base_model": _hub_id(recipe.model.base),
        "datasets": [hub_id for summary in train_sets
                     if (hub_id := _hub_id(recipe.datasets.train[summary.name].source))] or None,
        "metrics": sorted(metrics) or None,
    }
    front_matter = {key: value for key, value in front_matter.items() if value is not None}
    sections = [
        "---\n" + yaml.safe_dump(front_matter, sort_keys=False, allow_unicode=True) + "---",
        f"# {card.model_name or kind.title}",
        kind.description,
        "## Model Details\n\n" + table(["Property", "Value"], [
            ["Base model", f"`{base}`"], *kind.details,
            ["Training datasets", ", ".join(s.name for s in train_sets)],
        ]),
        "### Full Model Architecture\n\n```\n" + repr(model) + "\n```",
        "## Usage\n\n" + kind.usage,
    ]
    if metrics:
        rows = [[f"**{name}**" if name in primary_metrics else name, f"{value:.4f}"] for name, value in metrics.items()]
        sections.append("## Evaluation\n\n" + table(["Metric", "Value"], rows))
    sections.append(_training_details(recipe, train_sets))
    if history:
        sections.append(_training_logs(history, primary_metrics))
    sections.append("### Framework Versions\n\n" + "\n".join(f"- {name}: {version}"
                                                             for name, version in framework_versions().items()))
    sections.append("### Recipe\n\n```yaml\n" + yaml.safe_dump(_without_local_paths(recipe.model_dump(mode="json")),
                                                              sort_keys=False) + "```")
    return "\n\n".join(sections) + "\n"


def _hub_id(source: str) -> str | None:
    """The hub id of a model or dataset source: itself, or the hub id whose local copy (through the mirror) it is."""
    return source if not is_local(source) else hub_id_of(Path(source))


def _without_local_paths(value):
    """The recipe as a card may show it: every absolute path (a model, data, a teacher...) by its public name."""
    if isinstance(value, dict):
        return {key: _without_local_paths(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_local_paths(item) for item in value]
    if isinstance(value, str) and value.startswith(("/", "~")):
        return public_name(value)
    return value


def _training_details(recipe: Recipe, train_sets: list[DatasetSummary]) -> str:
    parts = ["## Training Details", "### Training Datasets"]
    for summary in train_sets:
        loss = recipe.losses[summary.loss]
        parts.append(f"#### {summary.name}\n\n- Source: `{summary.source}`\n- Size: {summary.rows} rows\n"
                     f"- Columns: {summary.columns}\n- Loss: `{loss.type}` with parameters:\n\n```json\n"
                     f"{json.dumps(loss.model_dump(exclude={'type'}), indent=2)}\n```")
    training = recipe.training.model_dump(mode="json", exclude={"output_dir"})
    parts.append("### Training Hyperparameters\n\n" + "\n".join(f"- `{key}`: {value}" for key, value in training.items()))
    return "\n\n".join(parts)


def _training_logs(history: list[dict], primary_metrics: list[str]) -> str:
    columns = ["step", "epoch", "loss"] + primary_metrics
    rows: dict[int, dict] = {}
    for record in history:
        rows.setdefault(record["step"], {}).update(record)
    body = [[_format(row.get(column)) for column in columns] for _, row in sorted(rows.items())]
    return "### Training Logs\n\n" + table([c.replace("_", " ") if c in ("step", "epoch", "loss") else c for c in columns], body)


def _format(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)
