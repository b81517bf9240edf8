"""From a validated recipe to a trained model: data and contracts first, then the model, then the loop."""

import logging
from pathlib import Path

from accelerate import Accelerator
from accelerate.utils import broadcast_object_list, set_seed

from embedtrain.card.model_card import ModelCardWriter
from embedtrain.engine.checkpoint import CheckpointManager
from embedtrain.engine.lock import OutputDirLock
from embedtrain.engine.observer import TrainingObserver
from embedtrain.engine.trainer import Trainer, TrainingResult, build_accelerator
from embedtrain.errors import RecipeError
from embedtrain.models.tokenization import load_tokenization
from embedtrain.recipe.build import build_losses, build_training_model
from embedtrain.recipe.loading import dump_recipe
from embedtrain.recipe.plan import plan_data
from embedtrain.recipe.schema import Recipe

logger = logging.getLogger(__name__)

RESOLVED_RECIPE = "recipe.yaml"


def run_training(recipe: Recipe, *, resume: bool = False, observer: TrainingObserver | None = None) -> TrainingResult:
    accelerator = build_accelerator(recipe.training)
    output_dir = Path(recipe.training.output_dir)
    lock = _lock_output_dir(output_dir, accelerator)
    try:
        _prepare_output_dir(output_dir, recipe, resume, accelerator)
        return _train(recipe, accelerator, resume, observer)
    finally:
        lock.release()


def _lock_output_dir(output_dir: Path, accelerator: Accelerator) -> OutputDirLock:
    """The main process locks the output directory before anything is written there; every process learns whether
    it could (so that all stop together rather than wait for a process that stopped)."""
    lock = OutputDirLock(output_dir)
    refusal = [None]
    if accelerator.is_main_process:
        try:
            lock.acquire()
        except RecipeError as error:
            refusal = [str(error)]
    if accelerator.num_processes > 1:
        broadcast_object_list(refusal)
    if refusal[0] is not None:
        raise RecipeError(refusal[0])
    return lock


def _train(recipe: Recipe, accelerator: Accelerator, resume: bool, observer: TrainingObserver | None) -> TrainingResult:
    # Every dataset is loaded and checked against its loss or evaluator before any model weights are loaded.
    model_config = recipe.model
    tokenization = load_tokenization(model_config.base, revision=model_config.revision,
                                     max_seq_length=model_config.max_seq_length,
                                     trust_remote_code=model_config.trust_remote_code)
    plan = plan_data(recipe, tokenization)
    plan.raise_on_errors()
    plan.log_warnings()

    set_seed(recipe.training.seed)
    model = build_training_model(recipe, plan)
    trainer = Trainer(
        accelerator=accelerator, config=recipe.training, model=model, losses=build_losses(recipe, model),
        train_sets=plan.train, eval_sets=plan.eval, evaluators=plan.evaluators, observer=observer,
        on_final_save=ModelCardWriter(model, recipe, plan.train, plan.primary_metrics()),
    )
    return trainer.train(resume=resume)


def _prepare_output_dir(output_dir: Path, recipe: Recipe, resume: bool, accelerator: Accelerator) -> None:
    """Refuse to mix a new run into an old one; record the resolved recipe."""
    if output_dir.exists() and not output_dir.is_dir():
        raise RecipeError(f"training.output_dir: {output_dir} is a file, not a directory; choose another output "
                          f"directory (--output-dir) or move the file away")
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
        _write_into_output_dir(recipe_file, resolved)


def _write_into_output_dir(recipe_file: Path, resolved: str) -> None:
    """Create the output directory and write the resolved recipe: the first writes of a run, so where a directory
    cannot be created or written (permissions, a file in its path) is said here, before any data or model loads."""
    try:
        recipe_file.parent.mkdir(parents=True, exist_ok=True)
        recipe_file.write_text(resolved, encoding="utf-8")
    except OSError as error:
        where = error.filename or recipe_file.parent
        raise RecipeError(f"training.output_dir: cannot write {where} ({error.strerror or error}); choose a directory "
                          f"you can write to (--output-dir)") from error
