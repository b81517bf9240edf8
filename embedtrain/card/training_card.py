"""How the model was trained, as the model card shows it: the hyperparameters (those the recipe changed, then all of
them folded), the training log table with the best checkpoint's row bold, and the run's time, hardware and emissions.

The log table reads the history records of metrics.jsonl (engine/metrics_log.py): training records
{step, epoch, loss, learning_rate, <dataset>_loss (several datasets), grad_norm, ...} and evaluation records
{step, <metric>: value, ...}, merged by step."""

from embedtrain.card.environment import TrainingRun
from embedtrain.card.public import without_local_paths
from embedtrain.card.sections import folded, table
from embedtrain.recipe.training import TrainingConfig

FOLD_LOG_ROWS = 30
"""A longer training log is folded, as the reference folds its long tables."""


def hyperparameters(config: TrainingConfig) -> str:
    changed = without_local_paths(config.model_dump(mode="json", exclude_defaults=True, exclude={"output_dir"}))
    every = without_local_paths(config.model_dump(mode="json", exclude={"output_dir"}))
    lines = [f"- `{key}`: {value}" for key, value in changed.items()] or ["- none: every default"]
    return ("### Training Hyperparameters\n\n#### Non-default hyperparameters\n\n" + "\n".join(lines) + "\n\n"
            + folded("Click to expand: all hyperparameters", "\n".join(f"- `{key}`: {value}"
                                                                       for key, value in every.items())))


def log_columns(history: list[dict], train_sets: list[str], primary_metrics: list[str]) -> list[str]:
    """The record keys the table shows: epoch, step, the training loss (and each dataset's when several), then each
    evaluation's headline metric (evaluators' primary metrics and eval losses) that the history holds."""
    keys = {key for record in history for key in record}
    per_dataset = [f"{name}_loss" for name in train_sets] if len(train_sets) > 1 else []
    return ["epoch", "step", "loss", *(key for key in per_dataset + primary_metrics if key in keys)]


def training_logs(history: list[dict], train_sets: list[str], primary_metrics: list[str],
                  best_step: int | None) -> str:
    columns = log_columns(history, train_sets, primary_metrics)
    rows: dict[int, dict] = {}
    for record in history:
        rows.setdefault(record["step"], {}).update(record)
    body = []
    for step, row in sorted(rows.items()):
        values = [_format(row.get(column), epoch=column == "epoch") for column in columns]
        body.append([f"**{value}**" for value in values] if step == best_step else values)
    headers = [{"epoch": "Epoch", "step": "Step", "loss": "Training Loss"}.get(column, column) for column in columns]
    logs = table(headers, body)
    if best_step is not None:
        logs += f"\n\n* The bold row denotes the best checkpoint (step {best_step})."
    if len(body) > FOLD_LOG_ROWS:
        logs = folded("Click to expand: the training logs", logs)
    return "### Training Logs\n\n" + logs


def run_facts(run: TrainingRun) -> str:
    lines = [f"- Training time: {format_duration(run.seconds)} (the training loop, with its evaluations and "
             f"checkpoints)", f"- Hardware: {run.hardware}"]
    if run.best_step is not None:
        lines.append(f"- Best checkpoint: step {run.best_step}")
    if run.emissions_kg is not None:
        lines.append(f"- Carbon emissions: {run.emissions_kg:.6f} kg CO2-equivalent (measured with codecarbon)")
    return "### Training Time and Hardware\n\n" + "\n".join(lines)


def format_duration(seconds: float) -> str:
    """'1 h 02 min 03 s', '2 min 05 s', '12.3 s'."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min {secs:02d} s" if hours else f"{minutes} min {secs:02d} s"


def _format(value, epoch: bool = False) -> str:
    if value is None:
        return "-"
    if epoch:
        return str(round(value, 4))
    return f"{value:.4f}" if isinstance(value, float) else str(value)
