"""From a validated recipe to a trained model: data and contracts first, then mining (when a dataset asks for it),
then the model, then the loop."""

from collections.abc import Callable
from pathlib import Path

from accelerate import Accelerator
from accelerate.utils import set_seed
from datasets import Dataset

from embedtrain.card.environment import TrainingRun
from embedtrain.card.model_card import ModelCardWriter
from embedtrain.data.checks import Tokenization
from embedtrain.engine.hub_push import with_hub_push
from embedtrain.engine.manifest import RunRecord
from embedtrain.engine.mined_data import mine_or_reuse, mining_caches
from embedtrain.engine.observer import TrainingObserver
from embedtrain.engine.output_dir import check_output_dir, locked_output_dir, record_resolved_recipe
from embedtrain.engine.preemption import RunInterrupted
from embedtrain.engine.trackers import check_trackers, finish_trackers, start_trackers
from embedtrain.engine.trainer import Trainer, TrainingResult, build_accelerator
from embedtrain.models.adapters import merge_saved_adapter
from embedtrain.models.tokenization import recipe_tokenization
from embedtrain.recipe.build import build_losses, build_training_model
from embedtrain.recipe.plan import DataPlan, plan_data, with_mined
from embedtrain.recipe.schema import Recipe


def run_training(recipe: Recipe, *, resume: bool = False, observer: TrainingObserver | None = None,
                 recipe_file: Path | None = None) -> TrainingResult:
    """Train `recipe` (read from `recipe_file`, whose git repository run.json names when it is in one)."""
    check_trackers(recipe.training)
    accelerator = build_accelerator(recipe.training)
    output_dir = Path(recipe.training.output_dir)
    check_output_dir(output_dir, resume)
    observer = with_hub_push(observer or TrainingObserver(), recipe.training.push_to_hub)
    with locked_output_dir(output_dir, accelerator):
        plan, tokenization = checked_data(recipe)
        mined = mine_or_reuse(mining_caches(plan.mining, output_dir), accelerator, observer)
        trainer = prepare_trainer(recipe, plan, mined, tokenization, accelerator, observer)
        record_resolved_recipe(output_dir, recipe, resume, accelerator)
        record = RunRecord.begin(recipe, {"train": trainer.train_sets, "eval": trainer.eval_sets},
                                 processes=accelerator.num_processes, active=accelerator.is_main_process,
                                 resume=resume, recipe_file=recipe_file)
        try:
            start_trackers(accelerator, recipe)
            return trainer.train(resume=resume, record=record)
        except BaseException as error:
            record.stopped(error, interrupted=isinstance(error, KeyboardInterrupt | RunInterrupted),
                           step=trainer.state.step)
            raise
        finally:
            finish_trackers(accelerator)


def checked_data(recipe: Recipe) -> tuple[DataPlan, Tokenization | None]:
    """Every dataset loaded and checked against its loss or evaluator (a dataset to be mined: its pairs, and its loss
    against the rows mining will write), before any model weights are loaded; DataError listing every problem."""
    tokenization = recipe_tokenization(recipe.model)
    plan = plan_data(recipe, tokenization)
    plan.raise_on_errors()
    plan.log_warnings()
    return plan, tokenization


def prepare_trainer(recipe: Recipe, plan: DataPlan, mined: dict[str, Dataset], tokenization: Tokenization | None,
                    accelerator: Accelerator, observer: TrainingObserver | None = None) -> Trainer:
    """Everything a run builds before training, from the checked data and the mined rows (`mined`: each mining step's
    `where` -> rows), writing nothing: the path a real run and a dry run (`embedtrain train --dry-run`) share."""
    if plan.mining:
        checked = len(plan.reports)
        plan = with_mined(recipe, plan, mined, tokenization)
        plan.raise_on_errors()
        plan.log_warnings(plan.reports[checked:])  # the mined rows' (the others were logged by checked_data)
    set_seed(recipe.training.seed)
    model = build_training_model(recipe, plan)
    losses = build_losses(recipe, model)
    write_card = ModelCardWriter(model, recipe, plan)
    merge_adapter = recipe.model.lora is not None and recipe.model.lora.merge
    return Trainer(
        accelerator=accelerator, config=recipe.training, model=model, losses=losses, train_sets=plan.train,
        eval_sets=plan.eval, evaluators=plan.evaluators, observer=observer,
        on_final_save=_with_merged_adapter(write_card, recipe.model.trust_remote_code) if merge_adapter else write_card,
    )


def _with_merged_adapter(write_card: ModelCardWriter, trust_remote_code: bool) -> Callable[..., None]:
    """`model.lora.merge`: the final model (the trained one or the best checkpoint's, both saved as an adapter) is
    rewritten with the adapter merged into full weights, then its card is written."""
    def merge_then_write_card(final_dir: Path, metrics: dict[str, float], history: list[dict],
                              run: TrainingRun | None = None) -> None:
        merge_saved_adapter(final_dir, trust_remote_code=trust_remote_code)
        write_card(final_dir, metrics, history, run=run)
    return merge_then_write_card
