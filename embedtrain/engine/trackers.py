"""Experiment trackers (`training.report_to`) through accelerate's tracker API, each writing under the run's
`logs/<tracker>` folder, and codecarbon (`training.track_emissions`).

A tracker is logged to only when the recipe names it (never because its package happens to be installed), and a
named tracker whose package is missing is a recipe error before anything runs: accelerate would silently drop it.

With no network, every tracker still records: TensorBoard writes event files; W&B runs offline unless WANDB_MODE
says otherwise (`wandb sync logs/wandb/offline-run-*` uploads such a run later); MLflow writes a file store in
`logs/mlflow` unless MLFLOW_TRACKING_URI names another store (a server, a database).
"""

import importlib.util
import json
import logging
import os
from pathlib import Path

from accelerate import Accelerator
from accelerate.tracking import LOGGER_TYPE_TO_CLASS, GeneralTracker, MLflowTracker, on_main_process

from embedtrain.card.public import without_local_paths
from embedtrain.engine.run_files import LOGS
from embedtrain.errors import RecipeError, TrainingError
from embedtrain.recipe.schema import Recipe
from embedtrain.recipe.training import TrackerName, TrainingConfig

logger = logging.getLogger(__name__)

EXTRA = "pip install 'embedtrain[trackers]'"
# The module each tracker imports, and the package that provides it when embedtrain's extra does not.
TRACKER_MODULES: dict[TrackerName, str] = {
    "tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow", "comet_ml": "comet_ml", "aim": "aim",
    "clearml": "clearml", "dvclive": "dvclive", "swanlab": "swanlab", "trackio": "trackio"}
IN_EXTRA = {"tensorboard", "wandb", "mlflow"}


def check_trackers(config: TrainingConfig) -> None:
    """RecipeError naming the package to install for each tracker (and codecarbon) the recipe asks for but this
    environment lacks; checked before anything is loaded."""
    missing = [name for name in config.report_to if importlib.util.find_spec(TRACKER_MODULES[name]) is None]
    problems = [f"training.report_to: {name} is not installed; "
                + (EXTRA if name in IN_EXTRA else f"pip install {TRACKER_MODULES[name]}") for name in missing]
    if config.track_emissions and importlib.util.find_spec("codecarbon") is None:
        problems.append(f"training.track_emissions: codecarbon is not installed; {EXTRA} (or pip install codecarbon)")
    if problems:
        raise RecipeError("; ".join(problems))


def tracker_dirs(config: TrainingConfig) -> dict[str, str]:
    """Each tracker's folder, relative to the output directory (as run.json records them)."""
    return {name: f"{LOGS}/{name}" for name in config.report_to}


def run_name(config: TrainingConfig) -> str:
    return config.run_name or Path(config.output_dir).resolve().name


def build_trackers(config: TrainingConfig) -> list[GeneralTracker]:
    """The recipe's trackers, constructed (nothing is written until `start_trackers`), each with its own folder
    under `output_dir/logs`: accelerate's built-in trackers, given what they need to write there. Every process
    holds them; each starts, logs and finishes on the main process only (accelerate's W&B, swanlab and trackio
    trackers would otherwise start a run on every process)."""
    logs, name = Path(config.output_dir) / LOGS, run_name(config)
    trackers: list[GeneralTracker] = []
    for tracker in config.report_to:
        folder = logs / tracker
        if tracker == "wandb":
            options = {"name": name, "dir": str(logs)}  # wandb writes into `dir`/wandb/
            if "WANDB_MODE" not in os.environ:
                options["mode"] = "offline"
            trackers.append(LOGGER_TYPE_TO_CLASS["wandb"](config.project_name, **options))
        elif tracker == "mlflow":
            trackers.append(LocalMLflowTracker(folder, experiment_name=config.project_name, run_name=name))
        elif tracker == "tensorboard":
            # TensorBoard writes into folder/<run name>/: `tensorboard --logdir logs/tensorboard` compares the runs.
            trackers.append(LOGGER_TYPE_TO_CLASS["tensorboard"](name, str(folder)))
        elif LOGGER_TYPE_TO_CLASS[tracker].requires_logging_directory:
            trackers.append(LOGGER_TYPE_TO_CLASS[tracker](config.project_name, str(folder)))
        else:
            trackers.append(LOGGER_TYPE_TO_CLASS[tracker](config.project_name))
    for tracker in trackers:
        tracker.main_process_only = True
    return trackers


class LocalMLflowTracker(MLflowTracker):
    """accelerate's MLflow tracker, logging to a file store in `folder` unless MLFLOW_TRACKING_URI names a store."""

    def __init__(self, folder: Path, **options) -> None:
        super().__init__(**options)
        self.folder = folder

    @on_main_process
    def start(self) -> None:
        import mlflow

        if "MLFLOW_TRACKING_URI" not in os.environ:
            # MLflow 3 refuses a file store unless this opt-in is set; it only affects this process.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            self.folder.mkdir(parents=True, exist_ok=True)
            mlflow.set_tracking_uri(self.folder.resolve().as_uri())
        super().start()


def start_trackers(accelerator: Accelerator, recipe: Recipe) -> None:
    """Start the trackers and give each the resolved recipe as config (flat keys; local paths by public name).
    TrainingError when one cannot start (W&B online without a login, an unreachable MLflow server, ...)."""
    if accelerator.log_with:
        try:
            accelerator.init_trackers(recipe.training.project_name, config=tracker_config(recipe))
        except Exception as error:
            raise TrainingError(
                f"training.report_to: a tracker of {recipe.training.report_to} could not start ({type(error).__name__}: "
                f"{error}); check its settings (WANDB_MODE and `wandb login`, MLFLOW_TRACKING_URI, ...) or remove it "
                f"from training.report_to") from error
        for tracker, folder in tracker_dirs(recipe.training).items():
            logger.info("logging to %s in %s", tracker, Path(recipe.training.output_dir) / folder)


def tracker_config(recipe: Recipe) -> dict[str, str | int | float | bool]:
    """The resolved recipe as flat `section.key` -> value pairs, the form every tracker's config takes (TensorBoard's
    hparams and MLflow's params hold scalars only), list items by index (`evaluators.0.source`), an empty list or
    section and null as JSON text; a local path by its public name (a tracker's server is no place for this
    machine's layout)."""
    flat: dict[str, str | int | float | bool] = {}

    def walk(value, key: str) -> None:
        if isinstance(value, dict) and value:
            for name, item in value.items():
                walk(item, f"{key}.{name}" if key else str(name))
        elif isinstance(value, list) and value:
            for index, item in enumerate(value):
                walk(item, f"{key}.{index}")
        elif isinstance(value, str):
            flat[key] = value
        elif isinstance(value, bool | int | float):
            flat[key] = value
        else:
            flat[key] = json.dumps(value)

    walk(without_local_paths(recipe.model_dump(mode="json")), "")
    return flat


def finish_trackers(accelerator: Accelerator) -> None:
    """Close every tracker (flushes TensorBoard, ends the W&B and MLflow runs); the process group stays up
    (accelerate's end_training would destroy it). Runs after a failure too: a tracker that never started (one failed
    to start before it) cannot finish, and must not hide the error that ended the run."""
    for tracker in accelerator.trackers:
        try:
            tracker.finish()
        except Exception as error:
            logger.warning("the %s tracker did not close cleanly (%s: %s)", tracker.name, type(error).__name__, error)
    accelerator.trackers.clear()
