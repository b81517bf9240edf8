"""The shipped SPLADE recipe on the real SPLADE-tiny, offline through the test mirror (TrecQA's correct pairs standing
in for Natural Questions), end to end: a few dozen training steps, then the saved model loads in
sentence-transformers' SparseEncoder with the same embeddings, and stays sparse."""

import csv
from pathlib import Path

import pytest
from helpers.data import SHARED_DATA
from sentence_transformers import SparseEncoder

from embedtrain.engine.run import run_training
from embedtrain.models import load_model
from embedtrain.recipe.loading import load_recipe

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("offline_mirror")]
ROOT = Path(__file__).resolve().parents[2]
STEPS = 24
ACTIVE_DIMS_CAP = 256


def test_splade_tiny_fine_tuned_loads_in_the_reference(tmp_path, splade_tiny_path):
    recipe = load_recipe(ROOT / "recipes" / "splade-nq.yaml", [  # the mirror maps its base to SPLADE-tiny
        f"training.output_dir={tmp_path / 'run'}", f"training.max_steps={STEPS}",
        "training.batch_size=16", "training.logging_steps=10", "evaluators=[]", "training.metric_for_best_model=null"])

    result = run_training(recipe)

    assert result.steps == STEPS
    with (SHARED_DATA / "trecqa" / "test_pairs.csv").open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))[:64]
    questions, answers = [row["question"] for row in rows], [row["answer"] for row in rows]
    ours = load_model(result.final_dir)
    reference = SparseEncoder(str(result.final_dir), device="cpu")
    base = SparseEncoder(str(splade_tiny_path), device="cpu")
    for texts, task in ((questions, "query"), (answers, "document")):
        expected = getattr(reference, f"encode_{task}")(texts, convert_to_tensor=True).to_dense()
        embeddings = ours.encode(texts, batch_size=32, prompt_name=task, task=task).to_dense()
        assert (embeddings - expected).abs().max().item() < 1e-5, task
        before = getattr(base, f"encode_{task}")(texts, convert_to_tensor=True).to_dense()
        assert (expected - before).abs().max().item() > 1e-3, f"{task}: training changed nothing"
        assert (expected != 0).sum(dim=1).float().mean().item() < ACTIVE_DIMS_CAP, task
