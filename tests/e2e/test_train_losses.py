"""Losses that reach into the training loop in their own way train end to end: a GradCache backward hook, a
guide model, a second encoder, a decoder sharing the model's weights, named loss terms; each with an eval dataset
(their no-gradient path) and a checkpoint."""

import math

import pytest
import yaml
from accelerate.state import AcceleratorState

from embedtrain.engine.run import run_training
from embedtrain.models import load_model
from embedtrain.recipe.loading import load_recipe

TRIPLET_COLUMNS = {"anchor": "anchor", "positive": "positive", "negative": "negative"}
CASES = {
    "cached-mnrl": ({"type": "CachedMultipleNegativesRankingLoss", "mini_batch_size": 2}, TRIPLET_COLUMNS, []),
    "matryoshka-cached-mnrl": ({"type": "MatryoshkaLoss", "matryoshka_dims": [32, 8],
                                "loss": {"type": "CachedMultipleNegativesRankingLoss", "mini_batch_size": 3}}, TRIPLET_COLUMNS, []),
    "gist": ({"type": "GISTEmbedLoss"}, TRIPLET_COLUMNS, []),  # the guide is the tiny model itself
    "cached-gist": ({"type": "CachedGISTEmbedLoss", "mini_batch_size": 2}, TRIPLET_COLUMNS, []),
    "contrastive-tension-in-batch": ({"type": "ContrastiveTensionLossInBatchNegatives"}, {"sentence": "anchor"},
                                     ["positive", "negative"]),
    "denoising-auto-encoder": ({"type": "DenoisingAutoEncoderLoss"}, {"damaged": "negative", "original": "anchor"},
                               ["positive"]),
    "gor": ({"type": "GlobalOrthogonalRegularizationLoss"}, {"anchor": "anchor", "other": ["positive"]}, ["negative"]),
    "adaptive-layer": ({"type": "AdaptiveLayerLoss", "loss": {"type": "MultipleNegativesRankingLoss"}}, TRIPLET_COLUMNS, []),
}


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
