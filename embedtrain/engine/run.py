"""From a validated recipe to a trained model: data and contracts first, then the model, then the loop."""

import logging
from pathlib import Path

from accelerate import Accelerator
from accelerate.utils import set_seed

from embedtrain.card.model_card import DatasetSummary, render_model_card
from embedtrain.data.recipe_data import check_recipe_data
from embedtrain.engine.checkpoint import CheckpointManager
from embedtrain.engine.observer import TrainingObserver
from embedtrain.engine.trainer import Trainer, TrainingResult, build_accelerator
from embedtrain.errors import ModelLoadError, RecipeError
from embedtrain.losses import EmbeddingLoss, build_loss
from embedtrain.models.build import build_model
from embedtrain.models.tokenization import load_tokenization
from embedtrain.modules import Transformer
from embedtrain.recipe.loading import dump_recipe
from embedtrain.recipe.schema import Recipe

logger = logging.getLogger(__name__)

RESOLVED_RECIPE = "recipe.yaml"


def run_training(recipe: Recipe, *, resume: bool = False, observer: TrainingObserver | None = None) -> TrainingResult:
    output_dir = Path(recipe.training.output_dir)
    accelerator = build_accelerator(recipe.training)
    _check_output_dir(output_dir, recipe, resume, accelerator)
    # Every dataset is loaded and checked against its loss or evaluator before any model weights are loaded.
    tokenization = load_tokenization(recipe.model.base, revision=recipe.model.revision,
                                     max_seq_length=recipe.model.max_seq_length,
                                     trust_remote_code=recipe.model.trust_remote_code)
    data = check_recipe_data(recipe, tokenization)
    data.raise_on_errors()
    for report in data.reports:
        for warning in report.warnings:
            logger.warning(warning)
    train_sets, eval_sets, evaluators = data.prepared(recipe, "train"), data.prepared(recipe, "eval"), data.evaluators

    set_seed(recipe.training.seed)
    model = build_model(recipe.model)
    if not recipe.training.length_chunking and isinstance(model.input_module, Transformer):
        model.input_module.length_chunking = None
    _check_routes(model, recipe)
    losses = {name: _build_named_loss(name, params, model) for name, params in recipe.losses.items()}
    summaries = [DatasetSummary(name, recipe.datasets.train[name].source, len(d.rows), d.mapping.describe(), d.loss_name)
                 for name, d in train_sets.items()]
    primary_metrics = [evaluator.primary_metric for evaluator in evaluators] + [f"{name}_loss" for name in eval_sets]

    def write_card(directory: Path, metrics: dict[str, float], history: list[dict]) -> None:
        card = render_model_card(model, recipe, summaries, metrics, history, primary_metrics)
        (directory / "README.md").write_text(card, encoding="utf-8")

    trainer = Trainer(accelerator, recipe.training, model, losses, train_sets, eval_sets, evaluators, observer, on_final_save=write_card,
                      weights={name: config.weight for name, config in recipe.datasets.train.items()})
    return trainer.train(resume=resume)


def _build_named_loss(name: str, params, model) -> EmbeddingLoss:
    """Build one loss; its errors (a teacher or guide model that cannot be used, ...) name its recipe key."""
    try:
        return build_loss(params, model)
    except (RecipeError, ModelLoadError) as error:
        raise type(error)(f"losses.{name}: {error}") from error


def _check_routes(model, recipe: Recipe) -> None:
    """router_mapping against the built model (its architecture may come from the base model, not the recipe)."""
    router = getattr(model, "router", None)
    for split in ("train", "eval"):
        for name, dataset in getattr(recipe.datasets, split).items():
            where = f"datasets.{split}.{name}.router_mapping"
            if dataset.router_mapping is not None and router is None:
                raise RecipeError(f"{where}: the model ({recipe.model.base}) has no router; remove router_mapping")
            if router is None:
                continue
            if dataset.router_mapping is None:
                raise RecipeError(f"datasets.{split}.{name}: the model routes queries and documents through "
                                  f"different modules (routes {router.routes}); add router_mapping, e.g. "
                                  f"{{anchor: query, positive: document}}")
            unknown = sorted(set(dataset.router_mapping.values()) - set(router.routes))
            if unknown:
                raise RecipeError(f"{where}: routes {unknown} are not routes of the model ({router.routes})")


def _check_output_dir(output_dir: Path, recipe: Recipe, resume: bool, accelerator: Accelerator) -> None:
    """Refuse to mix a new run into an old one; record the resolved recipe."""
    finished = (output_dir / "final").exists()
    has_checkpoint = CheckpointManager(output_dir, None).latest() is not None
    if (finished or has_checkpoint) and not resume:
        raise RecipeError(f"training.output_dir: {output_dir} already holds a training run; pass --resume to continue "
                          f"it, or choose another output directory (--output-dir)")
    if resume and finished and not has_checkpoint:
        raise RecipeError(f"--resume: the run in {output_dir} already finished and kept no checkpoint to resume from "
                          f"(set training.save_steps to keep some); choose another output directory to train again")
    resolved = dump_recipe(recipe)
    recipe_file = output_dir / RESOLVED_RECIPE
    if resume and recipe_file.exists() and recipe_file.read_text(encoding="utf-8") != resolved:
        logger.warning("the recipe differs from %s, which the run started with; continuing with the new one", recipe_file)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        recipe_file.write_text(resolved, encoding="utf-8")
