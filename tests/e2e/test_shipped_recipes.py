"""Every recipe in recipes/ validates, and trains a few steps (on the tiny model, then the quickstart for real)."""

import json
from pathlib import Path

import pytest
from accelerate.state import AcceleratorState

from embedtrain.engine.run import run_training
from embedtrain.evaluation.ir_evaluator import InformationRetrievalParams
from embedtrain.recipe.loading import load_recipe

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))


@pytest.fixture(autouse=True)
def from_repository_root(monkeypatch):
    """Recipes name their data relative to the repository root, where users run them."""
    monkeypatch.chdir(ROOT)
    AcceleratorState._reset_state(reset_partial_state=True)


def test_recipes_are_shipped():
    assert {path.stem for path in RECIPES} >= {"quickstart", "stsb"}


def tiny_teachers(path: Path, checkpoint: Path) -> list[str]:
    """Overrides that make the teacher of each distillation loss the tiny model too (as wide as the tiny student)."""
    return [f"losses.{name}.teacher={checkpoint}" for name, params in load_recipe(path).losses.items()
            if getattr(params, "teacher", None)]


def test_the_distillation_recipe_has_a_teacher_to_replace(tiny_checkpoint):
    assert tiny_teachers(ROOT / "recipes" / "distill-mse.yaml", tiny_checkpoint) == [f"losses.mse.teacher={tiny_checkpoint}"]




@pytest.mark.parametrize("path", RECIPES, ids=[path.stem for path in RECIPES])
def test_recipe_trains_a_few_steps(path, tmp_path, tiny_checkpoint, tiny_mlm_checkpoint):
    # Sparse SPLADE recipes need a masked-LM base; CSR takes any checkpoint.
    base = tiny_mlm_checkpoint if "architecture: csr" not in path.read_text(encoding="utf-8") and \
        "kind: sparse" in path.read_text(encoding="utf-8") else tiny_checkpoint
    overrides = [f"model.base={base}", f"training.output_dir={tmp_path / 'run'}", "training.max_steps=2",
                 "training.logging_steps=1", "training.save_steps=1", *tiny_teachers(path, tiny_checkpoint)]
    if "architecture: csr" in path.read_text(encoding="utf-8"):  # 128 latents on the 32-d tiny model
        overrides += ["model.sparse.autoencoder.k=16", "model.sparse.autoencoder.k_aux=32"]
    if not isinstance(load_recipe(path).evaluators[0], InformationRetrievalParams):  # retrieval data: no row limit
        overrides.append("evaluators.0.max_samples=20")
    recipe = load_recipe(path, overrides)
    result = run_training(recipe)
    assert result.steps == 2 and (result.final_dir / "modules.json").exists()


@pytest.mark.slow
def test_quickstart_improves_the_real_model(tmp_path, minilm_path):
    recipe = load_recipe(ROOT / "recipes" / "quickstart.yaml",
                         [f"model.base={minilm_path}", f"training.output_dir={tmp_path / 'run'}"])
    result = run_training(recipe)
    evaluations = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    scores = [record["demo-sts-test_spearman_cosine"] for record in evaluations if "demo-sts-test_spearman_cosine" in record]
    assert scores[0] == pytest.approx(0.8916, abs=2e-3)  # all-MiniLM-L6-v2 before training
    assert scores[-1] > scores[0] + 0.01
    assert result.metrics["demo-sts-test_spearman_cosine"] == max(scores[1:])  # the best checkpoint is the final model
