"""Sparse models from recipes (`model.kind: sparse`): architecture defaults, router_mapping,
learning_rate_mapping and `embedtrain list modules`, on tiny random models (the losses' maths is
proven in parity/test_sparse_losses_parity.py; these tests are about the model plumbing).
"""

import json
from pathlib import Path

import pytest
import torch
import yaml
from sentence_transformers import SparseEncoder
from typer.testing import CliRunner

from embedtrain.cli import app
from embedtrain.engine.optim import build_optimizer
from embedtrain.engine.run import run_training
from embedtrain.errors import RecipeError
from embedtrain.models import load_model, save_model
from embedtrain.models.build import build_model
from embedtrain.models.config import ModelConfig
from embedtrain.models.sparse_embedder import SparseEmbedder
from embedtrain.modules import MLMTransformer, Router, SparseAutoEncoder, SpladePooling, Transformer
from embedtrain.recipe.loading import load_recipe
from embedtrain.recipe.training import TrainingConfig

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")

runner = CliRunner()
README = Path(__file__).resolve().parents[3] / "README.md"


def sparse(base: Path, **settings) -> SparseEmbedder:
    return build_model(ModelConfig.model_validate({"base": str(base), "kind": "sparse", **settings}))


def test_masked_lm_checkpoint_becomes_splade_and_other_checkpoints_become_csr(tiny_mlm_checkpoint, tiny_checkpoint):
    splade = sparse(tiny_mlm_checkpoint)
    csr = sparse(tiny_checkpoint, sparse={"autoencoder": {"hidden_dim": 1024}})

    assert isinstance(splade[0], MLMTransformer) and isinstance(splade[1], SpladePooling)
    assert splade.embedding_dimension == splade[0].auto_model.config.vocab_size
    assert type(csr[0]) is Transformer and isinstance(csr[-1], SparseAutoEncoder)
    assert (csr[-1].hidden_dim, csr[-1].k, csr[-1].k_aux) == (1024, 256, 512)  # the reference's defaults
    assert csr.max_active_dims == 256


def test_more_active_latents_than_latents_is_a_recipe_error(tiny_checkpoint):
    # The reference's default k (256) exceeds the 4 x 32 latents of the tiny model: its top-k would fail mid-training.
    with pytest.raises(RecipeError, match=r"model.sparse.autoencoder.k: 256 active latents out of 128 .*at most 128"):
        sparse(tiny_checkpoint)


def test_dense_sentence_transformers_model_gets_an_autoencoder_on_its_own_modules(tiny_checkpoint, tmp_path):
    dense = build_model(ModelConfig(base=str(tiny_checkpoint), normalize=True))
    save_model(dense, tmp_path / "dense")

    csr = sparse(tmp_path / "dense", sparse={"autoencoder": {"k": 4}})

    assert [type(module).__name__ for module in csr] == ["Transformer", "Pooling", "Normalize", "SparseAutoEncoder"]
    assert (csr[-1].hidden_dim, csr[-1].k, csr[-1].k_aux) == (128, 4, 16)  # k given; hidden 4 x dim, k_aux dim / 2


def test_sparse_base_model_keeps_its_architecture(tiny_mlm_checkpoint, tmp_path):
    save_model(sparse(tiny_mlm_checkpoint, architecture="inference_free_splade"), tmp_path / "model")

    loaded = sparse(tmp_path / "model", max_active_dims=7)

    assert isinstance(loaded[0], Router) and loaded.max_active_dims == 7
    with pytest.raises(RecipeError, match="already a sparse model of architecture inference_free_splade"):
        sparse(tmp_path / "model", architecture="splade")


def test_inference_free_splade_starts_its_query_weights_from_an_idf_table(tiny_mlm_checkpoint, tmp_path):
    (tmp_path / "idf.json").write_text(json.dumps({"dog": 2.5, "guitar": 4.0}))

    model = sparse(tiny_mlm_checkpoint, architecture="inference_free_splade",
                   sparse={"query_encoder": {"idf": str(tmp_path / "idf.json"), "frozen": True}})

    query = model.encode_query(["the dog plays guitar"]).to_dense()[0]
    assert sorted(model.decode(query)) == [("dog", 2.5), ("guitar", 4.0)]  # unlisted tokens weigh 0
    assert not model[0].sub_modules["query"][0].weight.requires_grad


@pytest.mark.parametrize(("settings", "message"), [
    ({"architecture": "splade"}, "needs a masked-LM checkpoint"),
    ({"architecture": "csr", "sparse": {"pooling_strategy": "sum"}}, "not an option of architecture csr"),
    ({"sparse": {"autoencoder": {"k": 3}}}, "not an option of architecture splade"),
], ids=["splade-on-plain-bert", "splade-option-on-csr", "csr-option-on-splade"])
def test_sparse_settings_that_do_not_fit_the_base_model_are_recipe_errors(tiny_checkpoint, tiny_mlm_checkpoint,
                                                                         settings, message):
    base = tiny_checkpoint if settings.get("architecture") == "splade" or "pooling_strategy" in str(settings) \
        else tiny_mlm_checkpoint
    with pytest.raises(RecipeError, match=message):
        sparse(base, **settings)


def test_dense_and_sparse_keys_do_not_mix():
    with pytest.raises(ValueError, match="add `kind: sparse`"):
        ModelConfig.model_validate({"base": "x", "architecture": "splade"})
    with pytest.raises(ValueError, match="pooling: dense-model keys"):
        ModelConfig.model_validate({"base": "x", "kind": "sparse", "pooling": "mean"})


def write_recipe(tmp_path: Path, base: Path, pairs: Path, model: dict | None = None, dataset: dict | None = None,
                 training: dict | None = None) -> Path:
    recipe = {
        "model": {"base": str(base), "kind": "sparse"} | (model or {}),
        "losses": {"splade": {"type": "SpladeLoss", "loss": {"type": "SparseMultipleNegativesRankingLoss"},
                              "document_regularizer_weight": 3.0e-5, "query_regularizer_weight": 0.0}},
        "datasets": {"train": {"pairs": {"source": str(pairs), "columns": {"anchor": "sentence1", "positive": "sentence2"},
                                         "ignore_columns": ["score"]} | (dataset or {})}},
        "training": {"output_dir": str(tmp_path / "run"), "max_steps": 3, "batch_size": 4, "learning_rate": 1e-3,
                     "logging_steps": 1, "eval_before_training": False} | (training or {}),
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


INFERENCE_FREE = {"architecture": "inference_free_splade"}


def test_inference_free_splade_trains_with_routed_inputs_and_its_own_query_learning_rate(
        tmp_path, tiny_mlm_checkpoint, sts_csv):
    recipe = load_recipe(write_recipe(
        tmp_path, tiny_mlm_checkpoint, sts_csv, INFERENCE_FREE,
        {"router_mapping": {"sentence1": "query", "positive": "document"}},  # by column or by input
        {"learning_rate_mapping": {r"SparseStaticEmbedding\.weight": 0.5}}))

    result = run_training(recipe)

    st = SparseEncoder(str(result.final_dir), device="cpu")
    query_weights = st[0].sub_modules["query"][0].weight.detach()
    # Only the query tokens of the training batches moved, and by about the query learning rate (0.5), far more
    # than the 1e-3 of the rest: the route and the rate both reached the static weights.
    moved = (query_weights - 1.0).abs()
    assert 0.1 < moved.max() < 2.0 and (moved > 0).sum() < 60
    ours = load_model(result.final_dir)
    texts = ["a man plays guitar", "the dog runs in the park"]
    assert torch.allclose(st.encode_query(texts).to_dense(), ours.encode_query(texts).to_dense(), atol=1e-5)


def test_learning_rate_mapping_puts_matched_parameters_in_their_own_groups(tiny_mlm_checkpoint):
    model = sparse(tiny_mlm_checkpoint, architecture="inference_free_splade")
    config = TrainingConfig(output_dir="unused", learning_rate=1e-5,
                            learning_rate_mapping={r"SparseStaticEmbedding\.weight": 1e-3, r"^0\.sub_modules\.document": 5e-5})

    optimizer = build_optimizer(model, config, model)

    rate_of = {id(parameter): group["lr"] for group in optimizer.param_groups for parameter in group["params"]}
    static, transformer = model[0].sub_modules["query"][0], model[0].sub_modules["document"][0]
    assert rate_of[id(static.weight)] == 1e-3
    assert {rate_of[id(parameter)] for parameter in transformer.parameters()} == {5e-5}
    with pytest.raises(RecipeError, match="'Nothing' matches no parameter.*embedtrain list modules"):
        build_optimizer(model, config.model_copy(update={"learning_rate_mapping": {"Nothing": 1.0}}), model)


def test_an_invalid_learning_rate_pattern_is_a_recipe_error():
    with pytest.raises(ValueError, match="not a regular expression"):
        TrainingConfig(output_dir="unused", learning_rate_mapping={"(unclosed": 1e-3})


@pytest.mark.parametrize(("model", "dataset", "message"), [
    (INFERENCE_FREE, {}, "add router_mapping"),
    ({}, {"router_mapping": {"anchor": "query", "positive": "document"}}, "remove router_mapping"),
    (INFERENCE_FREE, {"router_mapping": {"anchor": "question", "positive": "document"}}, "routes ['question']"),
    (INFERENCE_FREE, {"router_mapping": {"anchr": "query", "positive": "document"}}, "did you mean 'anchor'"),
    (INFERENCE_FREE, {"router_mapping": {"positive": "document"}}, "no route for input(s) anchor"),
], ids=["missing", "no-router", "unknown-route", "unknown-input", "unrouted-input"])
def test_router_mapping_problems_are_reported_before_training(tmp_path, tiny_mlm_checkpoint, sts_csv, model, dataset,
                                                              message):
    result = runner.invoke(app, ["train", str(write_recipe(tmp_path, tiny_mlm_checkpoint, sts_csv, model, dataset))])

    assert result.exit_code != 0
    assert message in result.output
    assert not (tmp_path / "run" / "final").exists()


def test_list_modules_shows_the_names_the_readme_learning_rate_example_matches(tmp_path, tiny_mlm_checkpoint, sts_csv):
    readme = README.read_text(encoding="utf-8")
    example = yaml.safe_load(readme.split("# learning-rate-mapping-example")[1].split("```")[0])
    recipe = write_recipe(tmp_path, tiny_mlm_checkpoint, sts_csv, INFERENCE_FREE,
                          {"router_mapping": {"anchor": "query", "positive": "document"}}, example["training"])

    listed = runner.invoke(app, ["list", "modules", str(recipe), "--json"])

    assert listed.exit_code == 0, listed.output
    names = {entry["typed_name"] for entry in json.loads(listed.output)}
    paths = {entry["path"] for entry in json.loads(listed.output)}
    assert "SparseStaticEmbedding.weight" in names and "0.sub_modules.query.0.weight" in paths
    result = runner.invoke(app, ["train", str(recipe)])
    assert result.exit_code == 0, result.output


PAIRS_WITH_SCORES = {"columns": {"sentence1": "sentence1", "sentence2": "sentence2", "label": "score"},
                     "ignore_columns": []}


@pytest.mark.parametrize(("inner", "model", "dataset", "saved"), [
    ("SparseCoSENTLoss", {}, PAIRS_WITH_SCORES, "cosine"),  # the reference's SparseCoSENTLoss sets cosine
    ("SparseCoSENTLoss", {"similarity_fn_name": "dot"}, PAIRS_WITH_SCORES, "dot"),  # the recipe's choice wins
    ("SparseMultipleNegativesRankingLoss", {}, {}, "dot"),  # a loss that sets none: SPLADE's own
], ids=["loss-sets-cosine", "recipe-sets-dot", "model-default"])
def test_the_model_is_saved_with_the_similarity_its_loss_trains_unless_the_recipe_names_one(
        tmp_path, tiny_mlm_checkpoint, sts_csv, inner, model, dataset, saved):
    recipe = load_recipe(write_recipe(tmp_path, tiny_mlm_checkpoint, sts_csv, model, dataset, {"max_steps": 1}),
                         [f"losses.splade.loss.type={inner}"])

    final = run_training(recipe).final_dir

    assert json.loads((final / "config_sentence_transformers.json").read_text())["similarity_fn_name"] == saved
    assert SparseEncoder(str(final)).similarity_fn_name == saved
