"""From a validated recipe to a trained model: data and contracts first, then the model, then the loop."""

from pathlib import Path

from accelerate import Accelerator
from accelerate.utils import set_seed

from embedtrain.card.model_card import ModelCardWriter
from embedtrain.engine.observer import TrainingObserver
from embedtrain.engine.output_dir import check_output_dir, locked_output_dir, record_resolved_recipe
from embedtrain.engine.trainer import Trainer, TrainingResult, build_accelerator
from embedtrain.models.tokenization import load_tokenization
from embedtrain.recipe.build import build_losses, build_training_model
from embedtrain.recipe.plan import plan_data
from embedtrain.recipe.schema import Recipe


def run_training(recipe: Recipe, *, resume: bool = False, observer: TrainingObserver | None = None) -> TrainingResult:
    accelerator = build_accelerator(recipe.training)
    output_dir = Path(recipe.training.output_dir)
    check_output_dir(output_dir, resume)
    with locked_output_dir(output_dir, accelerator):
        trainer = prepare_trainer(recipe, accelerator, observer)
        record_resolved_recipe(output_dir, recipe, resume, accelerator)
        return trainer.train(resume=resume)


def prepare_trainer(recipe: Recipe, accelerator: Accelerator, observer: TrainingObserver | None = None) -> Trainer:
    """Every check of a run and everything it builds before training (data, model, losses), writing nothing: the
    path a real run and a dry run (`embedtrain train --dry-run`) share."""
    # Every dataset is loaded and checked against its loss or evaluator before any model weights are loaded.
    model_config = recipe.model
    tokenization = load_tokenization(model_config.base, revision=model_config.revision,
                                     max_seq_length=model_config.max_seq_length,
                                     trust_remote_code=model_config.trust_remote_code,
                                     cross_encoder=model_config.kind == "cross_encoder")
    plan = plan_data(recipe, tokenization)
    plan.raise_on_errors()
    plan.log_warnings()

    set_seed(recipe.training.seed)
    model = build_training_model(recipe, plan)
    losses = build_losses(recipe, model)
    return Trainer(
        accelerator=accelerator, config=recipe.training, model=model, losses=losses, train_sets=plan.train,
        eval_sets=plan.eval, evaluators=plan.evaluators, observer=observer,
        on_final_save=ModelCardWriter(model, recipe, plan.train, plan.primary_metrics()),
    )
