"""`model.kind: cross_encoder` in a recipe: what it builds, and every mistake reported at its key before training.

Proven here:
- a plain encoder gets a new head (1 label and sigmoid by default; `cross_encoder.num_labels` and `activation`
  otherwise); a saved cross-encoder keeps its head, activation and prompts; `max_seq_length` caps a pair;
- keys of embedding models under kind cross_encoder (and cross_encoder options under another kind), a per-input
  prompt mapping, and an evaluator of another model kind are recipe errors at their YAML line;
- a head trained for other labels, a cross-encoder base under kind dense or sparse, and a max_seq_length past the
  position embeddings are recipe errors naming the key and the fix.
"""

import json

import pytest
import torch
import yaml
from helpers.tiny_cross_encoders import PAIRS_OF_TEXTS, make_tiny_classifier

from embedtrain.errors import RecipeError
from embedtrain.models import save_model
from embedtrain.models.build import build_model
from embedtrain.models.config import ModelConfig
from embedtrain.models.cross_encoder import CrossEncoder
from embedtrain.models.cross_encoder_io import load_cross_encoder
from embedtrain.recipe.checks import built_model_problems
from embedtrain.recipe.loading import load_recipe
from embedtrain.recipe.schema import Recipe

pytestmark = pytest.mark.usefixtures("one_thread")


def cross_encoder(base, **settings) -> CrossEncoder:
    return build_model(ModelConfig(base=str(base), kind="cross_encoder", **settings))


@pytest.fixture(scope="module")
def saved_cross_encoder(tmp_path_factory):
    path = tmp_path_factory.mktemp("saved-ce") / "model"
    model = load_cross_encoder(make_tiny_classifier(tmp_path_factory.mktemp("classifier"), 3), activation="tanh",
                               prompts={"query": "query: "}, default_prompt_name="query")
    save_model(model, path)
    return path


def test_a_plain_encoder_gets_a_new_head(tiny_checkpoint):
    model = cross_encoder(tiny_checkpoint)
    assert (model.num_labels, model.activation_name, model.max_length) == (1, "sigmoid", 64)
    assert model.model.classifier.out_features == 1 and model.packing
    classes = cross_encoder(tiny_checkpoint, cross_encoder={"num_labels": 3}, max_seq_length=32,
                            prompts={"q": "q: "}, default_prompt_name="q")
    assert (classes.num_labels, classes.activation_name, classes.max_length) == (3, "identity", 32)
    assert classes.resolve_prompt() == "q: "
    assert cross_encoder(tiny_checkpoint, cross_encoder={"activation": "identity"}).activation_name == "identity"


def test_a_saved_cross_encoder_keeps_its_head_activation_and_prompts(saved_cross_encoder):
    model = cross_encoder(saved_cross_encoder)
    saved = load_cross_encoder(saved_cross_encoder)
    assert (model.num_labels, model.activation_name, model.prompts, model.default_prompt_name) == \
        (3, "tanh", {"query": "query: "}, "query")
    assert torch.equal(model.predict(PAIRS_OF_TEXTS), saved.predict(PAIRS_OF_TEXTS))
    assert cross_encoder(saved_cross_encoder, cross_encoder={"activation": "sigmoid"}).activation_name == "sigmoid"


def test_a_head_trained_for_other_labels_is_a_recipe_error(saved_cross_encoder):
    with pytest.raises(RecipeError, match=r"model.cross_encoder.num_labels: .* trained classification head with 3 "
                                          r"label\(s\), not 1; remove num_labels"):
        cross_encoder(saved_cross_encoder, cross_encoder={"num_labels": 1})


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_a_cross_encoder_base_needs_kind_cross_encoder(saved_cross_encoder, kind):
    with pytest.raises(RecipeError, match="is a cross-encoder .* set `kind: cross_encoder`"):
        build_model(ModelConfig(base=str(saved_cross_encoder), kind=kind))


@pytest.mark.parametrize("settings, message", [
    ({"kind": "cross_encoder", "pooling": "mean", "normalize": True},
     r"pooling, normalize: embedding-model keys, which a cross-encoder \(kind: cross_encoder\) does not use"),
    ({"kind": "cross_encoder", "architecture": "splade"}, "architecture: embedding-model keys"),
    ({"cross_encoder": {"num_labels": 2}}, "cross_encoder: options of a cross-encoder; add `kind: cross_encoder`"),
    ({"kind": "sparse", "cross_encoder": {"num_labels": 2}}, "add `kind: cross_encoder`"),
])
def test_keys_of_another_kind_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig.model_validate({"base": "x"} | settings)


def recipe_text(tmp_path, binary_csv, model: dict, dataset: dict | None = None, evaluators: list | None = None) -> str:
    recipe = {
        "model": {"base": "tiny", "kind": "cross_encoder", **model},
        "losses": {"main": {"type": "CoSENTLoss"}},
        "datasets": {"train": {"pairs": {"source": str(binary_csv), **(dataset or {})}}},
        "evaluators": evaluators or [],
        "training": {"output_dir": str(tmp_path / "run")},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    with pytest.raises(RecipeError) as raised:
        load_recipe(path)
    return str(raised.value)


def test_recipe_errors_name_their_yaml_line(tmp_path, binary_csv, sts_csv):
    # Lines: 1 model, 2 base, 3 kind, 4 prompts, 5 query, ... datasets.train.pairs.prompts, evaluators[0].type
    message = recipe_text(tmp_path, binary_csv, {"prompts": {"query": "query: "}},
                          dataset={"prompts": {"sentence1": "query"}},
                          evaluators=[{"type": "sparse_sts", "name": "dev", "source": str(sts_csv)}])
    lines = (tmp_path / "recipe.yaml").read_text().splitlines()
    prompts_line = next(number for number, line in enumerate(lines, 1) if line.strip() == "prompts:" and number > 5)
    type_line = next(number for number, line in enumerate(lines, 1) if "type: sparse_sts" in line)
    assert (f"recipe.yaml:{prompts_line}: datasets.train.pairs.prompts: a cross-encoder takes one prompt per dataset, "
            f"prepended to the first text of each pair it scores, not one per input") in message
    assert (f"recipe.yaml:{type_line}: evaluators[0].type: sparse_sts scores a sparse embedding model "
            f"(SparseEncoder), and this model is a cross-encoder") in message

    keys = recipe_text(tmp_path, binary_csv, {"pooling": "mean"})
    assert "recipe.yaml:1: model: pooling: embedding-model keys" in keys


def test_evaluators_of_another_kind_are_recipe_errors_that_name_the_namesake(tmp_path, sts_csv):
    recipe = {"model": {"base": "tiny"}, "losses": {"main": {"type": "CoSENTLoss"}},
              "datasets": {"train": {"sts": {"source": str(sts_csv)}}},
              "evaluators": [{"type": "sequential", "evaluators": [{"type": "sparse_sts", "name": "dev",
                                                                   "source": str(sts_csv)}]}],
              "training": {"output_dir": str(tmp_path / "run")}}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    with pytest.raises(RecipeError, match=r"evaluators\[0\].evaluators\[0\].type: sparse_sts scores a sparse "
                                          r"embedding model .*, and this model is a dense embedding model .*: use sts"):
        load_recipe(path)


def test_max_seq_length_past_the_position_embeddings_is_a_recipe_error(tiny_checkpoint, binary_csv, tmp_path):
    raw = {"model": {"base": str(tiny_checkpoint), "kind": "cross_encoder", "max_seq_length": 100,
                     "prompts": {"long": " ".join(["dog"] * 120)}},
           "losses": {"main": {"type": "CoSENTLoss"}}, "datasets": {"train": {"pairs": {"source": str(binary_csv)}}},
           "training": {"output_dir": str(tmp_path)}}
    recipe = Recipe.model_validate(raw)
    problems = built_model_problems(recipe, build_model(recipe.model))
    assert any("model.max_seq_length: 100 exceeds the 64 positions" in problem for problem in problems)
    assert any(problem.startswith("model.prompts.long: the prompt takes 122 tokens") for problem in problems)


def test_list_modules_names_a_cross_encoders_parameters(saved_cross_encoder):
    """learning_rate_mapping patterns match a cross-encoder's paths (`model.classifier.weight`) or typed names
    (`CrossEncoder.model.classifier.weight`), as `embedtrain list modules` shows them."""
    from typer.testing import CliRunner

    from embedtrain.cli import app

    listed = CliRunner().invoke(app, ["list", "modules", str(saved_cross_encoder), "--json"])
    assert listed.exit_code == 0, listed.output
    entries = {entry["path"]: entry["typed_name"] for entry in json.loads(listed.output)}
    assert entries["model.classifier.weight"] == "CrossEncoder.model.classifier.weight"
    assert entries["model.bert.encoder.layer.0.attention.self.query.weight"] == \
        "CrossEncoder.model.bert.encoder.layer.0.attention.self.query.weight"
