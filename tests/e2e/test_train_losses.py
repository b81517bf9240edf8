"""Losses that reach into the training loop in their own way train end to end: a GradCache backward hook, a
guide model, a second encoder, a decoder sharing the model's weights, named loss terms; each with an eval dataset
(their no-gradient path) and a checkpoint."""

import math

import pytest
import yaml
from accelerate.state import AcceleratorState
from helpers.loss_cases import CASES

from embedtrain.engine.run import run_training
from embedtrain.models import load_model
from embedtrain.recipe.loading import load_recipe


@pytest.mark.parametrize("name", CASES)
def test_loss_trains_end_to_end(name, tmp_path, tiny_checkpoint, triplet_csv):
    AcceleratorState._reset_state(reset_partial_state=True)
    loss, columns, ignored = CASES[name]
    if "GIST" in loss["type"]:
        loss = loss | {"guide": str(tiny_checkpoint)}
    dataset = {"source": str(triplet_csv), "columns": columns, "ignore_columns": ignored}
    recipe = {
        "model": {"base": str(tiny_checkpoint)},
        "losses": {"main": loss},
        "datasets": {"train": {"triplets": dataset}, "eval": {"triplets-dev": dataset | {"max_samples": 8}}},
        "training": {"output_dir": str(tmp_path / "run"), "batch_size": 6, "max_steps": 2, "save_steps": 1,
                     "logging_steps": 1, "learning_rate": 1e-3},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    result = run_training(load_recipe(path, []))
    assert result.steps == 2 and math.isfinite(result.metrics["eval_triplets-dev_loss"])
    assert load_model(result.final_dir).encode(["a man plays guitar"]).shape == (1, 32)
