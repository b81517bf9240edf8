"""One spelling of every metric name: what the recipe promises (`Recipe.metric_names()`, which
`metric_for_best_model` is checked against) is what a real training run records in metrics.jsonl, and
`metric_for_best_model: eval_<name>_loss` really picks the best checkpoint for `load_best_model_at_end`.

The eval dataset shares its name with a training dataset on purpose: the training log's per-dataset `sts_loss`
and the evaluation's `eval_sts_loss` must stay apart.
"""

import json
from pathlib import Path

import pytest
import yaml

from embedtrain.engine.run import run_training
from embedtrain.recipe.loading import load_recipe

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


def write_recipe(tmp_path: Path, model: Path, sts_csv: Path, triplet_csv: Path, **training) -> Path:
    recipe = {
        "model": {"base": str(model)},
        "losses": {"cosent": {"type": "CoSENTLoss"}},
        "datasets": {"train": {"sts": {"source": str(sts_csv)}},
                     "eval": {"sts": {"source": str(sts_csv), "max_samples": 16}}},
        "evaluators": [{"type": "sts", "name": "sts-dev", "source": str(sts_csv)},
                       {"type": "triplet", "name": "triplets-dev", "source": str(triplet_csv)}],
        "training": {"output_dir": str(tmp_path / "run"), "max_steps": 6, "batch_size": 8, "learning_rate": 1e-3,
                     "logging_steps": 1, "eval_steps": 2, "save_steps": 2, "seed": 7} | training,
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def evaluation_records(run: Path) -> list[dict]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [record for record in records if "eval_sts_loss" in record or "sts-dev_spearman_cosine" in record]


def test_every_promised_metric_is_recorded_and_the_eval_loss_picks_the_best_checkpoint(
        tmp_path, tiny_checkpoint, sts_csv, triplet_csv):
    recipe = load_recipe(write_recipe(tmp_path, tiny_checkpoint, sts_csv, triplet_csv, save_total_limit=1,
                                      metric_for_best_model="eval_sts_loss", load_best_model_at_end=True))
    run = tmp_path / "run"

    run_training(recipe)

    evaluations = evaluation_records(run)
    assert evaluations, "no evaluation was recorded"
    recorded = set().union(*(record.keys() for record in evaluations))
    missing = [name for name in recipe.metric_names() if name not in recorded]
    assert not missing, f"promised by Recipe.metric_names() but never recorded: {missing}"
    assert "eval_sts_loss" in recipe.metric_names()

    losses = {record["step"]: record["eval_sts_loss"] for record in evaluations if record["step"] > 0}
    best_step = min(losses, key=losses.get)  # a loss: lower is better
    state = json.loads(next((run / "checkpoints").glob("*/trainer_state.json")).read_text())
    assert state["best_checkpoint"] == f"checkpoint-{best_step:07d}"
    best_weights = (run / "checkpoints" / f"checkpoint-{best_step:07d}" / "model" / "model.safetensors").read_bytes()
    assert (run / "final" / "model.safetensors").read_bytes() == best_weights
