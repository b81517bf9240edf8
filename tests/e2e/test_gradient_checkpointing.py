"""`training.gradient_checkpointing`: the encoder's layers recompute their activations in the backward pass, and
training gives the same losses and weights as without it: full fine-tuning with dropout, GradCache, LoRA with
packed execution, a cross-encoder."""

import json
from pathlib import Path

import pytest
import torch
import yaml
from accelerate.state import AcceleratorState
from helpers.loss_cases import TRIPLET_COLUMNS

from embedtrain.engine.run import checked_data, run_training
from embedtrain.errors import RecipeError
from embedtrain.recipe.build import build_training_model
from embedtrain.recipe.loading import load_recipe

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")

CASES = {
    "mnrl-dropout": ({}, {"type": "MultipleNegativesRankingLoss"}),
    "gradcache": ({}, {"type": "CachedMultipleNegativesRankingLoss", "mini_batch_size": 2}),
    "lora-packed": ({"lora": {"r": 2, "dropout": 0.1}}, {"type": "MultipleNegativesRankingLoss"}),
}


def write_recipe(directory: Path, base: Path, triplet_csv: Path, model: dict, loss: dict, checkpointing: bool) -> Path:
    recipe = {
        "model": {"base": str(base)} | model,
        "losses": {"main": loss},
        "datasets": {"train": {"triplets": {"source": str(triplet_csv), "columns": TRIPLET_COLUMNS}}},
        "training": {"output_dir": str(directory / "run"), "batch_size": 6, "max_steps": 3, "learning_rate": 1e-3,
                     "logging_steps": 1, "seed": 3, "eval_before_training": False,
                     "gradient_checkpointing": checkpointing},
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def losses(run: Path) -> list[float]:
    return [record["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()
            if "loss" in (record := json.loads(line))]


@pytest.mark.parametrize("name", CASES)
def test_checkpointed_training_equals_the_plain_one(name, tmp_path, tiny_checkpoint_with_dropout, triplet_csv):
    model, loss = CASES[name]
    plain = run_training(load_recipe(write_recipe(tmp_path / "plain", tiny_checkpoint_with_dropout, triplet_csv,
                                                  model, loss, checkpointing=False)))
    AcceleratorState._reset_state(reset_partial_state=True)
    checkpointed = run_training(load_recipe(write_recipe(tmp_path / "checkpointed", tiny_checkpoint_with_dropout,
                                                         triplet_csv, model, loss, checkpointing=True)))
    expected = losses(tmp_path / "plain" / "run")
    assert len(expected) == 3
    assert losses(tmp_path / "checkpointed" / "run") == pytest.approx(expected, rel=1e-5)
    from safetensors.torch import load_file

    weights = "adapter_model.safetensors" if "lora" in model else "model.safetensors"
    a, b = load_file(plain.final_dir / weights), load_file(checkpointed.final_dir / weights)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=key)


def built_model(recipe_path: Path):
    recipe = load_recipe(recipe_path)
    plan, _ = checked_data(recipe)
    return build_training_model(recipe, plan)


def test_the_layers_run_again_in_the_backward_pass(tmp_path, tiny_checkpoint, triplet_csv):
    model = built_model(write_recipe(tmp_path, tiny_checkpoint, triplet_csv, {}, {"type": "MultipleNegativesRankingLoss"},
                                     checkpointing=True))
    calls = []
    # A module inside the layer: transformers checkpoints the layer's forward, so hooks on the layer itself run once.
    model.input_module.auto_model.encoder.layer[0].intermediate.register_forward_hook(lambda *args: calls.append(1))
    model.train()
    embeddings = model(model.tokenize(["a man plays the guitar", "a dog"]))["sentence_embedding"]
    assert len(calls) == 1
    embeddings.sum().backward()
    assert len(calls) == 2  # recomputed for the gradients


def test_a_static_model_has_no_layers_to_checkpoint(tmp_path, tiny_checkpoint, triplet_csv):
    path = write_recipe(tmp_path, tiny_checkpoint, triplet_csv, {"static": {"embedding_dim": 16}},
                        {"type": "MultipleNegativesRankingLoss"}, checkpointing=True)
    with pytest.raises(RecipeError, match="training.gradient_checkpointing: the model has no transformer"):
        built_model(path)


def test_a_cross_encoder_trains_with_checkpointing_as_without(tmp_path, tiny_checkpoint_with_dropout, binary_csv):
    def train(directory: Path, checkpointing: bool) -> list[float]:
        recipe = {"model": {"base": str(tiny_checkpoint_with_dropout), "kind": "cross_encoder"},
                  "losses": {"main": {"type": "BinaryCrossEntropyLoss"}},
                  "datasets": {"train": {"pairs": {"source": str(binary_csv)}}},
                  "training": {"output_dir": str(directory / "run"), "max_steps": 3, "batch_size": 4,
                               "logging_steps": 1, "learning_rate": 1e-3, "eval_before_training": False,
                               "gradient_checkpointing": checkpointing}}
        directory.mkdir()
        (directory / "recipe.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
        AcceleratorState._reset_state(reset_partial_state=True)
        run_training(load_recipe(directory / "recipe.yaml"))
        return losses(directory / "run")

    expected = train(tmp_path / "plain", checkpointing=False)
    assert train(tmp_path / "checkpointed", checkpointing=True) == pytest.approx(expected, rel=1e-5)
    assert built_model(tmp_path / "checkpointed" / "recipe.yaml").model.is_gradient_checkpointing
