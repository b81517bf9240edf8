"""Every recipe in recipes/ (the catalogue) reads its data through the test mirror (EMBEDTRAIN_MIRROR): the data fits
its losses and evaluators, and the recipe trains a few steps on tiny random models; then the quickstart for real.

The fast tests map every model a recipe names (base, teachers) to the tiny random BERT (a masked-LM one for SPLADE;
a cross-encoder gets a new head on it; a decoder embedder maps to a tiny random Qwen3 in its layout; a mining step's
`rescore` teacher is a tiny random reranker) and shrink what depends on the model's width or length (Matryoshka dims, a
Dense layer, CSR's k, a cross-encoder's pair length): `tiny_overrides`.
"""

import json
from pathlib import Path

import pytest
import yaml
from accelerate.state import AcceleratorState
from helpers.mirror import DECODER_MODELS, write_test_mirror
from helpers.tiny_cross_encoders import make_tiny_classifier
from helpers.tiny_models import TINY_HIDDEN, TINY_MAX_LENGTH, make_tiny_qwen3_embedding
from huggingface_hub import ModelCard

from embedtrain.commands.validate import ValidationRequest, run_validation
from embedtrain.data.mirror import ENV_VAR
from embedtrain.engine.run import run_training
from embedtrain.recipe.loading import load_recipe

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: one thread is faster than several competing ones
ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))
FAMILIES = {"quickstart", "stsb", "nli-mnrl", "nli-softmax", "quora-duplicates", "nli-matryoshka", "nli-adaptive-layer",
            "static-nli", "distill-mse", "distill-multilingual", "tsdae", "simcse", "contrastive-tension", "splade-nq",
            "inference-free-splade-nq", "csr-nq", "nq-mined-mnrl", "cross-encoder-stsb", "reranker-bce", "reranker-lambda",
            "qwen3-embedding-lora", "splade-distill", "msmarco-margin-mse", "augmented-sbert", "wikiqa-mined-mnrl"}
MINED_PAIRS = 500
"""At most this many pairs of a dataset with a `mine:` step are mined (and re-scored) in the fast tests."""


def _content(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _masked_lm(content: dict) -> bool:
    """SPLADE recipes need a masked-LM base; CSR takes any checkpoint."""
    model = content["model"]
    return model.get("kind") == "sparse" and model.get("architecture") != "csr"


def model_ids() -> dict[str, bool]:
    """Every model the recipes name (base, teacher of a loss or an evaluator, the models of a dataset's `mine:` step)
    -> whether it must be a masked LM."""
    ids = {}
    for path in RECIPES:
        content = _content(path)
        ids[content["model"]["base"]] = _masked_lm(content)
        for spec in [*content["losses"].values(), *(content.get("evaluators") or [])]:
            if spec.get("teacher"):
                ids.setdefault(spec["teacher"], False)
        for split in content["datasets"].values():
            for mine in (dataset["mine"] for dataset in split.values() if "mine" in dataset):
                for model in (mine["model"], mine.get("rescore")):
                    if model:
                        ids.setdefault(model, mine.get("kind") == "sparse")
    return ids


def rescore_ids() -> set[str]:
    """The cross-encoders the recipes' mining steps re-score with."""
    return {dataset["mine"]["rescore"] for path in RECIPES for split in _content(path)["datasets"].values()
            for dataset in split.values() if dataset.get("mine", {}).get("rescore")}


@pytest.fixture(scope="module")
def tiny_mirror(tmp_path_factory, tiny_checkpoint, tiny_mlm_checkpoint) -> Path:
    models = {hub_id: tiny_mlm_checkpoint if masked_lm else tiny_checkpoint for hub_id, masked_lm in model_ids().items()}
    decoder = make_tiny_qwen3_embedding(tmp_path_factory.mktemp("decoder") / "tiny-qwen3-embedding")
    models |= {hub_id: decoder for hub_id in models if hub_id in DECODER_MODELS}
    reranker = make_tiny_classifier(tmp_path_factory.mktemp("reranker"))
    models |= {hub_id: reranker for hub_id in rescore_ids()}
    return write_test_mirror(tmp_path_factory.mktemp("mirror"), models=models)


@pytest.fixture(autouse=True)
def from_repository_root(monkeypatch, tiny_mirror):
    """The quickstart names its demo data relative to the repository root, where users of a clone run it."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv(ENV_VAR, str(tiny_mirror))
    AcceleratorState._reset_state(reset_partial_state=True)


def tiny_overrides(path: Path) -> list[str]:
    """What the recipe sets for its real model's width, set for the tiny model's (TINY_HIDDEN wide)."""
    content = _content(path)
    overrides = []
    for name, spec in content["losses"].items():
        if spec["type"] in ("MatryoshkaLoss", "Matryoshka2dLoss"):
            overrides.append(f"losses.{name}.matryoshka_dims=[{TINY_HIDDEN}, {TINY_HIDDEN // 2}, {TINY_HIDDEN // 4}]")
    if "dense" in content["model"]:
        overrides.append(f"model.dense.out_features={TINY_HIDDEN}")  # as wide as the (tiny) teacher
    if content["model"].get("architecture") == "csr":  # 4 x 32 latents on the tiny model
        overrides += ["model.sparse.autoencoder.k=16", "model.sparse.autoencoder.k_aux=32"]
    for split, datasets in content["datasets"].items():  # margins suit a real model's scores, not the tiny model's
        for name, dataset in datasets.items():  # near-equal ones (every candidate would be dropped)
            overrides += [f"datasets.{split}.{name}.mine.{margin}=null" for margin in ("absolute_margin",
                                                                                        "relative_margin")
                          if margin in dataset.get("mine", {})]
            if "mine" in dataset and dataset.get("max_samples", MINED_PAIRS + 1) > MINED_PAIRS:
                overrides.append(f"datasets.{split}.{name}.max_samples={MINED_PAIRS}")  # mining all of STS-B takes minutes
    if "max_seq_length" in content["model"]:  # no longer than the tiny model's position embeddings
        overrides.append(f"model.max_seq_length={TINY_MAX_LENGTH}")
    return overrides


def small_evaluators(path: Path) -> list[str]:
    """Fewer rows for the evaluators: 20 of a table; NanoBEIR's smaller set (TrecQA standing in for NanoNQ)."""
    overrides = []
    for index, spec in enumerate(_content(path).get("evaluators") or []):
        if spec["type"].endswith("nanobeir"):
            overrides.append(f"evaluators.{index}.dataset_names=[nq]")
        elif not spec["type"].endswith("ir"):
            overrides.append(f"evaluators.{index}.max_samples=20")
    return overrides


def test_the_catalogue_covers_the_families():
    assert {path.stem for path in RECIPES} >= FAMILIES


def test_every_model_the_recipes_name_is_a_hub_id():
    # Local paths would only work on this machine; the mirror maps hub ids for offline runs.
    assert all(not hub_id.startswith((".", "/", "~")) and hub_id.count("/") == 1 for hub_id in model_ids())


@pytest.mark.parametrize("path", RECIPES, ids=[path.stem for path in RECIPES])
def test_recipe_data_fits_its_losses_and_evaluators(path):
    validation = run_validation(ValidationRequest(recipe=path, overrides=tiny_overrides(path)))
    assert not validation.failed, (
        [error for report in validation.reports for error in report.errors], validation.evaluator_errors)
    assert validation.reports and all(report.row_count > 0 for report in validation.reports)


@pytest.mark.parametrize("path", RECIPES, ids=[path.stem for path in RECIPES])
def test_recipe_trains_a_few_steps(path, tmp_path):
    overrides = [*tiny_overrides(path), *small_evaluators(path), f"training.output_dir={tmp_path / 'run'}",
                 "training.max_steps=2", "training.logging_steps=1", "training.save_steps=1"]
    result = run_training(load_recipe(path, overrides))
    assert result.steps == 2
    if _content(path)["model"].get("kind") == "cross_encoder":  # a Hugging Face folder that names the activation
        assert "sentence_transformers" in json.loads((result.final_dir / "config.json").read_text())
    else:
        assert (result.final_dir / "modules.json").exists()
    # Its card parses, names the recipe's hub model, holds the evaluators' results and none of this machine's paths.
    card = ModelCard.load(result.final_dir / "README.md")
    assert card.data.base_model == _content(path)["model"]["base"] and str(tmp_path) not in card.content
    assert bool(card.data.eval_results) == bool(_content(path).get("evaluators"))


@pytest.mark.slow
def test_quickstart_improves_the_real_model(tmp_path, minilm_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR)
    recipe = load_recipe(ROOT / "recipes" / "quickstart.yaml",
                         [f"model.base={minilm_path}", f"training.output_dir={tmp_path / 'run'}"])
    result = run_training(recipe)
    evaluations = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    scores = [record["demo-sts-test_spearman_cosine"] for record in evaluations if "demo-sts-test_spearman_cosine" in record]
    assert scores[0] == pytest.approx(0.8916, abs=2e-3)  # all-MiniLM-L6-v2 before training
    assert scores[-1] > scores[0] + 0.01
    assert result.metrics["demo-sts-test_spearman_cosine"] == max(scores[1:])  # the best checkpoint is the final model
